"""Export a PyTorch ViT to ONNX with a reference input/output pair beside it.

Library use:
    from export import export_onnx
    export_onnx(model, "out/name.onnx", img_size=32, opset=17, dynamic_batch=True)
writes out/name.onnx, out/name.input.npy (float32 NCHW, seeded) and out/name.output.npy
(PyTorch logits, model.eval(), torch.no_grad()), then runs onnx.checker.

CLI (random seeded, perturbed weights; for exactness tests only, never for accuracy):
    /usr/bin/python3 models/export.py --style timm --img 32 --patch 8 --dim 48 --depth 2 --heads 3 \
        --opset 17 --dynamic --out models/generated/x.onnx
"""
import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vit_defs  # noqa: E402


def stem(path):
    return path[:-5] if path.endswith(".onnx") else path


def export_onnx(model, path, img_size, opset=17, dynamic_batch=True, in_chans=3, batch=2, seed=0,
                input_array=None, constant_folding=True, graph_name=None):
    """Exports `model` to `path`; returns (input, output) numpy arrays that were saved beside it.

    input_array: optional float32 NCHW array to use as the reference input instead of seeded noise.
    """
    model.eval()
    if input_array is None:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, in_chans, img_size, img_size, generator=g)
    else:
        x = torch.from_numpy(np.ascontiguousarray(input_array, dtype=np.float32))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    dyn = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    with torch.no_grad():
        y = model(x)
    # Export with autograd enabled: under no_grad, torch 1.13's nn.MultiheadAttention takes its
    # fused "fast path" (aten::_native_multi_head_attention, even head counts), which has no ONNX
    # symbolic. With grad enabled and parameters requiring grad it runs the plain, exportable ops.
    for p in model.parameters():
        p.requires_grad_(True)
    torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["logits"],
                      dynamic_axes=dyn, opset_version=opset, do_constant_folding=constant_folding)
    m = onnx.load(path)
    if graph_name:
        m.graph.name = graph_name
        onnx.save(m, path)
    onnx.checker.check_model(m)
    xin = x.numpy().astype(np.float32)
    yout = y.numpy().astype(np.float32)
    np.save(stem(path) + ".input.npy", xin)
    np.save(stem(path) + ".output.npy", yout)
    return xin, yout


def build(style, img, patch, dim, depth, heads, classes, gelu="erf", mlp_ratio=4.0, in_chans=3):
    if style == "timm":
        return vit_defs.TimmViT(img, patch, in_chans, classes, dim, depth, heads, mlp_ratio, gelu, "cls")
    if style == "timm-mean":
        return vit_defs.TimmViT(img, patch, in_chans, classes, dim, depth, heads, mlp_ratio, gelu, "mean")
    if style == "deit-distilled":
        return vit_defs.TimmViT(img, patch, in_chans, classes, dim, depth, heads, mlp_ratio, gelu, "cls_dist")
    if style == "torchvision":
        assert gelu == "erf" and in_chans == 3, "torchvision ViT: exact GELU, 3 channels"
        return vit_defs.make_torchvision_vit(img, patch, depth, heads, dim, int(dim * mlp_ratio), classes)
    raise ValueError(f"unknown style {style!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", default="timm", choices=["timm", "timm-mean", "deit-distilled", "torchvision"])
    ap.add_argument("--img", type=int, default=32)
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--dim", type=int, default=48)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--mlp-ratio", type=float, default=4.0)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--gelu", default="erf", choices=["erf", "tanh"])
    ap.add_argument("--opset", type=int, default=17, choices=[13, 14, 15, 16, 17])
    ap.add_argument("--dynamic", action="store_true", help="dynamic batch (dim 0 of input and logits)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-constant-folding", action="store_true")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    model = build(a.style, a.img, a.patch, a.dim, a.depth, a.heads, a.classes, a.gelu, a.mlp_ratio)
    vit_defs.perturb_(model, a.seed + 1)
    _, y = export_onnx(model, a.out, a.img, a.opset, a.dynamic, batch=a.batch, seed=a.seed + 2,
                       constant_folding=not a.no_constant_folding)
    print(f"wrote {a.out} logits shape {y.shape} std {y.std():.4f}")


if __name__ == "__main__":
    main()
