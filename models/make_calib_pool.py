"""Writes models/{digits,shapes}/calib_pool.npy: 256 preprocessed TRAINING images per model, a
larger pool from which `adalog quantize --calib-size 32 --seed S` draws different calibration sets
(calib.npy holds only 32 images, so seeds could not differ on it).

The training split is reproduced with the training scripts' own seeded code (train_digits.py:
stratified split, SPLIT_SEED; train_shapes.py: shapes_data.make(TRAIN_N, DATA_SEED_TRAIN)), and
checked by regenerating calib.npy bit-for-bit from it before the pool is written. The pool is
np.random.RandomState(POOL_SEED).choice(n_train, 256) (sorted), so it overlaps calib.npy only by
chance. Test images are never in it.

  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 models/make_calib_pool.py [digits] [shapes]
"""
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

POOL_N = 256
POOL_SEED = 12


def train_images(name):
    if name == "digits":
        import train_digits as t
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        d = load_digits()
        X, Y = d.data, d.target.astype(np.int64)
        tr_idx, _ = train_test_split(np.arange(len(X)), test_size=500, stratify=Y, random_state=t.SPLIT_SEED)
        return t, t.to_unit_images(X[np.sort(tr_idx)])
    import shapes_data
    import train_shapes as t
    trx, _ = shapes_data.make(5000, t.DATA_SEED_TRAIN)  # --train-n default, as info.json records
    return t, torch.from_numpy(trx)


def main(names):
    for name in names:
        t, train_u = train_images(name)
        n = len(train_u)
        ci = np.sort(np.random.RandomState(t.CALIB_SEED).choice(n, 32, replace=False))
        calib = t.normalize(train_u[ci]).numpy()
        stored = np.load(os.path.join(HERE, name, "calib.npy"))
        if not np.array_equal(calib, stored):
            sys.exit(f"{name}: the reproduced training split does not regenerate calib.npy "
                     f"(max diff {np.abs(calib - stored).max():.3g}); not writing a pool")
        pi = np.sort(np.random.RandomState(POOL_SEED).choice(n, POOL_N, replace=False))
        pool = t.normalize(train_u[pi]).numpy().astype(np.float32)
        out = os.path.join(HERE, name, "calib_pool.npy")
        np.save(out, pool)
        print(f"{name}: {out} {pool.shape}, {len(np.intersect1d(pi, ci))} images shared with calib.npy")


if __name__ == "__main__":
    main(sys.argv[1:] or ["digits", "shapes"])
