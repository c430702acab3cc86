#!/usr/bin/env bash
# Quantized files of the shipped trained models for ExecutorInt.ShippedModelsAgreeWithSimulatedExecutor
# (tests/runtime/executor_int_test.cc): adalog quantize on each model's calib.npy at W4A4 (default
# AdaLog recipe, FPCS on); and digits at W8A8 uniform for the QDQ export's tests. Minutes on a loaded 2-core machine, so the results are committed in
# models/int_test/ (the test reads them from there; any valid plan exercises the integer paths).
#   scripts/make_int_test_models.sh [ADALOG_BINARY] [OUT_DIR]      (default OUT_DIR: out/int_models)
#   then: ADALOG_INT_TEST_MODELS=OUT_DIR adalog_runtime_tests --gtest_filter='ExecutorInt.Shipped*'
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ADALOG=${1:-$ROOT/build/cli/adalog}
OUT=${2:-$ROOT/out/int_models}
mkdir -p "$OUT"
for name in digits shapes; do
  "$ADALOG" quantize "$ROOT/models/$name/${name}_vit.onnx" --calib "$ROOT/models/$name/calib.npy" \
    --bits W4A4 -o "$OUT/${name}_w4a4.adq"
done
# The QDQ export's fixture (tests/cli/export.sh, tests/peers/ort_qdq.sh, OnnxQdqExport gtests):
# digits at W8A8 with uniform quantizers everywhere, the plan `adalog export --format qdq` accepts;
# 8 calibration images and no FPCS to keep it to minutes (5.7 min at 1 thread on the loaded 2-core
# machine; the full recipe ran past 20 CPU minutes there and was stopped).
"$ADALOG" quantize "$ROOT/models/digits/digits_vit.onnx" --calib "$ROOT/models/digits/calib.npy" \
  --calib-size 8 --bits W8A8 --softmax uniform --gelu uniform --no-fpcs --threads 1 \
  -o "$OUT/digits_w8a8_uniform.adq"
