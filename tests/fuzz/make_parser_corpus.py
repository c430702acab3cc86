"""Writes the seed corpora of the parser fuzz targets (deterministic):

    tests/fuzz/corpus_model_file/  quantized model files (fuzz_model_file)
    tests/fuzz/corpus_npy/         .npy files (fuzz_npy)
    tests/fuzz/corpus_image/       JPEG / PNG / BMP / PPM / PGM files (fuzz_image)

Each corpus has valid files covering the formats' variants plus a few malformed ones (truncated,
wrong magic, unsupported dtype, ...). The model files are written by the adalog CLI (quantize of a
micro ViT exported here with a seeded random input as calibration data), so this needs a built
CLI:

    /usr/bin/python3 tests/fuzz/make_parser_corpus.py --adalog build/cli/adalog [--out tests/fuzz]

The importer's corpus (corpus/) comes from make_corpus.py. Keep these corpora small (the fuzzer
grows its own working copy; scripts/fuzz.sh never writes into the committed directories).
"""
import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def fresh(d):
    """Empties d except regress_* files: fuzzer reproducers of fixed bugs, kept as seeds."""
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if not f.startswith("regress_"):
            os.remove(os.path.join(d, f))


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def model_files(adalog, d):
    fresh(d)
    sys.path.insert(0, os.path.join(ROOT, "models"))
    import torch
    import vit_defs
    from export import build, export_onnx
    torch.set_num_threads(1)
    # Micro ViTs (8x8 images, patch 4, dim 16, depth 1: files of a few KB, so the fuzzer runs
    # fast), quantized by the CLI with each activation quantizer kind: AdaLog (log), uniform, twin
    # uniform, log2/logsqrt2; 3..8 bits; the DeiT distillation head (two Linears in HEAD).
    runs = [
        ("timm_w4a4_adalog.adalog", "timm", 17, ["--bits", "W4A4"]),
        ("deit_w3a6_uniform_twin.adalog", "deit-distilled", 14,
         ["--wbits", "3", "--abits", "6", "--softmax", "uniform", "--gelu", "twin", "--no-reparam"]),
        ("timm_mean_w8a8_log2.adalog", "timm-mean", 13,
         ["--bits", "W8A8", "--softmax", "log2", "--gelu", "logsqrt2", "--no-fpcs"]),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for k, (out, style, opset, flags) in enumerate(runs):
            torch.manual_seed(100 + k)
            model = build(style, 8, 4, 16, 1, 2, 3, "erf", 2.0)
            vit_defs.perturb_(model, 200 + k)
            onnx_path = os.path.join(tmp, "m.onnx")
            export_onnx(model, onnx_path, 8, opset, False, batch=2, seed=300 + k)
            path = os.path.join(tmp, out)
            # Relative paths, so the META section names no machine paths. META also records the
            # search time, so reruns differ in those bytes (the rest is deterministic).
            subprocess.run([adalog, "quantize", "m.onnx", "--calib", "m.input.npy", "--calib-size", "2",
                            "--threads", "1", "-o", out] + flags,
                           check=True, stdout=subprocess.DEVNULL, cwd=tmp)
            shutil.copy(path, os.path.join(d, out))
    valid = open(os.path.join(d, runs[0][0]), "rb").read()
    write(d, "truncated_header.adalog", valid[:20])
    write(d, "truncated_half.adalog", valid[: len(valid) // 2])
    write(d, "bad_version_head.adalog", valid[:8] + b"\x07\x00\x00\x00" + valid[12:256])
    write(d, "bad_magic_head.adalog", b"ADALOGX\x00" + valid[8:256])


def npy(arr, version=(1, 0)):
    b = io.BytesIO()
    np.lib.format.write_array(b, arr, version=version, allow_pickle=False)
    return b.getvalue()


def npy_files(d):
    fresh(d)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    write(d, "f4_nchw.npy", npy(x))
    write(d, "f4_matrix_v2.npy", npy(x.reshape(6, 16), (2, 0)))
    write(d, "f4_vector_v3.npy", npy(x.reshape(-1)[:5], (3, 0)))
    write(d, "f4_scalar.npy", npy(np.array(1.5, dtype=np.float32)))
    write(d, "f4_empty.npy", npy(np.zeros((0, 3), dtype=np.float32)))
    write(d, "i8_labels.npy", npy(np.array([3, 1, 4, 1, 5], dtype=np.int64)))
    write(d, "i4_labels.npy", npy(np.array([2, 7, 1], dtype=np.int32)))
    write(d, "f8_unsupported.npy", npy(x[:1, :1].astype(np.float64)))
    write(d, "f4_big_endian.npy", npy(x[:1, :1].astype(">f4")))
    write(d, "f4_fortran.npy", npy(np.asfortranarray(x[0, 0])))
    good = npy(x[0])
    write(d, "f4_truncated.npy", good[:-7])
    write(d, "f4_trailing.npy", good + b"\0\0\0\0")
    write(d, "bad_magic.npy", b"\x93NUMPX" + good[6:])


def image_files(d):
    fresh(d)
    rng = np.random.default_rng(11)
    rgb = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    rgba = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)

    def enc(img, fmt, **kw):
        b = io.BytesIO()
        img.save(b, fmt, **kw)
        return b.getvalue()

    im = Image.fromarray(rgb)
    write(d, "rgb.png", enc(im, "PNG"))
    write(d, "gray.png", enc(Image.fromarray(gray), "PNG"))
    write(d, "rgba_interlaced.png", enc(Image.fromarray(rgba), "PNG", interlace=1))
    write(d, "palette.png", enc(im.convert("P", palette=Image.ADAPTIVE, colors=8), "PNG"))
    write(d, "gray16.png", enc(Image.fromarray((gray.astype(np.uint16) * 257)), "PNG"))
    write(d, "rgb.jpg", enc(im, "JPEG", quality=80))
    write(d, "rgb_progressive_420.jpg", enc(im, "JPEG", quality=60, progressive=True, subsampling=2))
    write(d, "gray.jpg", enc(Image.fromarray(gray), "JPEG", quality=90))
    write(d, "rgb.bmp", enc(im, "BMP"))
    write(d, "rgba.bmp", enc(Image.fromarray(rgba), "BMP"))
    write(d, "rgb.ppm", enc(im, "PPM"))
    write(d, "gray.pgm", enc(Image.fromarray(gray), "PPM"))
    write(d, "tall_1x40.png", enc(Image.fromarray(rgb[:1, :1].repeat(40, axis=0)), "PNG"))
    png = enc(im, "PNG")
    write(d, "truncated.png", png[: len(png) // 2])
    jpg = enc(im, "JPEG", quality=80)
    write(d, "truncated.jpg", jpg[: len(jpg) // 2])
    # A DHT table whose 16 code counts total more than 256 (stb_image would overflow its table;
    # the loader must refuse it).
    k = jpg.index(b"\xff\xc4")
    write(d, "dht_too_many_codes.jpg", jpg[: k + 19] + b"\xff\xff" + jpg[k + 21:])
    write(d, "not_an_image.txt.png", b"this is not an image\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adalog", required=True, help="the adalog CLI binary (writes the model files)")
    ap.add_argument("--out", default=HERE)
    a = ap.parse_args()
    model_files(os.path.abspath(a.adalog), os.path.join(a.out, "corpus_model_file"))
    npy_files(os.path.join(a.out, "corpus_npy"))
    image_files(os.path.join(a.out, "corpus_image"))
    for c in ("corpus_model_file", "corpus_npy", "corpus_image"):
        p = os.path.join(a.out, c)
        n = sum(os.path.getsize(os.path.join(p, f)) for f in os.listdir(p))
        print(f"{c}: {len(os.listdir(p))} files, {n} bytes")


if __name__ == "__main__":
    main()
