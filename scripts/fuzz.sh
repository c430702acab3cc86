#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan, asserts on) into build-fuzz and runs each
# for SECONDS (default 60) over a copy of its committed seed corpus. Fails on any crash, sanitizer
# report, leak, timeout or out-of-memory; reproducers are kept under build-fuzz/artifacts/<target>/.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#   ADALOG_FUZZ_RUNS=N scripts/fuzz.sh 0 [TARGET...]   N executions per target instead of a time
#   scripts/fuzz.sh ci [TARGET...]   what .ci/run does: a fixed number of executions per target
#                                    (about 60 s each on the CI machine), so that the same commit
#                                    gives the same verdict; a time-based run explores further
# Every run uses libFuzzer seed ADALOG_FUZZ_SEED (default 1), so a find can be replayed by rerunning
# the same command on the same commit.
# Targets (tests/fuzz/README.md): onnx_importer, model_file, npy, image (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
shift || true
BUILD="${ADALOG_FUZZ_BUILD_DIR:-build-fuzz}"
JOBS="${ADALOG_JOBS:-$(nproc)}"
RUNS="${ADALOG_FUZZ_RUNS:-}"
SEED="${ADALOG_FUZZ_SEED:-1}"
CI_MODE=0
if [ "$SECS" = ci ]; then CI_MODE=1; SECS=300; fi
ALL=(onnx_importer model_file npy image)
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")

# target -> seed corpus, longest input the fuzzer may build.
corpus_of() { case "$1" in onnx_importer) echo tests/fuzz/corpus ;; *) echo "tests/fuzz/corpus_$1" ;; esac; }
# CI budgets: executions per target, sized from the exec/s the CI machine printed (onnx_importer
# ~1400/s, model_file ~8700/s, npy ~22000/s, image ~2500/s under ASan + UBSan); SECS stays as a cap.
ci_runs_of() { case "$1" in onnx_importer) echo 60000 ;; model_file) echo 400000 ;; npy) echo 1000000 ;; image) echo 120000 ;; esac; }
max_len_of() { case "$1" in npy) echo 4096 ;; model_file|image) echo 16384 ;; *) echo 65536 ;; esac; }

launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DADALOG_BUILD_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]/#/fuzz_}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
failed=()
for t in "${TARGETS[@]}"; do
  FUZZER="$BUILD/tests/fuzz/fuzz_$t"
  src="$(corpus_of "$t")"
  [ -d "$src" ] || { echo "[fuzz] no corpus $src for $t"; exit 2; }
  cp -r "$src" "$WORK/corpus_$t"
  ART="$BUILD/artifacts/$t"
  mkdir -p "$ART"
  if [ "$CI_MODE" = 1 ]; then
    limit=(-runs="$(ci_runs_of "$t")" -max_total_time="$SECS"); what="$(ci_runs_of "$t") runs (cap ${SECS}s)"
  elif [ -n "$RUNS" ]; then limit=(-runs="$RUNS"); what="$RUNS runs"; else limit=(-max_total_time="$SECS"); what="${SECS}s"; fi
  echo "[fuzz] $t: $what, seed $SEED, over $(ls "$src" | wc -l) corpus files"
  set +e
  # The image target writes each input to a file: keep it on the work directory.
  TMPDIR="$WORK" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$FUZZER" "$WORK/corpus_$t" "${limit[@]}" -seed="$SEED" -timeout=10 -rss_limit_mb=2048 \
    -max_len="$(max_len_of "$t")" -artifact_prefix="$ART/" -print_final_stats=1 2>&1 | tee "$WORK/log_$t" | \
    grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec)|ERROR|SUMMARY|Test unit written|==[0-9]+=="
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "[fuzz] $t FAILED (exit $rc); last lines:"
    tail -40 "$WORK/log_$t"
    echo "[fuzz] reproducer in $ART/; replay: $FUZZER FILE (or rerun with ADALOG_FUZZ_SEED=$SEED)"
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "[fuzz] FAILED: ${failed[*]}"
  exit 1
fi
echo "[fuzz] OK: no crashes in ${TARGETS[*]}"
