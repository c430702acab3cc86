#!/usr/bin/env bash
# Builds the ONNX-importer libFuzzer target with clang (ASan + UBSan) into build-fuzz and runs it
# for SECONDS (default 60) over a copy of tests/fuzz/corpus. Fails on any crash, sanitizer report,
# leak, timeout or out-of-memory; the reproducer is kept under build-fuzz/artifacts/.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
BUILD="${ADALOG_FUZZ_BUILD_DIR:-build-fuzz}"
JOBS="${ADALOG_JOBS:-$(nproc)}"

CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DADALOG_BUILD_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target fuzz_onnx_importer
FUZZER="$BUILD/tests/fuzz/fuzz_onnx_importer"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cp -r tests/fuzz/corpus "$WORK/corpus"
ART="$BUILD/artifacts"
mkdir -p "$ART"

echo "[fuzz] running $FUZZER for ${SECS}s over $(ls "$WORK/corpus" | wc -l) seeds"
set +e
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$FUZZER" "$WORK/corpus" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
  -max_len=65536 -artifact_prefix="$ART/" -print_final_stats=1 2>&1 | tee "$WORK/log" | \
  grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|ERROR|SUMMARY|Test unit written|==[0-9]+==" 
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  echo "[fuzz] FAILED (exit $rc); last lines:"
  tail -40 "$WORK/log"
  echo "[fuzz] reproducers in $ART/"
  exit 1
fi
echo "[fuzz] OK: no crashes in ${SECS}s"
