#!/usr/bin/python3
"""Writes the resize reference files for tests/runtime/data_resize_pillow_test.cc.

Each resize_<case>.png is an RGB image (seeded noise over a gradient, so every interpolation's
overshoot and antialias matter); resize_<case>_<interp>.rgb is torchvision's eval transform of it,
Resize(R, interpolation) + CenterCrop(S) applied to the PIL image (so Pillow's Image.resize does
the resampling, as under torchvision's and timm's ImageFolder loaders), as raw S x S x 3 bytes.
The test preprocesses the PNG with adalog (mean 0, std 1) and requires every value within 1/255.
Run: /usr/bin/python3 tests/data/images/make_resize_refs.py   (Debian 12: Pillow 9.4, torchvision 0.14)
"""
import os

import numpy as np
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode

HERE = os.path.dirname(os.path.abspath(__file__))
# name: (width, height, resize R, crop S)
CASES = {
    "down": (41, 29, 20, 16),      # shorter side 29 -> 20: antialiased downscale by 1.45
    "down3": (64, 50, 18, 16),     # by 2.78: wider kernels
    "up": (7, 5, 16, 16),          # 5 -> 16: upscale by 3.2 (the digits case is 8 -> 16)
}
MODES = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
         "nearest": InterpolationMode.NEAREST}


def main():
    rng = np.random.RandomState(0)
    for name, (w, h, r, s) in CASES.items():
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x * 255.0 / (w - 1), y * 255.0 / (h - 1), (x + y) * 127.0 / (w + h)], -1)
        px = np.clip(base * 0.5 + rng.randint(0, 128, size=(h, w, 3)), 0, 255).astype(np.uint8)
        img = Image.fromarray(px, "RGB")
        img.save(os.path.join(HERE, f"resize_{name}.png"))
        for mode_name, mode in MODES.items():
            t = transforms.Compose([transforms.Resize(r, interpolation=mode), transforms.CenterCrop(s)])
            out = np.asarray(t(img).convert("RGB"))
            assert out.shape == (s, s, 3), out.shape
            with open(os.path.join(HERE, f"resize_{name}_{mode_name}.rgb"), "wb") as f:
                f.write(out.tobytes())


if __name__ == "__main__":
    main()
