#!/usr/bin/python3
"""Writes the decoder reference files for tests/runtime/data_image_decode_test.cc.

Each ref_*.{jpg,png} is encoded by Pillow (or, for 16-bit RGB, by this script with zlib), and
its ref_*.rgb holds Pillow's own decode of that file, Image.open(f).convert("RGB") as raw
height x width x 3 bytes: what torchvision's ImageFolder feeds a model. The test asserts that
adalog's decoder (runtime/data/image_decode.cc) gives the same bytes.
Run: /usr/bin/python3 tests/data/images/make_decoder_refs.py   (Debian 12: Pillow 9.4, libjpeg-turbo)
"""
import os
import struct
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
H, W = 9, 13  # odd sizes: chroma upsampling and MCU edges
y, x = np.mgrid[0:H, 0:W]
BASE = np.stack([x * 19 + y * 3, 255 - x * 11 - y * 7, (x * y * 5) % 256], -1).clip(0, 255).astype(np.uint8)


def png16_rgb(path, rgb16):
    """A 16-bit RGB PNG, written by hand (Pillow has no 16-bit RGB mode to save from)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[r].astype(">u2").tobytes() for r in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw)))
        f.write(chunk(b"IEND", b""))


def main():
    img = Image.fromarray(BASE, "RGB")
    files = {
        "ref_rgb420.jpg": lambda p: img.save(p, quality=85),
        "ref_rgb444_progressive.jpg": lambda p: img.save(p, quality=90, subsampling=0, progressive=True),
        "ref_gray.jpg": lambda p: img.convert("L").save(p, quality=90),
        "ref_cmyk.jpg": lambda p: img.convert("CMYK").save(p, quality=90),  # Adobe APP14, inverted
        "ref_palette_trns.png": lambda p: img.quantize(16).save(p, transparency=3),
        "ref_gray_alpha.png": lambda p: Image.merge("LA", [img.convert("L"), img.split()[0]]).save(p),
        "ref_bilevel.png": lambda p: img.convert("1").save(p),
        "ref_rgba.png": lambda p: img.convert("RGBA").save(p),
        "ref_rgb16.png": lambda p: png16_rgb(p, BASE.astype(np.uint16) * 257 + (x * 37 % 256)[..., None]),
    }
    for name, write in files.items():
        path = os.path.join(HERE, name)
        write(path)
        rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)
        assert rgb.shape == (H, W, 3), (name, rgb.shape)
        with open(os.path.splitext(path)[0] + ".rgb", "wb") as f:
            f.write(rgb.tobytes())
        print(name, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
