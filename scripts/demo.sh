#!/usr/bin/env bash
# The README's first command: sets up (packages + build), then quantizes the shipped digits ViT
# with AdaLog W4A4 on its 32 calibration images and compares it with FP32: top-1 on the 500 test
# images, logits fidelity, and latency (batch 8 and 1). About 3-5 minutes on 2 cores.
#   scripts/demo.sh        (ADALOG_BUILD_DIR=dir: build elsewhere; ADALOG_THREADS=n: threads, default nproc)
# Accuracy comes from the simulated (fake-quant) executor, the accuracy reference (--simulate);
# latency from the default executor for quantized files (the integer one where it applies).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD="${ADALOG_BUILD_DIR:-build}"
ADALOG="$BUILD/cli/adalog"
M=models/digits/digits_vit.onnx
D=models/digits
OUT=out/demo
mkdir -p "$OUT"
THREADS=${ADALOG_THREADS:-$(nproc)}

echo
echo "== 1. the model"
"$ADALOG" inspect "$M"

echo
echo "== 2. quantize: AdaLog W4A4, 32 calibration images"
# Passive OpenMP waiting: on a shared machine, spinning threads at the search's many short
# parallel loops cost several times the work itself (environment notes).
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} \
  "$ADALOG" quantize "$M" --calib "$D/calib.npy" --bits W4A4 -o "$OUT/digits_w4a4.adalog" --threads "$THREADS"

echo
echo "== 3. accuracy on $D/test_x.npy"
"$ADALOG" run "$M" --input "$D/test_x.npy" --output "$OUT/fp32_logits.npy" --threads "$THREADS" 2>/dev/null
fp=$("$ADALOG" eval "$M" --data "$D/test_x.npy" --labels "$D/test_y.npy" --json --threads "$THREADS")
q=$("$ADALOG" eval "$OUT/digits_w4a4.adalog" --simulate --data "$D/test_x.npy" --labels "$D/test_y.npy" --json \
    --threads "$THREADS" --reference-logits "$OUT/fp32_logits.npy")
qi=$("$ADALOG" eval "$OUT/digits_w4a4.adalog" --data "$D/test_x.npy" --labels "$D/test_y.npy" --json \
    --threads "$THREADS" --reference-logits "$OUT/fp32_logits.npy")
echo "$fp"
echo "$q"
echo "$qi"

echo
echo "== 4. latency (median of 20 runs, $THREADS threads)"
lat() { "$ADALOG" bench "$1" --batch "$2" --threads "$THREADS" --runs 20 --warmup 3 --json | grep -o '"median_ms":[0-9.]*' | cut -d: -f2; }
fp8=$(lat "$M" 8); fp1=$(lat "$M" 1)
q8=$(lat "$OUT/digits_w4a4.adalog" 8); q1=$(lat "$OUT/digits_w4a4.adalog" 1)
qeng=$("$ADALOG" bench "$OUT/digits_w4a4.adalog" --runs 1 --warmup 0 --json 2>/dev/null | grep -o '"engine":"[^"]*"' | cut -d'"' -f4)

field() { echo "$1" | grep -o "\"$2\":[0-9.]*" | cut -d: -f2; }
echo
echo "================ summary: digits ViT (6 blocks, dim 96, 65 tokens), 500 test images ================"
printf '%-28s %10s %16s %14s %14s\n' "" "top-1 %" "cosine vs FP32" "batch 8 ms" "batch 1 ms"
printf '%-28s %10.2f %16s %14s %14s\n' "FP32 (ONNX)" "$(echo "$(field "$fp" top1) * 100" | bc -l)" "1" "$fp8" "$fp1"
printf '%-28s %10.2f %16.4f %14s %14s\n' "AdaLog W4A4, simulated" "$(echo "$(field "$q" top1) * 100" | bc -l)" \
  "$(field "$q" ref_cosine)" "-" "-"
printf '%-28s %10.2f %16.4f %14s %14s\n' "AdaLog W4A4, $qeng" "$(echo "$(field "$qi" top1) * 100" | bc -l)" \
  "$(field "$qi" ref_cosine)" "$q8" "$q1"
echo "quantized model: $OUT/digits_w4a4.adalog ($(du -k "$OUT/digits_w4a4.adalog" | cut -f1) KiB; FP32 ONNX $(du -k "$M" | cut -f1) KiB)"
echo "simulated = fake-quant reference executor (accuracy judge); $qeng = what 'adalog run/eval/bench' use by default"
