#!/usr/bin/python3
"""Cross-check adalog's logits against ONNX Runtime on the same input.

  /usr/bin/python3 bench/peers/crosscheck.py MODEL.onnx [--input X.npy] [--adalog build/cli/adalog]
      [--model-file FILE] [--threads T] [--tol 1e-3]

Runs `node bench/peers/ort_bench.js MODEL.onnx --input X --output ort.npy` and
`adalog run FILE --input X --output adalog.npy` (FILE: --model-file, e.g. a quantized model, else
MODEL.onnx), then prints one JSON line: max |diff|, max relative diff (to the largest |ORT logit|),
mean cosine, top-1 agreement and KL(ORT || adalog) of the softmaxes. The input defaults to the
NAME.input.npy the export scripts write beside NAME.onnx. Exit 1 when max relative diff > --tol
(use a loose --tol, or --no-fail, for quantized models).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def compare(ref, got):
    ref = ref.astype(np.float64)
    got = got.astype(np.float64)
    if ref.shape != got.shape:
        raise SystemExit(f"crosscheck: error: shapes differ: ORT {ref.shape}, adalog {got.shape}")
    diff = np.abs(ref - got)
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-30)
    p, q = softmax(ref), softmax(got)
    kl = (p * (np.log(p + 1e-30) - np.log(q + 1e-30))).sum(1)
    return {
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float(diff.max() / max(np.abs(ref).max(), 1e-30)),
        "mean_cosine": float(cos.mean()),
        "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
        "mean_kl": float(kl.mean()),
        "images": int(ref.shape[0]),
    }


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="the FP32 ONNX model ORT runs")
    ap.add_argument("--input", default=None, help="float32 NCHW .npy (default: MODEL's .input.npy)")
    ap.add_argument("--adalog", default=os.path.join(REPO, "build", "cli", "adalog"))
    ap.add_argument("--model-file", default=None, help="what adalog runs (default: MODEL)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tol", type=float, default=1e-3, help="max relative diff allowed")
    ap.add_argument("--no-fail", action="store_true", help="report only, exit 0")
    a = ap.parse_args(argv)
    x = a.input or (a.model[:-5] if a.model.endswith(".onnx") else a.model) + ".input.npy"
    if not os.path.isfile(x):
        raise SystemExit(f"crosscheck: error: input {x} not found (pass --input)")
    with tempfile.TemporaryDirectory() as tmp:
        ort_out, ada_out = os.path.join(tmp, "ort.npy"), os.path.join(tmp, "adalog.npy")
        subprocess.run(["node", os.path.join(REPO, "bench", "peers", "ort_bench.js"), a.model, "--input", x,
                        "--output", ort_out, "--threads", str(a.threads)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([a.adalog, "run", a.model_file or a.model, "--input", x, "--output", ada_out,
                        "--threads", str(a.threads)], check=True, stdout=subprocess.DEVNULL)
        r = compare(np.load(ort_out), np.load(ada_out))
    r.update({"model": os.path.basename(a.model), "adalog_model": os.path.basename(a.model_file or a.model),
              "input": x})
    print(json.dumps(r))
    return 0 if a.no_fail or r["max_rel_diff"] <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
