"""Architecture-size ViTs with seeded random (perturbed) weights, for latency and exactness tests.

    /usr/bin/python3 models/make_arch.py [deit_t deit_s vit_b ...] [--opset 17] [--static] [--out models/generated]

Writes models/generated/NAME.onnx + NAME.input.npy (batch 2, seeded N(0,1), 3x224x224) + NAME.output.npy
(PyTorch logits). timm-style (fused qkv, cls token), 224x224, patch 16, 1000 classes, erf GELU, LN eps 1e-6,
opset 17, dynamic batch by default. models/generated/ is git-ignored (ViT-B is about 346 MB).
Random weights: never use these for accuracy claims.
"""
import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vit_defs  # noqa: E402
from export import export_onnx  # noqa: E402

ARCHS = {
    "deit_t": dict(dim=192, depth=12, heads=3),
    "deit_s": dict(dim=384, depth=12, heads=6),
    "vit_b": dict(dim=768, depth=12, heads=12),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=list(ARCHS), help=f"subset of {list(ARCHS)}")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--static", action="store_true", help="static batch instead of dynamic")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "generated"))
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for i, name in enumerate(a.names):
        cfg = ARCHS[name]
        seed = 1000 + list(ARCHS).index(name)
        torch.manual_seed(seed)
        model = vit_defs.TimmViT(img_size=224, patch=16, in_chans=3, num_classes=1000, mlp_ratio=4.0,
                                 gelu="erf", pooling="cls", **cfg)
        vit_defs.perturb_(model, seed + 1)
        tag = f"{name}_op{a.opset}_{'static' if a.static else 'dyn'}"
        path = os.path.join(a.out, tag + ".onnx")
        _, y = export_onnx(model, path, 224, a.opset, not a.static, batch=a.batch, seed=seed + 2, graph_name=tag)
        print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB), logits std {y.std():.3f}", flush=True)


if __name__ == "__main__":
    main()
