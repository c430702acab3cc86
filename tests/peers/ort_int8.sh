#!/usr/bin/env bash
# The ONNX Runtime int8 peers (bench/peers/ort_quantize.py) on the digits model: both graphs
# (quantize_dynamic, quantize_static QDQ calibrated on models/digits/calib.npy) pass
# onnx.checker (full check), run in onnxruntime-node on the 500 test images with top-1 within
# 5 images of the FP32 graph's, really are int8 (integer nodes present, logits differ from FP32)
# and ORT fuses them into its int8 kernels (DynamicQuantizeMatMul; QLinearMatMul, QGemm,
# QLinearConv) in the optimized graph it writes.
#   bash tests/peers/ort_int8.sh <repo-root>
# Skipped (exit 77, CTest SKIP_RETURN_CODE) when node, onnxruntime-node (bench/peers/setup.sh)
# or /usr/bin/python3 with onnx + numpy is missing.
set -u
ROOT=${1:?usage: ort_int8.sh <repo-root>}
source "$ROOT/tests/peers/lib.sh"
set -e
"$PY" "$PEERS/ort_quantize.py" "$D/digits_vit.onnx" --mode dynamic -o "$TMP/dyn.onnx" >"$TMP/dyn.json"
"$PY" "$PEERS/ort_quantize.py" "$D/digits_vit.onnx" --mode qdq --calib "$D/calib.npy" -o "$TMP/qdq.onnx" >"$TMP/qdq.json"
node "$PEERS/ort_bench.js" "$D/digits_vit.onnx" --input "$D/test_x.npy" --output "$TMP/fp32.npy" >/dev/null
for g in dyn qdq; do
  node "$PEERS/ort_bench.js" "$TMP/$g.onnx" --input "$D/test_x.npy" --output "$TMP/$g.npy" \
    --optimized-model "$TMP/$g.opt.onnx" >/dev/null
done
set +e
"$PY" "$ROOT/tests/peers/ort_int8_check.py" "$ROOT" "$TMP"
