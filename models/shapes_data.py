"""Procedural 32x32 RGB pattern task ("shapes") for adalog's second trained benchmark.

12 classes of a localized pattern (Gaussian window, random centre and size) on a cluttered, coloured,
noisy background:
  0-7  oriented sinusoidal gratings, orientation k*22.5 deg (+-JITTER deg), random frequency/phase
  8    plaid: two orthogonal gratings summed (random orientation)
  9    checkerboard: sign of the product of two orthogonal sinusoids (hard edges), random orientation
  10   concentric rings around the window centre
  11   dot lattice: thresholded sum of two orthogonal cosines
The fine classes (22.5 deg orientation steps with jitter, plaid vs checkerboard) depend on small
differences in frequency/orientation, which is what makes low-bit quantization cost accuracy.

Everything is generated from a seed with numpy (PCG64), so make(n, seed) is reproducible.
Images are returned in [0,1], float32, NCHW.
"""
import numpy as np

NUM_CLASSES = 12
IMG = 32
JITTER_DEG = 4.0
CLASS_NAMES = [f"grating_{k * 22.5:g}deg" for k in range(8)] + ["plaid", "checkerboard", "rings", "dots"]


def make(n, seed, balanced=True):
    """Returns (x [n,3,32,32] float32 in [0,1], y [n] int64)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    if balanced:
        y = np.arange(n) % NUM_CLASSES
        rng.shuffle(y)
    else:
        y = rng.integers(0, NUM_CLASSES, n)
    yy, xx = np.mgrid[0:IMG, 0:IMG].astype(np.float64)
    yy, xx = yy[None], xx[None]  # [1,H,W]

    def u(lo, hi):
        return rng.uniform(lo, hi, n)[:, None, None]

    # Pattern geometry.
    cx, cy = u(9, 23), u(9, 23)
    sigma = u(5.0, 9.0)
    freq = u(0.13, 0.30)                       # cycles per pixel
    phase = u(0, 2 * np.pi)
    base_theta = np.deg2rad(y * 22.5 + rng.uniform(-JITTER_DEG, JITTER_DEG, n))
    rand_theta = rng.uniform(0, np.pi, n)
    theta = np.where(y < 8, base_theta, rand_theta)[:, None, None]
    dx, dy = xx - cx, yy - cy
    a = dx * np.cos(theta) + dy * np.sin(theta)
    b = -dx * np.sin(theta) + dy * np.cos(theta)
    w2 = 2 * np.pi * freq
    grating = np.sin(w2 * a + phase)
    plaid = 0.5 * (np.sin(w2 * a + phase) + np.sin(w2 * b + 2 * phase))
    checker = np.sign(np.sin(w2 * a + phase) * np.sin(w2 * b + 2 * phase)) * 0.8
    rings = np.sin(w2 * np.sqrt(dx ** 2 + dy ** 2) + phase)
    dots = np.where(np.cos(w2 * a + phase) + np.cos(w2 * b + 2 * phase) > 1.0, 1.0, -0.6)
    yc = y[:, None, None]
    pat = np.where(yc < 8, grating, np.where(yc == 8, plaid, np.where(yc == 9, checker,
                                                                        np.where(yc == 10, rings, dots))))
    window = np.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2))

    # Colour: background colour + contrast * pattern * window * colour direction.
    bg = rng.uniform(0.25, 0.75, (n, 3))
    cdir = rng.uniform(-1, 1, (n, 3))
    cdir /= np.abs(cdir).max(axis=1, keepdims=True)
    contrast = rng.uniform(0.25, 0.45, n)
    img = bg[:, :, None, None] + (contrast[:, None] * cdir)[:, :, None, None] * (pat * window)[:, None]

    # Clutter: 3 smooth coloured blobs plus a faint random-orientation grating over the whole image.
    for _ in range(3):
        bx, by, bs = u(0, IMG), u(0, IMG), u(3, 8)
        blob = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * bs ** 2))
        img += rng.uniform(-0.2, 0.2, (n, 3))[:, :, None, None] * blob[:, None]
    ct = rng.uniform(0, np.pi, n)[:, None, None]
    cf = u(0.05, 0.35)
    faint = np.sin(2 * np.pi * cf * (xx * np.cos(ct) + yy * np.sin(ct)) + u(0, 2 * np.pi))
    img += rng.uniform(0.0, 0.08, (n, 3))[:, :, None, None] * faint[:, None]
    img += rng.normal(0, 1, img.shape) * rng.uniform(0.03, 0.12, n)[:, None, None, None]
    return np.clip(img, 0, 1).astype(np.float32), y.astype(np.int64)


if __name__ == "__main__":
    import sys
    from PIL import Image
    x, y = make(48, 123)
    order = np.argsort(y, kind="stable")
    x = x[order]
    tiles = (x.transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    rows = [np.concatenate(list(tiles[r * 12:(r + 1) * 12]), axis=1) for r in range(4)]
    grid = np.concatenate(rows, axis=0)
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/shapes_grid.png"
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(out)
    print(out, y[order])
