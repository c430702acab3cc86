"""A small, slow NumPy interpreter for the ONNX ops our ViT exports use (opsets 13-17), and the
QuantizeLinear / DequantizeLinear of QDQ graphs (`adalog export --format qdq`).

No ONNX Runtime is installed for Python here (onnx 1.12 has no reference evaluator), so this is how
the model scripts check an export independently of PyTorch: run NAME.onnx on NAME.input.npy and
compare with NAME.output.npy, optionally at a different batch size for dynamic-batch models.

    /usr/bin/python3 models/onnx_numpy_eval.py models/tiny/*.onnx [--batch 5]

Reference only (float64 internally); not part of the C++ engine.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from scipy.special import erf

DT = {1: np.float32, 6: np.int32, 7: np.int64, 9: np.bool_, 11: np.float64}


def _attr(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(x, w, b, strides, pads, group):
    assert group == 1 and not any(pads)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    sh, sw = strides
    oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = x[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]
    y = np.einsum("ncklhw,ockl->nohw", cols, w)
    return y + (b.reshape(1, -1, 1, 1) if b is not None else 0)


def _per_axis(p, ndim, axis):
    """A scale or zero point broadcast along `axis` (per-axis), or as is (per-tensor, rank 0)."""
    p = np.asarray(p)
    if p.ndim == 0:
        return p
    shape = [1] * ndim
    shape[axis % ndim] = p.size
    return p.reshape(shape)


def _quantize_linear(x, scale, zp, axis):
    """ONNX QuantizeLinear (uint8/int8): saturate(round_half_even(x / scale) + zp), computed in
    float32 like ONNX Runtime's MLAS kernel (true division, then round to nearest even)."""
    zp = np.zeros((), np.uint8) if zp is None else np.asarray(zp)
    info = np.iinfo(zp.dtype)
    x32 = np.asarray(x).astype(np.float32)
    t = x32 / _per_axis(scale, x32.ndim, axis).astype(np.float32)
    c = np.rint(t).astype(np.int64) + _per_axis(zp, x32.ndim, axis).astype(np.int64)
    return np.clip(c, info.min, info.max).astype(zp.dtype)


def _dequantize_linear(c, scale, zp, axis):
    """ONNX DequantizeLinear: (c - zp) * scale in float32."""
    c = np.asarray(c)
    zp = np.zeros((), c.dtype) if zp is None else np.asarray(zp)
    d = (c.astype(np.int32) - _per_axis(zp, c.ndim, axis).astype(np.int32)).astype(np.float32)
    return d * _per_axis(scale, c.ndim, axis).astype(np.float32)


