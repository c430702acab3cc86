#!/usr/bin/env bash
# `adalog export --format qdq` end to end: usage errors (exit 2), the refusal of a plan with log
# quantizers naming its taps (exit 1, no output), bad inputs and outputs, and on the shipped
# digits model quantized at W8A8 with uniform quantizers everywhere
# (models/int_test/digits_w8a8_uniform.adq) a graph that onnx.checker accepts, holds the
# expected int8 weights and uint8 Q/DQ pairs with the plan's scales and zero points bit for bit
# (inspect --json), is the same bytes when exported twice, and whose
# top-1 on the 500 test images (run by models/onnx_numpy_eval.py, no ONNX Runtime needed) is within
# one image of adalog's own simulated executor (tests/cli/export_check.py).
#   bash tests/cli/export.sh <path-to-adalog> <repo-root>
# Needs /usr/bin/python3 with numpy, scipy and onnx. ONNX Runtime: tests/peers/ort_qdq.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_init export.sh "$@"

D=$ROOT/models/digits
U8=$TMP/u8.adq
LOG=$TMP/log.adq
cp "$ROOT/models/int_test/digits_w8a8_uniform.adq" "$U8" || { echo "FAIL: no W8A8 uniform fixture"; exit 1; }
cp "$ROOT/models/int_test/digits_w4a4.adq" "$LOG" || { echo "FAIL: no W4A4 fixture"; exit 1; }
cd "$TMP" || exit 1

# --- usage errors (exit 2) and bad inputs / outputs: nothing written
expect_exit 2 "missing required option '--format qdq' for 'adalog export'" --absent out.onnx -- \
  export "$U8" -o out.onnx
expect_exit 2 "option '--format' of 'adalog export': 'onnx' is not one of qdq" --absent out.onnx -- \
  export "$U8" --format onnx -o out.onnx
expect_exit 2 "missing required option '--output OUT.onnx'" -- export "$U8" --format qdq
expect_exit 2 "is an FP32 ONNX model; export takes an adalog quantized model file" --absent out.onnx -- \
  export "$D/digits_vit.onnx" --format qdq -o out.onnx
expect_exit 2 "is the same file as MODEL" -- export "$U8" --format qdq -o ./u8.adq
cmp -s "$U8" "$ROOT/models/int_test/digits_w8a8_uniform.adq" && ok || bad "export -o MODEL changed the model file"
expect_exit 1 "missing.adq: cannot open model file" --absent out.onnx -- export missing.adq --format qdq -o out.onnx
mkdir adir
expect_exit 1 "not a regular file" -- export "$U8" --format qdq -o adir
expect_exit 1 "does not exist" --absent nodir/out.onnx -- export "$U8" --format qdq -o nodir/out.onnx
head -c 1000 "$U8" >trunc.adq
expect_exit 1 "model file 'trunc.adq': size mismatch" --absent out.onnx --no-temps . -- export trunc.adq --format qdq -o out.onnx

# --- refusal: the W4A4 AdaLog plan (log quantizers after softmax and GELU, 4-bit activations)
expect_exit 1 "attention probabilities (post-softmax): adalog log quantizer (blocks 0,1,2,3,4,5)" --absent out.onnx \
  --no-temps . -- export "$LOG" --format qdq -o out.onnx
for want in "fc2 input (post-GELU): adalog log quantizer (blocks 0,1,2,3,4,5)" \
  "qkv input: 4-bit uniform quantizer (blocks 0,1,2,3,4,5)" "head input: 4-bit uniform quantizer" \
  "--bits W8A8 --softmax uniform --gelu uniform"; do
  grep -qF -- "$want" cli.err && ok || bad "refusal message lacks '$want': $(cat cli.err)"
done

# --- the W8A8 uniform export
expect_exit 0 "exported" --stdout -- export "$U8" --format qdq -o u8.onnx
expect_exit 0 '"format":"qdq"' --stdout -- export "$U8" --format qdq -o u8b.onnx --json
cmp -s u8.onnx u8b.onnx && ok || bad "two exports of the same model differ"
[[ $(temps_in .) == 0 ]] && ok || bad "temporary files left: $(ls -A)"
# The references: adalog's simulated executor on the model file, and the FP32 model.
"$ADALOG" run "$U8" --simulate --input "$D/test_x.npy" --output sim.npy --threads 1 2>run.err ||
  bad "run --simulate: $(cat run.err)"
"$ADALOG" run "$D/digits_vit.onnx" --input "$D/test_x.npy" --output fp32.npy --threads 1 2>run.err ||
  bad "run FP32: $(cat run.err)"
"$ADALOG" inspect "$U8" --json >inspect.json || bad "inspect --json failed"
read -r blocks heads < <("$PY" -c 'import json,sys; j=json.load(open("inspect.json")); print(j["blocks"], j["heads"])')
if "$PY" "$ROOT/tests/cli/export_check.py" u8.onnx "$D/test_x.npy" "$D/test_y.npy" sim.npy fp32.npy \
  "$blocks" "$heads" inspect.json >check.out 2>&1; then
  ok
else
  bad "export_check.py:"
fi
cat check.out
cli_finish "cli.export"
