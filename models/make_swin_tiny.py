"""Regenerate the tiny Swin ONNX test models in models/tiny/swin/ (deterministic; seeded random, perturbed weights).

    /usr/bin/python3 models/make_swin_tiny.py [--out models/tiny/swin] [--swin-t | --swin-t-only]

Like make_tiny.py: each NAME gets NAME.onnx, NAME.input.npy (float32 NCHW, batch 2 static / 3 dynamic)
and NAME.output.npy (PyTorch eval logits), and MANIFEST.json lists every field. They live in a
subfolder so that tests/cli/tiny_models.sh (which runs every models/tiny/*.onnx end to end) keeps
testing only what the importer supports; move them up once Swin imports.
Families: "timm" = swin_defs.TimmSwin (the mask and the relative position index are constant
buffers), "tv" = torchvision 0.14's SwinTransformer (pads, rolls and builds the mask at run time, so
dynamic exports carry Shape chains), "timm_v2" = TimmSwin(version=2): Swin V2's cosine attention,
log-spaced CPB MLP and res-post-norm, exported only so that the importer's rejection of V2 can be
tested (torchvision 0.14's own swin_v2_* do not export with torch 1.13: its attention zeroes the k
bias in place, aten::zero, which has no ONNX symbolic).
Names: *_pad models have a grid that is not a multiple of the window (padding path, and an odd
grid before a patch merge).
--swin-t also writes models/generated/swin_t_op17_dyn.onnx (torchvision swin_t, 224x224, dynamic
batch, random weights; about 110 MB, git-ignored) with its reference input/output (batch 2).
Random weights: never use these models for accuracy claims.
"""
import argparse
import collections
import hashlib
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import swin_defs  # noqa: E402
from export import export_onnx  # noqa: E402

CLASSES = 10
# name, family, opset, dynamic batch, img, patch, embed_dim, depths, heads, window, mlp_ratio
SPECS = [
    ("tiny_swin_timm_op13_static",     "timm",  13, False, 32, 2, 24, (2, 2), (2, 4), 4, 4.0),
    ("tiny_swin_timm_op17_dyn",        "timm",  17, True,  32, 2, 24, (2, 2), (2, 4), 4, 2.0),
    ("tiny_swin_timm_op13_dyn_pad",    "timm",  13, True,  36, 2, 24, (2, 2), (2, 4), 4, 2.0),
    ("tiny_swin_timm_op17_static_pad", "timm",  17, False, 36, 2, 24, (2, 2), (2, 4), 4, 2.0),
    ("tiny_swin_timm3_op17_dyn",       "timm",  17, True,  32, 2, 12, (2, 2, 2), (1, 2, 4), 4, 2.0),
    ("tiny_swin_tv_op13_static",       "tv",    13, False, 32, 2, 16, (2, 1), (2, 4), 4, 2.0),
    ("tiny_swin_tv_op17_dyn",          "tv",    17, True,  32, 2, 16, (2, 1), (2, 4), 4, 2.0),
    ("tiny_swin_tv_op13_dyn_pad",      "tv",    13, True,  36, 2, 16, (2, 1), (2, 4), 4, 2.0),
    ("tiny_swin_tv_op17_static_pad",   "tv",    17, False, 36, 2, 16, (2, 1), (2, 4), 4, 2.0),
    ("tiny_swinv2_timm_op17_static",   "timm_v2", 17, False, 32, 2, 16, (2, 1), (2, 4), 4, 2.0),
]
SIZE_LIMIT = 500_000


