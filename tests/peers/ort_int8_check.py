#!/usr/bin/python3
"""Checks of tests/peers/ort_int8.sh on the graphs and logits it wrote in TMP (see there)."""
import collections
import json
import sys

import numpy as np
import onnx

ROOT, TMP = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def ops(path):
    return collections.Counter(n.op_type for n in onnx.load(path).graph.node)


fp32_model = onnx.load(f"{ROOT}/models/digits/digits_vit.onnx")
consts = {t.name for t in fp32_model.graph.initializer}
const_b = sum(1 for n in fp32_model.graph.node if n.op_type == "MatMul" and n.input[1] in consts)
gemms = sum(1 for n in fp32_model.graph.node if n.op_type == "Gemm")
act_matmuls = sum(1 for n in fp32_model.graph.node if n.op_type == "MatMul" and n.input[1] not in consts)
check(const_b > 0 and gemms == 1 and act_matmuls > 0,
      f"digits FP32 graph: {const_b} constant-B MatMuls, {gemms} Gemm, {act_matmuls} attention MatMuls")

y = np.load(f"{ROOT}/models/digits/test_y.npy")
with open(f"{ROOT}/models/digits/info.json") as f:
    info = json.load(f)
fp32 = np.load(f"{TMP}/fp32.npy")
check(fp32.shape == (y.size, 10), f"FP32 logits shape {fp32.shape}")
fp32_correct = int((fp32.argmax(1) == y).sum())
check(fp32_correct == info["fp32_correct"], f"ORT FP32 top-1 {fp32_correct}/{y.size} = info.json's {info['fp32_correct']}")

for g in ("dyn", "qdq"):
    m = onnx.load(f"{TMP}/{g}.onnx")
    try:
        onnx.checker.check_model(m, full_check=True)
        check(True, f"{g}: onnx.checker (full check)")
    except Exception as e:  # noqa: BLE001 - the checker's message is the report
        check(False, f"{g}: onnx.checker: {e}")
    kinds = ops(f"{TMP}/{g}.onnx")
    opt = ops(f"{TMP}/{g}.opt.onnx")
    if g == "dyn":
        check(kinds["MatMulInteger"] == const_b + gemms and kinds["DynamicQuantizeLinear"] > 0
              and kinds["ConvInteger"] == 1 and kinds["Gemm"] == 0 and kinds["MatMul"] == act_matmuls,
              f"dyn graph: {kinds['MatMulInteger']} MatMulInteger, {kinds['ConvInteger']} ConvInteger, "
              f"{kinds['MatMul']} FP32 MatMul (attention), {kinds['Gemm']} Gemm")
        check(opt["DynamicQuantizeMatMul"] == const_b + gemms,
              f"ORT fused {opt['DynamicQuantizeMatMul']} DynamicQuantizeMatMul (want {const_b + gemms})")
    else:
        check(kinds["QuantizeLinear"] > 0 and kinds["DequantizeLinear"] > kinds["QuantizeLinear"],
              f"qdq graph: {kinds['QuantizeLinear']} QuantizeLinear, {kinds['DequantizeLinear']} DequantizeLinear")
        check(opt["QLinearMatMul"] == const_b + act_matmuls and opt["QGemm"] == 1 and opt["QLinearConv"] == 1
              and opt["MatMul"] == 0,
              f"ORT fused {opt['QLinearMatMul']} QLinearMatMul (want {const_b + act_matmuls}), {opt['QGemm']} QGemm, "
              f"{opt['QLinearConv']} QLinearConv, {opt['MatMul']} float MatMul left")
    q = np.load(f"{TMP}/{g}.npy")
    check(q.shape == fp32.shape and np.isfinite(q).all(), f"{g}: logits shape {q.shape}, finite")
    diff = float(np.abs(q - fp32).max())
    check(diff > 1e-4, f"{g}: logits differ from FP32 (max |diff| {diff:.4f}): the graph is really quantized")
    correct = int((q.argmax(1) == y).sum())
    agree = int((q.argmax(1) == fp32.argmax(1)).sum())
    check(abs(correct - fp32_correct) <= 5, f"{g}: top-1 {correct}/{y.size} within 5 images of FP32's {fp32_correct}"
          f" (agrees with FP32 on {agree})")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
