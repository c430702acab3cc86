#!/usr/bin/python3
"""Rebuilds the int8 graphs ONNX Runtime's own quantization tools make, as benchmark peers.

A user who wants a faster ViT on a CPU with ONNX Runtime calls `onnxruntime.quantization`. There is
no Python onnxruntime on this machine, so this script rewrites the FP32 graph with the `onnx`
package into the node patterns those tools emit (read from onnxruntime/python/tools/quantization/:
quantize.py, onnx_quantizer.py, qdq_quantizer.py, base_quantizer.py, quant_utils.py, operators/
matmul.py, gemm.py, conv.py; written anew here, not copied), so that ORT's graph optimizer sees
what it would see for a real user and fuses the same kernels.

  --mode dynamic   = quantize_dynamic(fp32, out) with its defaults (QOperator format):
      * every Gemm (alpha = beta = 1, transA = 0, constant B) becomes MatMul + Add (B transposed
        offline when transB = 1), as the dynamic quantizer does before quantizing;
      * MatMul with a constant B (MatMulConstBOnly, the dynamic default): the activation goes
        through DynamicQuantizeLinear (uint8, range taken per call), the weight is int8
        per-tensor symmetric (scale = max|w| / 127, zero point 0), then MatMulInteger -> Cast
        (float) -> Mul by Mul(activation scale, weight scale); the bias Add stays FP32;
      * the attention matmuls (q@k^T, attn@V: no constant input) stay FP32;
      * Conv with a constant weight: DynamicQuantizeLinear + ConvInteger (int8 per-tensor weight)
        -> Cast -> Mul by the scale product -> Add of the FP32 bias reshaped to [1, C, 1, 1].
  --mode qdq       = quantize_static(fp32, out, reader, quant_format=QDQ, per_channel=True,
                     activation_type=QUInt8, weight_type=QInt8, calibrate_method=MinMax,
                     op_types_to_quantize=["MatMul", "Gemm", "Conv"]), the x86 (U8S8) recipe:
      * every MatMul / Gemm / Conv gets QuantizeLinear -> DequantizeLinear on each activation
        input and on its output (QDQ's default: outputs are quantized too); the attention
        matmuls are MatMuls with two activation inputs, so both get Q/DQ;
      * activations: uint8 asymmetric, range [min(0, lo), max(0, hi)] over the calibration set
        (MinMax: ORT adds ReduceMin/ReduceMax outputs and runs the graph; so does this script,
        through onnxruntime-node, bench/peers/ort_bench.js --all-outputs);
      * weights: int8 per-channel symmetric (scale = max|w| / 127 per output channel: Conv axis 0,
        MatMul axis 1, Gemm axis 0 with transB = 1), stored int8 + DequantizeLinear(axis);
      * Gemm / Conv biases: int32, scale = activation scale * weight scale, zero point 0.

Which kernels ORT then runs is checked with `node bench/peers/ort_bench.js OUT.onnx
--optimized-model OPT.onnx` (bench/RESULTS.md, "ORT int8 peers").

    /usr/bin/python3 bench/peers/ort_quantize.py MODEL.onnx --mode dynamic -o OUT.onnx
    /usr/bin/python3 bench/peers/ort_quantize.py MODEL.onnx --mode qdq --calib X.npy -o OUT.onnx
    /usr/bin/python3 bench/peers/ort_quantize.py MODEL.onnx --mode qdq --calib-random 8 -o OUT.onnx

--calib-random N calibrates on N seeded N(0,1) images: a speed peer only (random-weight DeiT-S),
never an accuracy claim. Output: the model plus one JSON line on stdout (mode, node counts).
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
QUANTIZED_OPS_QDQ = ("MatMul", "Gemm", "Conv")


class Graph:
    """The FP32 graph being rewritten: nodes in topological order, initializers by name."""

    def __init__(self, model):
        self.model = model
        self.g = model.graph
        self.inits = {t.name: t for t in self.g.initializer}
        self.new_inits = []
        self.used_names = {n for node in self.g.node for n in list(node.input) + list(node.output)}
        self.used_names |= set(self.inits) | {i.name for i in self.g.input}

    def const(self, name):
        """The float array of a float initializer, or None when the tensor is not one."""
        t = self.inits.get(name)
        if t is None or t.data_type != TensorProto.FLOAT:
            return None
        return numpy_helper.to_array(t)

    def unique(self, name):
        base, k = name, 0
        while name in self.used_names:
            k += 1
            name = f"{base}_{k}"
        self.used_names.add(name)
        return name

    def add_init(self, array, name):
        name = self.unique(name)
        t = numpy_helper.from_array(np.asarray(array), name)
        self.new_inits.append(t)
        self.inits[name] = t
        return name

    def finish(self, nodes, tag):
        """Replaces the node list, drops initializers nothing reads any more, records the recipe."""
        del self.g.node[:]
        self.g.node.extend(nodes)
        self.g.initializer.extend(self.new_inits)
        read = {n for node in self.g.node for n in node.input} | {o.name for o in self.g.output}
        keep = [t for t in self.g.initializer if t.name in read]
        del self.g.initializer[:]
        self.g.initializer.extend(keep)
        entry = self.model.metadata_props.add()
        entry.key, entry.value = "adalog.ort_peer", tag


def symmetric_int8(w, axis=None):
    """int8 codes and float32 scale(s) with zero point 0: scale = max|w| / 127 (range [-127, 127],
    ORT's symmetric int8), per tensor (axis None) or per slice along `axis`."""
    if axis is None:
        amax = np.float32(np.abs(w).max())
        scale = np.float32(amax / 127.0) if amax > 0 else np.float32(1.0)
        return np.clip(np.rint(w / scale), -127, 127).astype(np.int8), scale
    red = tuple(d for d in range(w.ndim) if d != axis)
    amax = np.abs(w).max(axis=red).astype(np.float32)
    scale = np.where(amax > 0, amax / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def asymmetric_uint8(lo, hi):
    """Scale and uint8 zero point of a calibrated range, widened to contain 0 (ORT's MinMax +
    compute_scale_zp for QUInt8): scale = (hi - lo) / 255, zero point = round(-lo / scale)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi == lo:
        return np.float32(1.0), np.uint8(0)
    scale = np.float32((hi - lo) / 255.0)
    zp = np.clip(np.rint(-lo / float(scale)), 0, 255)
    return scale, np.uint8(zp)


def attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


# ---------------------------------------------------------------------------------------------
# quantize_dynamic (QOperator)
# ---------------------------------------------------------------------------------------------
def gemm_to_matmul(gr):
    """Gemm(A, B, C) with alpha = beta = 1, transA = 0 and a constant B -> MatMul(A, B') + Add(C)."""
    out = []
    for node in gr.g.node:
        a = attrs(node)
        b = gr.const(node.input[1]) if node.op_type == "Gemm" else None
        if (node.op_type != "Gemm" or b is None or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0
                or a.get("transA", 0) != 0):
            out.append(node)
            continue
        if a.get("transB", 0):
            b_name = gr.add_init(np.ascontiguousarray(b.T), node.input[1] + "_transposed")
        else:
            b_name = node.input[1]
        has_c = len(node.input) > 2 and node.input[2]
        mm_out = gr.unique(node.output[0] + "_MatMul") if has_c else node.output[0]
        out.append(helper.make_node("MatMul", [node.input[0], b_name], [mm_out], name=node.name + "_MatMul"))
        if has_c:
            out.append(helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=node.name + "_Add"))
    del gr.g.node[:]
    gr.g.node.extend(out)


def quantize_dynamic(model):
    gr = Graph(model)
    gemm_to_matmul(gr)
    nodes = []
    dql = {}  # activation -> (codes, scale, zero point): one DynamicQuantizeLinear per tensor
    wq = {}  # weight initializer -> (codes, scale, zero point) names, shared by its readers

    def activation(name):
        if name not in dql:
            q, s, z = (gr.unique(name + sfx) for sfx in ("_quantized", "_scale", "_zero_point"))
            nodes.append(helper.make_node("DynamicQuantizeLinear", [name], [q, s, z], name=name + "_QuantizeLinear"))
            dql[name] = (q, s, z)
        return dql[name]

    def weight(name):
        if name not in wq:
            codes, scale = symmetric_int8(gr.const(name))
            wq[name] = (gr.add_init(codes, name + "_quantized"), gr.add_init(scale, name + "_scale"),
                        gr.add_init(np.int8(0), name + "_zero_point"))
        return wq[name]

    def integer_op(node, op, extra_attrs):
        """op(x codes, w codes, x zp, w zp) -> Cast float -> Mul by (x scale * w scale); returns the
        name of the scaled output (the caller names it)."""
        xq, xs, xz = activation(node.input[0])
        w_q, ws, wz = weight(node.input[1])
        base = node.name or node.output[0]
        acc = gr.unique(node.output[0] + "_output_quantized")
        nodes.append(helper.make_node(op, [xq, w_q, xz, wz], [acc], name=base + "_quant", **extra_attrs))
        acc_f = gr.unique(acc + "_cast_output")
        nodes.append(helper.make_node("Cast", [acc], [acc_f], name=acc + "_cast", to=TensorProto.FLOAT))
        scales = gr.unique(base + "_quant_scales_mul:0")
        nodes.append(helper.make_node("Mul", [xs, ws], [scales], name=base + "_quant_scales_mul"))
        return acc_f, scales, base

    counts = collections.Counter()
    for node in gr.g.node:
        if node.op_type == "MatMul" and gr.const(node.input[1]) is not None and gr.const(node.input[1]).ndim == 2 \
                and gr.const(node.input[0]) is None:
            acc_f, scales, base = integer_op(node, "MatMulInteger", {})
            nodes.append(helper.make_node("Mul", [acc_f, scales], [node.output[0]], name=base + "_quant_output_scale_mul"))
            counts["MatMul->MatMulInteger"] += 1
        elif node.op_type == "Conv" and gr.const(node.input[1]) is not None and gr.const(node.input[0]) is None:
            acc_f, scales, base = integer_op(node, "ConvInteger", attrs(node))
            has_bias = len(node.input) > 2 and node.input[2]
            scaled = gr.unique(node.output[0] + "_scaled_output") if has_bias else node.output[0]
            nodes.append(helper.make_node("Mul", [acc_f, scales], [scaled], name=base + "_quant_output_scale_mul"))
            if has_bias:
                shape = gr.add_init(np.array([1, -1, 1, 1], dtype=np.int64), node.output[0] + "_bias_reshape_shape")
                rb = gr.unique(node.output[0] + "_bias_reshape_output")
                nodes.append(helper.make_node("Reshape", [node.input[2], shape], [rb], name=base + "_bias_reshape"))
                nodes.append(helper.make_node("Add", [scaled, rb], [node.output[0]], name=base + "_bias_add"))
            counts["Conv->ConvInteger"] += 1
        else:
            if node.op_type == "MatMul":
                counts["MatMul left FP32"] += 1
            nodes.append(node)
    gr.finish(nodes, "quantize_dynamic defaults (QOperator, int8 per-tensor weights, MatMulConstBOnly), "
                     "rebuilt by bench/peers/ort_quantize.py")
    return dict(counts)


# ---------------------------------------------------------------------------------------------
# quantize_static, QDQ format
# ---------------------------------------------------------------------------------------------
def qdq_plan(gr):
    """Activation tensors to quantize (inputs and outputs of MatMul/Gemm/Conv, in first-seen order)
    and, per node, how its constant inputs are quantized."""
    acts, weights = [], {}
    seen = set()

    def act(name):
        if name and name not in seen:
            seen.add(name)
            acts.append(name)

    for node in gr.g.node:
        if node.op_type not in QUANTIZED_OPS_QDQ:
            continue
        a = attrs(node)
        for k, name in enumerate(node.input[:2]):
            if gr.const(name) is None:
                act(name)
            elif k == 1:
                axis = {"Conv": 0, "MatMul": 1, "Gemm": 0 if a.get("transB", 0) else 1}[node.op_type]
                if node.op_type == "MatMul" and gr.const(name).ndim != 2:
                    axis = gr.const(name).ndim - 1
                weights[(node.name, name)] = axis
            else:
                raise SystemExit(f"ort_quantize: {node.op_type} {node.name}: constant first input is not handled")
        act(node.output[0])
    return acts, weights


def run_ort_outputs(model, x_path, workdir):
    """Runs `model` in onnxruntime-node on the .npy at x_path; returns {output name: array}."""
    mpath = os.path.join(workdir, "augmented.onnx")
    onnx.save(model, mpath)
    outdir = os.path.join(workdir, "outputs")
    cmd = ["node", os.path.join(HERE, "ort_bench.js"), mpath, "--input", x_path, "--all-outputs", outdir]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"ort_quantize: calibration run failed ({' '.join(cmd)}):\n{p.stderr.strip()}")
    with open(os.path.join(outdir, "outputs.json")) as f:
        names = json.load(f)
    return {n: np.load(os.path.join(outdir, f"{k}.npy")) for k, n in enumerate(names)}


def calibrate_minmax(model, acts, x_path):
    """ORT's MinMax calibration: a ReduceMin and a ReduceMax graph output per activation tensor."""
    aug = onnx.ModelProto()
    aug.CopyFrom(model)
    del aug.graph.output[:]
    names = {}
    for t in acts:
        for red in ("ReduceMin", "ReduceMax"):
            out = f"{t}_{red}_calib"
            aug.graph.node.append(helper.make_node(red, [t], [out], keepdims=0))
            aug.graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, None))
            names[(t, red)] = out
    workdir = tempfile.mkdtemp(prefix="ort_quantize_")
    try:
        got = run_ort_outputs(aug, x_path, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {t: (float(got[names[(t, "ReduceMin")]].min()), float(got[names[(t, "ReduceMax")]].max())) for t in acts}


def quantize_qdq(model, x_path):
    gr = Graph(model)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:
        raise SystemExit(f"ort_quantize: opset {opset}: per-channel DequantizeLinear needs opset >= 13")
    acts, weights = qdq_plan(gr)
    ranges = calibrate_minmax(model, acts, x_path)
    act_q = {t: asymmetric_uint8(*ranges[t]) for t in acts}

    graph_outputs = {o.name for o in gr.g.output}
    rename = {}  # activation -> name its consumers read (the DequantizeLinear output)
    pre = {}  # graph-output activation -> new name of its producer's output
    qdq_after = collections.defaultdict(list)  # producer node index (-1: graph input) -> Q/DQ nodes
    producer = {o: k for k, node in enumerate(gr.g.node) for o in node.output}
    for t in acts:
        scale, zp = act_q[t]
        s = gr.add_init(scale, t + "_scale")
        z = gr.add_init(zp, t + "_zero_point")
        q = gr.unique(t + "_QuantizeLinear_Output")
        if t in graph_outputs:  # the graph keeps its output name: it becomes the DequantizeLinear's
            pre[t] = gr.unique(t + "_QuantizeLinear_Input")
            src, dq = pre[t], t
        else:
            src, dq = t, gr.unique(t + "_DequantizeLinear_Output")
            rename[t] = dq
        qdq_after[producer.get(t, -1)] += [
            helper.make_node("QuantizeLinear", [src, s, z], [q], name=t + "_QuantizeLinear"),
            helper.make_node("DequantizeLinear", [q, s, z], [dq], name=t + "_DequantizeLinear")]

    counts = collections.Counter()
    wdq = {}  # (weight, axis) -> DequantizeLinear output
    nodes = list(qdq_after.get(-1, []))
    for k, node in enumerate(gr.g.node):
        new = onnx.NodeProto()
        new.CopyFrom(node)
        for i, name in enumerate(new.input):
            if name in rename:
                new.input[i] = rename[name]
        for i, name in enumerate(new.output):
            if name in pre:
                new.output[i] = pre[name]
        if node.op_type in QUANTIZED_OPS_QDQ:
            counts[node.op_type] += 1
            w = node.input[1]
            if (node.name, w) in weights:
                axis = weights[(node.name, w)]
                if (w, axis) not in wdq:
                    codes, wscale = symmetric_int8(gr.const(w), axis)
                    qn = gr.add_init(codes, w + "_quantized")
                    sn = gr.add_init(wscale, w + "_scale")
                    zn = gr.add_init(np.zeros(wscale.shape, np.int8), w + "_zero_point")
                    wdq[(w, axis)] = gr.unique(w + "_DequantizeLinear_Output")
                    nodes.append(helper.make_node("DequantizeLinear", [qn, sn, zn], [wdq[(w, axis)]],
                                                  name=w + "_DequantizeLinear", axis=axis))
                new.input[1] = wdq[(w, axis)]
                if node.op_type in ("Gemm", "Conv") and len(node.input) > 2 and node.input[2]:
                    b = gr.const(node.input[2])
                    xscale = act_q[node.input[0]][0]
                    _, wscale = symmetric_int8(gr.const(w), axis)
                    bscale = (np.float32(xscale) * wscale).astype(np.float32)
                    bq = np.rint(b / bscale).astype(np.int32)
                    bn = node.input[2]
                    qn = gr.add_init(bq, bn + "_quantized")
                    sn = gr.add_init(bscale, bn + "_quantized_scale")
                    zn = gr.add_init(np.zeros(bscale.shape, np.int32), bn + "_quantized_zero_point")
                    bdq = gr.unique(bn + "_DequantizeLinear_Output")
                    nodes.append(helper.make_node("DequantizeLinear", [qn, sn, zn], [bdq], name=bn + "_DequantizeLinear",
                                                  axis=0))
                    new.input[2] = bdq
        nodes.append(new)
        nodes.extend(qdq_after.get(k, []))
    gr.finish(nodes, "quantize_static QDQ (per-channel int8 symmetric weights, uint8 asymmetric activations, "
                     "MinMax, MatMul/Gemm/Conv), rebuilt by bench/peers/ort_quantize.py")
    counts["activation tensors Q/DQ"] = len(acts)
    counts["weights per-channel"] = len(wdq)
    return dict(counts)


def calib_input(a, model, workdir):
    """Path of the calibration .npy: --calib as given, or --calib-random N seeded N(0,1) images."""
    if a.calib:
        return a.calib, f"{a.calib}"
    dims = model.graph.input[0].type.tensor_type.shape.dim
    chw = [d.dim_value for d in dims[1:]]
    if len(chw) != 3 or min(chw) <= 0:
        raise SystemExit("ort_quantize: the model's input C,H,W are not static; pass --calib X.npy")
    x = np.random.default_rng(a.calib_seed).standard_normal((a.calib_random, *chw)).astype(np.float32)
    path = os.path.join(workdir, "calib_random.npy")
    np.save(path, x)
    return path, f"{a.calib_random} random N(0,1) images, seed {a.calib_seed}"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="FP32 ONNX model")
    ap.add_argument("--mode", choices=["dynamic", "qdq"], required=True)
    ap.add_argument("-o", "--out", required=True, help="the int8 ONNX model to write")
    ap.add_argument("--calib", default=None, help="qdq: calibration images, float32 NCHW .npy")
    ap.add_argument("--calib-random", type=int, default=0, metavar="N",
                    help="qdq: calibrate on N seeded N(0,1) images instead (speed peers only)")
    ap.add_argument("--calib-seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.mode == "qdq" and (a.calib is None) == (a.calib_random <= 0):
        ap.error("--mode qdq wants exactly one of --calib X.npy and --calib-random N")
    if a.mode == "dynamic" and (a.calib or a.calib_random):
        ap.error("--mode dynamic takes no calibration data")
    model = onnx.load(a.model)
    workdir = tempfile.mkdtemp(prefix="ort_quantize_calib_")
    try:
        if a.mode == "dynamic":
            counts, calib_note = quantize_dynamic(model), None
        else:
            x_path, calib_note = calib_input(a, model, workdir)
            counts = quantize_qdq(model, x_path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    onnx.save(model, a.out)
    ops = collections.Counter(n.op_type for n in model.graph.node)
    print(json.dumps({"mode": a.mode, "model": a.model, "out": a.out, "calibration": calib_note, "rewrites": counts,
                      "node_types": dict(sorted(ops.items()))}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
