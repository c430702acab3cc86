"""Regenerate the tiny ONNX test models in models/tiny/ (deterministic; seeded random, perturbed weights).

    /usr/bin/python3 models/make_tiny.py [--out models/tiny]

Each model NAME gets NAME.onnx, NAME.input.npy (float32 NCHW) and NAME.output.npy (PyTorch logits,
float32 [batch][classes]); MANIFEST.json describes them all. These models exist to test the importer
and executors for exactness. Their weights are random: never use them for accuracy claims.

Opset 18: torch 1.13 exports up to opset 17 and onnx 1.12 (its version converter and checker) knows
opsets up to 17 only, so the opset-18 models are exported at opset 16 (LayerNorm decomposed into
ReduceMean/Sub/Pow/Add/Sqrt/Div) and then rewritten by to_opset18() below: every Reduce* op that
opset 18 changed (all but ReduceSum, which changed in 13) gets its `axes` attribute moved into an
int64 initializer passed as input 1, and the default-domain opset import is set to 18. No other op
used by these graphs changed between opsets 16 and 18 (17 only added ops; 18 gave Split an optional
num_outputs attribute, Pad an optional axes input and Resize/Scatter* extra attribute values, all
backward compatible). The PyTorch logits are those of the model itself, so the rewrite is checked
end to end by tests/runtime/importer_models_test.cc like every other export.
"""
import argparse
import hashlib
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vit_defs  # noqa: E402
from export import build, export_onnx  # noqa: E402

# name, style, opset, dynamic batch, img, patch, dim, depth, heads, gelu
SPECS = [
    ("tiny_timm_op11_static",        "timm",           11, False, 32, 8, 32, 2, 2, "erf"),
    ("tiny_tv_op12_dyn",             "torchvision",    12, True,  16, 4, 32, 2, 2, "erf"),
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
    # Opset 18 (exported at 16, then to_opset18): decomposed LayerNorm whose ReduceMeans take axes
    # as an input; the mean-pooling one also pools with a ReduceMean(axes input).
    ("tiny_timm_op18_dyn",           "timm",           18, True,  32, 8, 32, 2, 2, "erf"),
    ("tiny_timm_mean_op18_static",   "timm-mean",      18, False, 16, 4, 32, 2, 2, "tanh"),
]

# Opset 18 is produced from an export at this opset (see the module docstring).
OPSET18_SOURCE = 16
# Reduce ops whose `axes` became an input in opset 18.
REDUCE_AXES_INPUT_18 = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                        "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}

CLASSES = 10
MLP_RATIO = 4.0


def seed_of(name):
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def to_opset18(path):
    """Rewrites the opset-16 export at `path` in place into opset 18; returns the ops it changed."""
    m = onnx.load(path)
    defaults = [o for o in m.opset_import if o.domain in ("", "ai.onnx")]
    assert len(defaults) == 1 and defaults[0].version == OPSET18_SOURCE, list(m.opset_import)
    changed = 0
    for k, n in enumerate(m.graph.node):
        if n.op_type not in REDUCE_AXES_INPUT_18:
            continue
        axes = [a for a in n.attribute if a.name == "axes"]
        assert len(n.input) == 1, (n.name, list(n.input))
        if not axes:
            continue  # no axes: reduce over all axes, the same in both opsets
        name = f"{n.name or n.op_type + str(k)}_axes_op18"
        m.graph.initializer.append(numpy_helper.from_array(np.array(axes[0].ints, dtype=np.int64), name))
        n.input.append(name)
        n.attribute.remove(axes[0])
        changed += 1
    defaults[0].version = 18
    m.doc_string = (f"exported by torch {torch.__version__} at opset {OPSET18_SOURCE}, rewritten to "
                    "opset 18 by models/make_tiny.py (Reduce* axes attribute -> input)")
    # onnx 1.12's checker knows opsets <= 17: check the graph structure, not the opset-18 schemas.
    for n in m.graph.node:
        if n.op_type in REDUCE_AXES_INPUT_18:
            assert not any(a.name == "axes" for a in n.attribute), n.name
    onnx.save(m, path)
    return changed


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
        export_opset = OPSET18_SOURCE if opset == 18 else opset
        x, y = export_onnx(model, path, img, export_opset, dyn, batch=batch, seed=seed + 2,
                           graph_name=name)
        rewritten = 0
        if opset == 18:
            rewritten = to_opset18(path)
            assert rewritten >= 4 * depth, (name, rewritten)  # two per decomposed LayerNorm
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
            "layernorm_export": "LayerNormalization" if export_opset >= 17 else "decomposed",
            "attention_export": "nn.MultiheadAttention" if style == "torchvision" else "fused qkv Linear, hand-written",
            "ir_version": onnx.load(path).ir_version,
            "exported_opset": export_opset, "reduce_axes_moved_to_input": rewritten,
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
