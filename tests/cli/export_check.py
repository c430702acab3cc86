#!/usr/bin/python3
"""Checks of tests/cli/export.sh on an exported QDQ graph (see there).

    export_check.py GRAPH.onnx TEST_X.npy TEST_Y.npy SIM_LOGITS.npy FP32_LOGITS.npy BLOCKS HEADS INSPECT.json
(INSPECT.json: `adalog inspect MODEL --json`, whose plan every scale and zero point must equal.)
Prints one "ok:"/"FAIL:" line per check and the top-1 counts; exits 1 on any failure.
"""
import collections
import json
import os
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))
import onnx_numpy_eval  # noqa: E402

path, xp, yp, simp, fp32p, blocks, heads, inspect_json = sys.argv[1:9]
blocks, heads = int(blocks), int(heads)
failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


m = onnx.load(path)
try:
    onnx.checker.check_model(m, full_check=True)
    check(True, "onnx.checker (full check with shape inference)")
except Exception as e:  # noqa: BLE001 - the checker's message is the report
    check(False, f"onnx.checker: {e}")

ops = collections.Counter(n.op_type for n in m.graph.node)
inits = {t.name: t for t in m.graph.initializer}
# Per block: qkv, probs, proj, fc1, fc2 inputs and q, k, v one per head; then the head input.
want_q = (5 + 3 * heads) * blocks + 1
check(ops["QuantizeLinear"] == want_q, f"{ops['QuantizeLinear']} QuantizeLinear (want {want_q}: 5 + 3 x {heads} heads "
      "per block + head)")
# Weights: 4 Linears per block, the head and the patch-embedding Conv; plus one DQ per Q.
weight_dq = [n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
check(len(weight_dq) == 4 * blocks + 2, f"{len(weight_dq)} weight DequantizeLinear (want {4 * blocks + 2})")
check(ops["DequantizeLinear"] == want_q + len(weight_dq), f"{ops['DequantizeLinear']} DequantizeLinear in all")
per_channel = 0
for n in weight_dq:
    w, s, z = (inits[i] for i in n.input)
    ok = w.data_type == onnx.TensorProto.INT8 and z.data_type == onnx.TensorProto.INT8
    axis = {a.name: a.i for a in n.attribute}.get("axis", 1)
    ok = ok and len(s.dims) == 1 and s.dims[0] == w.dims[axis] and z.dims == s.dims
    codes = onnx.numpy_helper.to_array(w)
    ok = ok and len(np.unique(codes)) > 16  # real 8-bit codes, not a constant
    per_channel += ok
check(per_channel == len(weight_dq), f"{per_channel}/{len(weight_dq)} weights int8, per output channel, "
      "non-degenerate codes")
act = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
u8 = sum(inits[n.input[2]].data_type == onnx.TensorProto.UINT8 for n in act)
check(u8 == len(act), f"{u8}/{len(act)} activation quantizers uint8")
check(all(len(inits[n.input[1]].dims) == 0 for n in act), "every activation QuantizeLinear is per tensor")
# q, k, v: Split into heads -> one Q/DQ pair per head -> Concat, with distinct head scales.
producer = {o: n for n in m.graph.node for o in n.output}
head_concats = [n for n in m.graph.node if n.op_type == "Concat" and
                all(producer.get(i) is not None and producer[i].op_type == "DequantizeLinear" for i in n.input)]
scales_ok = all(len(c.input) == heads and
                len({float(onnx.numpy_helper.to_array(inits[producer[i].input[1]])) for i in c.input}) == heads
                for c in head_concats)
check(len(head_concats) == 3 * blocks and scales_ok,
      f"{len(head_concats)} per-head Q/DQ groups (q, k, v; want {3 * blocks}), each {heads} heads with distinct scales")

# Every scale and zero point in the graph is the plan's, bit for bit (float32), read back from
# `adalog inspect --json`: the Q/DQ pairs are self-consistent, so a wrong zero point or scale
# would barely move the logits; this is where it shows.
plan = json.load(open(inspect_json))["plan"]
f32 = np.float32


def init(name):
    return onnx.numpy_helper.to_array(inits[name])


mismatch = []
checked = 0


def same(name, want):
    global checked
    checked += 1
    got = init(name)
    if got.shape != np.asarray(want).shape or not np.array_equal(got, np.asarray(want, dtype=got.dtype)):
        mismatch.append(name)


def act(prefix, q):
    same(prefix + ".scale", f32(q["scale"]))
    same(prefix + ".zero_point", np.uint8(q["zero_point"]))


def weight(prefix, q):
    offset = 1 << (q["bits"] - 1)
    same(prefix + ".weight_scale", np.array(q["scales"], f32))
    same(prefix + ".weight_zero_point", np.array([z - offset for z in q["zero_points"]], np.int8))


weight("patch_embed", plan["patch_embed"]["weight"])
for b, bq in enumerate(plan["blocks"]):
    for lin in ("qkv", "proj", "fc1", "fc2"):
        weight(f"blocks.{b}.{lin}", bq[lin]["weight"])
        act(f"blocks.{b}.{lin}.input", bq[lin]["input"])
    act(f"blocks.{b}.attn.probs", bq["probs"])
    for t in ("q", "k", "v"):
        for h in range(heads):
            act(f"blocks.{b}.attn.{t}.head{h}", {"scale": bq[t]["scales"][h], "zero_point": bq[t]["zero_points"][h]})
weight("head", plan["head"]["weight"])
act("head.input", plan["head"]["input"])
check(not mismatch and checked == 2 + 2 * 4 * blocks + 2 * 4 * blocks + 2 * blocks + 2 * 3 * heads * blocks + 4,
      f"{checked - len(mismatch)}/{checked} scales and zero points equal the plan's (inspect --json)"
      + (f"; differ: {', '.join(mismatch[:6])}" if mismatch else ""))

x = np.load(xp).astype(np.float32)
y = np.load(yp)
sim = np.load(simp)
fp32 = np.load(fp32p)
got = onnx_numpy_eval.run(m, {m.graph.input[0].name: x.astype(np.float64)})[0]
check(got.shape == sim.shape and np.isfinite(got).all(), f"logits {got.shape}, finite")
diff_fp32 = float(np.abs(got - fp32).max())
check(diff_fp32 > 1e-3, f"logits differ from the FP32 model's (max |diff| {diff_fp32:.4f}): really quantized")
diff_sim = float(np.abs(got - sim).max())
print(f"info: max |logits - simulated| {diff_sim:.5f} (max |simulated| {float(np.abs(sim).max()):.3f})")
top_graph = int((got.argmax(1) == y).sum())
top_sim = int((sim.argmax(1) == y).sum())
top_fp32 = int((fp32.argmax(1) == y).sum())
agree = int((got.argmax(1) == sim.argmax(1)).sum())
print(f"info: top-1 QDQ graph (NumPy) {top_graph}/{y.size}, adalog simulated {top_sim}/{y.size}, "
      f"FP32 {top_fp32}/{y.size}; graph and simulated agree on {agree}")
check(abs(top_graph - top_sim) <= 1, f"top-1 of the QDQ graph {top_graph} within one image of the simulated "
      f"executor's {top_sim}")
print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
