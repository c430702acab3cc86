#!/usr/bin/python3
"""PyTorch CPU peer for adalog's end-to-end benchmark (FP32 eager, optionally dynamic int8).

PyTorch cannot load ONNX, so the model is rebuilt from its definition (models/vit_defs.py) with the
same architecture as the ONNX file under test; weights are seeded random (latency does not depend
on them). Prints one JSON line like bench/peers/ort_bench.js:
  {"peer":"pytorch","version":...,"arch":...,"batch":B,"threads":T,"median_ms":...,"p90_ms":...,
   "min_ms":...,"mean_ms":...,"images_per_s":...,"runs":N}

Usage (run with /usr/bin/python3, Debian's torch 1.13):
  /usr/bin/python3 bench/peers/torch_bench.py --arch deit_s --batch 8 --threads 2
  /usr/bin/python3 bench/peers/torch_bench.py --arch deit_s --dynint8     # peer "pytorch-dynint8"
  /usr/bin/python3 bench/peers/torch_bench.py --dims 32,8,48,2,3,10     # any timm-style shape
  /usr/bin/python3 bench/peers/torch_bench.py --list-archs

Threading: OPENBLAS_NUM_THREADS is set (default 1, --blas-threads) before torch is imported and
torch.set_num_threads(T) runs the OpenMP pool. Debian's torch is built with BLAS_INFO=generic, so
nn.Linear goes to the system BLAS (OpenBLAS when libopenblas0-pthread is installed, else the slow
reference BLAS); with blas threads 1 the GEMMs are single-threaded whatever --threads says. The JSON
records blas_threads and the BLAS library so a reader can tell.
"""
import argparse
import json
import os
import sys


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="deit_s", help="architecture name (see --list-archs)")
    ap.add_argument("--dims", default=None, metavar="IMG,PATCH,DIM,DEPTH,HEADS,CLASSES[,POOLING]",
                    help="explicit timm-style shape instead of --arch (pooling: cls|cls_dist|mean; default cls)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OPENBLAS_NUM_THREADS / OMP-free BLAS threads (default 1, see the notes above)")
    ap.add_argument("--dynint8", action="store_true",
                    help="quantize nn.Linear with torch.ao.quantization.quantize_dynamic (qint8)")
    ap.add_argument("--jit", action="store_true", help="torch.jit.trace + freeze instead of eager")
    ap.add_argument("--list-archs", action="store_true")
    a = ap.parse_args(argv)
    for name in ("batch", "threads", "runs", "blas_threads"):
        v = getattr(a, name)
        if not 1 <= v <= 65536:
            ap.error(f"--{name.replace('_', '-')} must be in [1, 65536], got {v}")
    if a.warmup < 0:
        ap.error("--warmup must be >= 0")
    return a


# name -> (img, patch, dim, depth, heads, classes, pooling). timm/DeiT shapes (224, patch 16, 197 tokens).
ARCHS = {
    "deit_t": (224, 16, 192, 12, 3, 1000, "cls"),
    "deit_s": (224, 16, 384, 12, 6, 1000, "cls"),
    "vit_b": (224, 16, 768, 12, 12, 1000, "cls"),
    "deit_b": (224, 16, 768, 12, 12, 1000, "cls"),
    "deit_t_distilled": (224, 16, 192, 12, 3, 1000, "cls_dist"),
    "deit_s_distilled": (224, 16, 384, 12, 6, 1000, "cls_dist"),
}
ALIASES = {"deit-t": "deit_t", "deit-s": "deit_s", "vit-b": "vit_b", "vit_s": "deit_s", "vit-s": "deit_s",
           "deit-b": "deit_b"}


def build_model(arch, dims, seed):
    import torch
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.path.join(repo, "models"))
    import vit_defs  # the models engineer's timm-style ViT (same graph as the exported ONNX files)
    if dims:
        parts = dims.split(",")
        try:
            img, patch, dim, depth, heads, classes = (int(v) for v in parts[:6])
        except ValueError:
            raise SystemExit(f"torch_bench: error: --dims '{dims}': want IMG,PATCH,DIM,DEPTH,HEADS,CLASSES[,POOLING]")
        pooling = parts[6] if len(parts) > 6 else "cls"
        if len(parts) not in (6, 7) or pooling not in ("cls", "cls_dist", "mean") or min(
                img, patch, dim, depth, heads, classes) <= 0 or dim % heads or img % patch:
            raise SystemExit(f"torch_bench: error: --dims '{dims}' is not a valid ViT shape")
        name = "vit_%d_p%d_d%d_L%d_h%d_c%d_%s" % (img, patch, dim, depth, heads, classes, pooling)
    else:
        name = ALIASES.get(arch, arch)
        if name not in ARCHS:
            raise SystemExit(f"torch_bench: error: unknown --arch '{arch}' (known: {', '.join(sorted(ARCHS))})")
        img, patch, dim, depth, heads, classes, pooling = ARCHS[name]
    torch.manual_seed(seed)
    model = vit_defs.TimmViT(img_size=img, patch=patch, in_chans=3, num_classes=classes, dim=dim, depth=depth,
                             heads=heads, mlp_ratio=4.0, gelu="erf", pooling=pooling)
    return model.eval(), name, img


def blas_library():
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
        return ",".join(sorted(os.path.basename(p) + "@" + os.path.basename(os.path.dirname(p)) for p in libs))
    except OSError:
        return "unknown"


def main(argv):
    a = parse_args(argv)
    if a.list_archs:
        for k, v in sorted(ARCHS.items()):
            print(k, "img=%d patch=%d dim=%d depth=%d heads=%d classes=%d pooling=%s" % v)
        return 0
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.blas_threads)  # must precede `import torch`
    import time
    import torch
    torch.set_num_threads(a.threads)
    model, name, img = build_model(a.arch, a.dims, a.seed)
    peer = "pytorch"
    if a.dynint8:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        peer = "pytorch-dynint8"
    g = torch.Generator().manual_seed(a.seed + 1)
    x = torch.randn(a.batch, 3, img, img, generator=g)
    with torch.inference_mode():
        if a.jit:
            model = torch.jit.freeze(torch.jit.trace(model, x))
            peer += "-jit"
        for _ in range(a.warmup):
            model(x)
        ms = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            model(x)
            ms.append((time.perf_counter() - t0) * 1e3)
    s = sorted(ms)
    n = len(s)
    median = s[(n - 1) // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    p90 = s[min(n - 1, -(-9 * n // 10) - 1)]
    r3 = lambda v: round(v, 3)  # noqa: E731
    print(json.dumps({
        "peer": peer, "version": torch.__version__, "arch": name, "batch": a.batch, "threads": a.threads,
        "median_ms": r3(median), "p90_ms": r3(p90), "min_ms": r3(s[0]), "mean_ms": r3(sum(ms) / n),
        "images_per_s": r3(a.batch * 1000.0 / median), "runs": a.runs, "warmup": a.warmup,
        "blas_threads": a.blas_threads, "blas": blas_library(),
        "quantized_engine": torch.backends.quantized.engine if a.dynint8 else None,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