def seed_of(name):
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def grids(img, patch, n_stages):
    g = img // patch
    out = []
    for _ in range(n_stages):
        out.append(g)
        g = -(-g // 2)
    return out


def build(family, img, patch, dim, depths, heads, window, mlp_ratio):
    if family == "timm":
        return swin_defs.TimmSwin(img_size=img, patch=patch, num_classes=CLASSES, embed_dim=dim, depths=depths,
                                  heads=heads, window=window, mlp_ratio=mlp_ratio)
    if family == "tv":
        return swin_defs.make_torchvision_swin(patch=patch, embed_dim=dim, depths=depths, heads=heads,
                                               window=window, mlp_ratio=mlp_ratio, num_classes=CLASSES)
    if family == "timm_v2":
        return swin_defs.TimmSwin(img_size=img, patch=patch, num_classes=CLASSES, embed_dim=dim, depths=depths,
                                  heads=heads, window=window, mlp_ratio=mlp_ratio, version=2)
    raise ValueError(family)


def op_counts(path):
    m = onnx.load(path)
    return len(m.graph.node), dict(sorted(collections.Counter(n.op_type for n in m.graph.node).items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "tiny", "swin"))
    ap.add_argument("--swin-t", action="store_true", help="also export models/generated/swin_t_op17_dyn.onnx and swin_t_op13_static.onnx")
    ap.add_argument("--swin-t-only", action="store_true", help="only the swin_t export")
    a = ap.parse_args()
    a.swin_t = a.swin_t or a.swin_t_only
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    manifest = {
        "note": "Random seeded, perturbed weights: for importer/executor exactness tests only, never for "
                "accuracy. input: float32 NCHW 'input'; output: float32 'logits' [batch][classes]. "
                "Regenerate with /usr/bin/python3 models/make_swin_tiny.py.",
        "torch_version": torch.__version__,
        "models": [],
    }
    for name, family, opset, dyn, img, patch, dim, depths, heads, window, mlp_ratio in ([] if a.swin_t_only else SPECS):
        seed = seed_of(name)
        torch.manual_seed(seed)
        model = build(family, img, patch, dim, depths, heads, window, mlp_ratio)
        swin_defs.perturb_(model, seed + 1)
        batch = 3 if dyn else 2
        path = os.path.join(a.out, name + ".onnx")
        _, y = export_onnx(model, path, img, opset, dyn, batch=batch, seed=seed + 2, graph_name=name)
        assert np.all(np.isfinite(y)) and y.std() > 0.05, (name, y.std())
        size = os.path.getsize(path)
        assert size < SIZE_LIMIT, (name, size)
        g = grids(img, patch, len(depths))
        nodes, ops = op_counts(path)
        entry = {
            "name": name, "onnx": name + ".onnx", "input": name + ".input.npy", "output": name + ".output.npy",
            "family": family, "swin_version": 2 if family == "timm_v2" else 1, "opset": opset, "dynamic_batch": dyn,
            "reference_batch": batch, "in_channels": 3, "image_size": img, "patch": patch,
            "embed_dim": dim, "depths": list(depths), "heads": list(heads), "window": window,
            "mlp_ratio": mlp_ratio, "stage_grids": g, "stage_dims": [dim * 2 ** i for i in range(len(depths))],
            "padded": any(x % window for x in g if x > window) or any(x % 2 for x in g[:-1]),
            "gelu": "erf", "classes": CLASSES, "layernorm_eps": swin_defs.LN_EPS, "seed": seed,
            "onnx_bytes": size, "nodes": nodes, "op_counts": ops,
            "output_absmax": float(np.abs(y).max()), "output_std": float(y.std()),
        }
        manifest["models"].append(entry)
        print(f"{name}: {size} B, {nodes} nodes, logits std {y.std():.3f}", flush=True)
    if not a.swin_t_only:
        with open(os.path.join(a.out, "MANIFEST.json"), "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
    if a.swin_t:
        gen = os.path.join(HERE, "generated")
        torch.manual_seed(0)
        m = swin_defs.make_torchvision_swin("swin_t")
        swin_defs.perturb_(m, 1)
        # The two opsets: 17 with a dynamic batch, 13 (LayerNorm decomposed) static.
        for name, opset, dyn in (("swin_t_op17_dyn", 17, True), ("swin_t_op13_static", 13, False)):
            path = os.path.join(gen, name + ".onnx")
            _, y = export_onnx(m, path, 224, opset, dyn, batch=2, seed=2, graph_name=name)
            nodes, ops = op_counts(path)
            print(f"{name}: {os.path.getsize(path)} B, {nodes} nodes, logits std {y.std():.3f}")
            print(json.dumps(ops))


if __name__ == "__main__":
    main()