def run(model, feeds):
    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for k, v in feeds.items():
        env[k] = v
    for node in model.graph.node:
        a = _attr(node)
        i = [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Constant":
            out = numpy_helper.to_array(a["value"])
        elif op == "Identity":
            out = i[0]
        elif op in ("Add", "Sub", "Mul", "Div", "Pow", "Equal"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Pow": np.power, "Equal": np.equal}
            if op == "Div":
                out = (i[0] // i[1]) if np.issubdtype(i[0].dtype, np.integer) else i[0] / i[1]
            else:
                out = f[op](i[0], i[1])
            if op != "Equal" and np.issubdtype(np.asarray(i[0]).dtype, np.integer):
                out = np.asarray(out).astype(i[0].dtype)
        elif op == "Sqrt":
            out = np.sqrt(i[0])
        elif op == "Erf":
            out = erf(i[0])
        elif op == "Tanh":
            out = np.tanh(i[0])
        elif op == "MatMul":
            out = np.matmul(i[0], i[1])
        elif op == "Gemm":
            A = i[0].T if a.get("transA", 0) else i[0]
            B = i[1].T if a.get("transB", 0) else i[1]
            out = a.get("alpha", 1.0) * (A @ B)
            if len(i) > 2 and i[2] is not None:
                out = out + a.get("beta", 1.0) * i[2]
        elif op == "Softmax":
            ax = a.get("axis", -1)
            e = np.exp(i[0] - i[0].max(axis=ax, keepdims=True))
            out = e / e.sum(axis=ax, keepdims=True)
        elif op == "ReduceMean":
            out = i[0].mean(axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))
        elif op == "LayerNormalization":
            ax = a.get("axis", -1)
            axes = tuple(range(ax % i[0].ndim, i[0].ndim))
            mu = i[0].mean(axis=axes, keepdims=True)
            var = ((i[0] - mu) ** 2).mean(axis=axes, keepdims=True)
            out = (i[0] - mu) / np.sqrt(var + a.get("epsilon", 1e-5)) * i[1]
            if len(i) > 2 and i[2] is not None:
                out = out + i[2]
        elif op == "Conv":
            out = _conv(i[0], i[1], i[2] if len(i) > 2 else None, a.get("strides", [1, 1]),
                        a.get("pads", [0, 0, 0, 0]), a.get("group", 1))
        elif op == "Shape":
            out = np.array(i[0].shape, dtype=np.int64)
        elif op == "Gather":
            out = np.take(i[0], i[1].astype(np.int64), axis=a.get("axis", 0))
        elif op == "Unsqueeze":
            out = i[0]
            for ax in sorted(int(v) % (out.ndim + len(i[1])) for v in i[1]):
                out = np.expand_dims(out, ax)
        elif op == "Squeeze":
            out = np.squeeze(i[0], axis=tuple(int(v) for v in i[1])) if len(i) > 1 else np.squeeze(i[0])
        elif op == "Concat":
            out = np.concatenate(i, axis=a["axis"])
        elif op == "Reshape":
            shape = [int(s) for s in i[1]]
            shape = [i[0].shape[k] if s == 0 else s for k, s in enumerate(shape)]
            out = i[0].reshape(shape)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            out = i[0].reshape(int(np.prod(i[0].shape[:ax])), -1)
        elif op == "Transpose":
            out = np.transpose(i[0], a.get("perm"))
        elif op == "Slice":
            x = i[0]
            starts, ends = i[1], i[2]
            axes = i[3] if len(i) > 3 and i[3] is not None else range(len(starts))
            steps = i[4] if len(i) > 4 and i[4] is not None else [1] * len(starts)
            sl = [slice(None)] * x.ndim
            for s, e, ax, st in zip(starts, ends, axes, steps):
                sl[int(ax)] = slice(int(s), int(e), int(st))
            out = x[tuple(sl)]
        elif op == "Split":
            ax = a.get("axis", 0)
            sizes = np.cumsum(i[1])[:-1]
            outs = np.split(i[0], sizes, axis=ax)
            for name, v in zip(node.output, outs):
                env[name] = v
            continue
        elif op == "ConstantOfShape":
            v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
            out = np.full([int(s) for s in i[0]], v.reshape(-1)[0], dtype=v.dtype)
        elif op == "Expand":
            shape = np.broadcast_shapes(i[0].shape, tuple(int(s) for s in i[1]))
            out = np.broadcast_to(i[0], shape).copy()
        elif op == "Where":
            out = np.where(i[0], i[1], i[2])
        elif op == "QuantizeLinear":
            out = _quantize_linear(i[0], i[1], i[2], a.get("axis", 1))
        elif op == "DequantizeLinear":
            out = _dequantize_linear(i[0], i[1], i[2], a.get("axis", 1))
        elif op == "Cast":
            out = np.asarray(i[0]).astype(DT[a["to"]])
        else:
            raise NotImplementedError(op)
        if isinstance(out, np.ndarray) and out.dtype == np.float32:
            out = out.astype(np.float64)
        env[node.output[0]] = out
    return [env[o.name] for o in model.graph.output]


def check(path, batch=None, tol=1e-4):
    m = onnx.load(path)
    stem = path[:-5]
    x = np.load(stem + ".input.npy")
    y = np.load(stem + ".output.npy")
    if batch is not None and batch != x.shape[0]:
        reps = -(-batch // x.shape[0])
        x = np.concatenate([x] * reps)[:batch]
        y = np.concatenate([y] * reps)[:batch]
    got = run(m, {m.graph.input[0].name: x.astype(np.float64)})[0]
    err = float(np.abs(got - y).max())
    scale = float(np.abs(y).max())
    ok = err <= tol * max(1.0, scale)
    print(f"{'OK ' if ok else 'BAD'} {os.path.basename(path)} batch {x.shape[0]} max|err| {err:.2e} "
          f"(max|y| {scale:.2f})")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("onnx", nargs="+")
    ap.add_argument("--batch", type=int, default=None, help="tile the reference input to this batch "
                    "(only meaningful for dynamic-batch models)")
    a = ap.parse_args()
    bad = [p for p in a.onnx if not check(p, a.batch)]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
