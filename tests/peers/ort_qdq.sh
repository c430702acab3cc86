#!/usr/bin/env bash
# `adalog export --format qdq` in ONNX Runtime: the digits model quantized at W8A8 with uniform
# quantizers everywhere (models/int_test/digits_w8a8_uniform.adq) is exported, run by
# onnxruntime-node on the 500 test images, and its top-1 must be within one image of adalog's own
# simulated executor on the model file (issue 17's done-when). Prints the kernels ORT's optimizer
# picked (its optimized-model output).
#   bash tests/peers/ort_qdq.sh <path-to-adalog> <repo-root>
# Skipped (exit 77, CTest SKIP_RETURN_CODE) when node, onnxruntime-node (bench/peers/setup.sh)
# or /usr/bin/python3 with onnx + numpy is missing. The CI-capable check without ONNX Runtime is
# tests/cli/export.sh (models/onnx_numpy_eval.py runs the graph).
set -u
ADALOG=${1:?usage: ort_qdq.sh <path-to-adalog> <repo-root>}
ROOT=${2:?usage: ort_qdq.sh <path-to-adalog> <repo-root>}
source "$ROOT/tests/peers/lib.sh"
set -e
"$ADALOG" export "$ROOT/models/int_test/digits_w8a8_uniform.adq" --format qdq -o "$TMP/qdq.onnx"
"$ADALOG" run "$ROOT/models/int_test/digits_w8a8_uniform.adq" --simulate --input "$D/test_x.npy" \
  --output "$TMP/sim.npy" --threads 1
node "$PEERS/ort_bench.js" "$TMP/qdq.onnx" --input "$D/test_x.npy" --output "$TMP/ort.npy" \
  --optimized-model "$TMP/qdq.opt.onnx"
set +e
"$PY" - "$TMP" "$D/test_y.npy" <<'PYEOF'
import collections
import sys

import numpy as np
import onnx

tmp, yp = sys.argv[1], sys.argv[2]
y = np.load(yp)
ort = np.load(f"{tmp}/ort.npy")
sim = np.load(f"{tmp}/sim.npy")
fails = 0
ok = ort.shape == sim.shape and np.isfinite(ort).all()
print(("ok:   " if ok else "FAIL: ") + f"ORT logits {ort.shape}, finite")
fails += not ok
top_ort, top_sim = int((ort.argmax(1) == y).sum()), int((sim.argmax(1) == y).sum())
agree = int((ort.argmax(1) == sim.argmax(1)).sum())
print(f"info: max |ORT - simulated| {float(np.abs(ort - sim).max()):.6f}; ORT and simulated agree on {agree}/{y.size}")
ok = abs(top_ort - top_sim) <= 1
print(("ok:   " if ok else "FAIL: ") + f"top-1 in ONNX Runtime {top_ort}/{y.size} within one image of adalog's "
      f"simulated executor {top_sim}/{y.size}")
fails += not ok
kinds = collections.Counter(n.op_type for n in onnx.load(f"{tmp}/qdq.opt.onnx").graph.node)
print("info: ORT optimized graph: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
ok = kinds["MatMulIntegerToFloat"] > 0 or kinds["QLinearMatMul"] > 0 or kinds["QGemm"] > 0
print(("ok:   " if ok else "FAIL: ") + "ORT runs some Linears in its int8 kernels "
      f"(MatMulIntegerToFloat {kinds['MatMulIntegerToFloat']}, QLinearMatMul {kinds['QLinearMatMul']}, "
      f"QGemm {kinds['QGemm']})")
fails += not ok
print(f"{fails} failure(s)")
sys.exit(1 if fails else 0)
PYEOF
