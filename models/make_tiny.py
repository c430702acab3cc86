"""Regenerate the tiny ONNX test models in models/tiny/ (deterministic; seeded random, perturbed weights).

    /usr/bin/python3 models/make_tiny.py [--out models/tiny]

Each model NAME gets NAME.onnx, NAME.input.npy (float32 NCHW) and NAME.output.npy (PyTorch logits,
float32 [batch][classes]); MANIFEST.json describes them all. These models exist to test the importer
and executors for exactness. Their weights are random: never use them for accuracy claims.
"""
import argparse
import hashlib
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vit_defs  # noqa: E402
from export import build, export_onnx  # noqa: E402

# name, style, opset, dynamic batch, img, patch, dim, depth, heads, gelu
SPECS = [
    ("tiny_timm_op13_static",        "timm",           13, False, 32, 8, 32, 2, 2, "erf"),
    ("tiny_timm_op13_dyn_tanh",      "timm",           13, True,  16, 4, 48, 2, 3, "tanh"),
    ("tiny_timm_op15_dyn",           "timm",           15, True,  32, 8, 32, 2, 2, "erf"),
    ("tiny_timm_op17_static",        "timm",           17, False, 32, 8, 48, 2, 4, "erf"),
    ("tiny_timm_op17_dyn",           "timm",           17, True,  32, 8, 64, 2, 4, "erf"),
    ("tiny_timm_op17_dyn_tanh",      "timm",           17, True,  16, 4, 32, 2, 2, "tanh"),
    ("tiny_timm_mean_op17_dyn",      "timm-mean",      17, True,  32, 8, 32, 2, 2, "erf"),
    ("tiny_deit_op14_dyn",           "deit-distilled", 14, True,  32, 8, 48, 2, 3, "erf"),
    ("tiny_deit_op17_static_tanh",   "deit-distilled", 17, False, 16, 4, 32, 2, 2, "tanh"),
    ("tiny_tv_op13_static",          "torchvision",    13, False, 32, 8, 48, 2, 3, "erf"),
    ("tiny_tv_op16_dyn",             "torchvision",    16, True,  16, 4, 32, 2, 2, "erf"),
    ("tiny_tv_op17_dyn",             "torchvision",    17, True,  32, 8, 48, 2, 4, "erf"),
]

CLASSES = 10
MLP_RATIO = 4.0


def seed_of(name):
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "tiny"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    manifest = {
        "note": "Random seeded, perturbed weights: for importer/executor exactness tests only, "
                "never for accuracy. input: float32 NCHW 'input'; output: float32 'logits' [batch][classes]. "
                "Regenerate with /usr/bin/python3 models/make_tiny.py.",
        "torch_version": torch.__version__,
        "models": [],
    }
    for name, style, opset, dyn, img, patch, dim, depth, heads, gelu in SPECS:
        seed = seed_of(name)
        torch.manual_seed(seed)
        model = build(style, img, patch, dim, depth, heads, CLASSES, gelu, MLP_RATIO)
        vit_defs.perturb_(model, seed + 1)
        batch = 3 if dyn else 2
        path = os.path.join(a.out, name + ".onnx")
        x, y = export_onnx(model, path, img, opset, dyn, batch=batch, seed=seed + 2, graph_name=name)
        assert np.all(np.isfinite(y)) and y.std() > 0.05, (name, y.std())
        prefix = {"timm": 1, "timm-mean": 0, "deit-distilled": 2, "torchvision": 1}[style]
        pooling = {"timm": "cls", "timm-mean": "mean", "deit-distilled": "cls_dist_avg",
                   "torchvision": "cls"}[style]
        patches = (img // patch) ** 2
        entry = {
            "name": name, "onnx": name + ".onnx", "input": name + ".input.npy", "output": name + ".output.npy",
            "style": style, "opset": opset, "dynamic_batch": dyn, "reference_batch": batch,
            "in_channels": 3, "image_size": img, "patch": patch, "dim": dim, "depth": depth, "heads": heads,
            "head_dim": dim // heads, "mlp_dim": int(dim * MLP_RATIO), "gelu": gelu, "classes": CLASSES,
            "prefix_tokens": prefix, "patch_tokens": patches, "tokens": prefix + patches, "pooling": pooling,
            "layernorm_eps": 1e-6,
            "layernorm_export": "LayerNormalization" if opset >= 17 else "decomposed",
            "attention_export": "nn.MultiheadAttention" if style == "torchvision" else "fused qkv Linear, hand-written",
            "seed": seed, "onnx_bytes": os.path.getsize(path),
            "output_absmax": float(np.abs(y).max()), "output_std": float(y.std()),
        }
        manifest["models"].append(entry)
        print(f"{name}: {entry['onnx_bytes']} B, logits std {y.std():.3f}")
    with open(os.path.join(a.out, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
