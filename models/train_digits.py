"""Train the digits ViT (adalog's small real-data accuracy benchmark) and write models/digits/.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 models/train_digits.py [--threads 2] [--epochs 60]

Data: sklearn load_digits (1797 images, 8x8, values 0..16).
Split: stratified train_test_split with exactly 500 test images, random_state=SPLIT_SEED (default);
  --split writer uses the writer-ordered split instead (train = first 1297, test = last 500; harder).
Preprocessing (what the ONNX model expects, and what test_x/calib already contain):
  v / 16 -> [0,1]; bilinear upsample 8x8 -> 16x16 (F.interpolate, align_corners=False);
  replicate to 3 channels; (v - MEAN) / STD per channel. NCHW float32, 3x16x16.
Model: timm-style ViT (vit_defs.TimmViT), patch 2 -> 64 patches + cls = 65 tokens, dim 96, depth 6,
  3 heads, MLP ratio 4, exact GELU, cls pooling.
Training: AdamW lr 1e-3, wd 0.05, batch 64, 5 warmup epochs then cosine, label smoothing 0.1,
  random affine (rotation +-12 deg, scale 0.9-1.1, shift +-1 px at 16x16), 60 epochs. Final-epoch
  weights are exported; test accuracy is only monitored, never used for selection.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_common as tc  # noqa: E402  (first: it sets OPENBLAS_NUM_THREADS before numpy loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

SPLIT_SEED = 0
TRAIN_SEED = 1
CALIB_SEED = 2
MEAN = (0.3, 0.3, 0.3)
STD = (0.4, 0.4, 0.4)
IMG = 16
HP = dict(img_size=IMG, patch=2, in_chans=3, num_classes=10, dim=96, depth=6, heads=3, mlp_ratio=4.0,
          gelu="erf", pooling="cls")


def to_unit_images(flat):
    """[N,64] in 0..16 -> [N,3,16,16] in [0,1] (bilinear upsample, 3 channels)."""
    x = torch.from_numpy(flat.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    x = F.interpolate(x, size=(IMG, IMG), mode="bilinear", align_corners=False)
    return x.repeat(1, 3, 1, 1).contiguous()


normalize = tc.normalizer(MEAN, STD)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--split", default="stratified", choices=["stratified", "writer"])
    ap.add_argument("--out", default=os.path.join(tc.HERE, "digits"))
    a = ap.parse_args()
    tc.setup(TRAIN_SEED, a.threads)

    d = load_digits()
    X, Y = d.data, d.target.astype(np.int64)
    idx = np.arange(len(X))
    if a.split == "stratified":
        tr_idx, te_idx = train_test_split(idx, test_size=500, stratify=Y, random_state=SPLIT_SEED)
        tr_idx, te_idx = np.sort(tr_idx), np.sort(te_idx)
    else:
        tr_idx, te_idx = idx[:-500], idx[-500:]
    train_u = to_unit_images(X[tr_idx])
    train_y = torch.from_numpy(Y[tr_idx])
    test_x = normalize(to_unit_images(X[te_idx]))
    test_y = torch.from_numpy(Y[te_idx])

    model, nparams = tc.build_model(HP)
    print(f"train {len(tr_idx)} test {len(te_idx)} params {nparams} threads {a.threads}", flush=True)
    train_hp = dict(epochs=a.epochs, batch=64, lr=1e-3, wd=0.05, warmup_epochs=5, label_smoothing=0.1)
    aug = dict(max_rot_deg=12.0, max_shift_px=1.0, scale_range=(0.9, 1.1))
    wall = tc.train(model, train_u, train_y, seed=TRAIN_SEED, normalize=normalize,
                    augment=lambda x, g: tc.random_affine(x, g, **aug), test_x=test_x, test_y=test_y,
                    **train_hp)
    acc = tc.evaluate(model, test_x, test_y)
    print(f"FP32 test top-1 {acc:.4f} ({round(acc * len(test_y))}/{len(test_y)}), train wall {wall:.0f}s",
          flush=True)

    ci = tc.calib_indices(len(tr_idx), CALIB_SEED)
    calib_x = normalize(train_u[ci])
    calib_y = train_y[ci]
    info = {
        "name": "digits_vit",
        "task": "sklearn load_digits, 10 classes",
        "fp32_top1": acc, "fp32_correct": int(round(acc * len(test_y))),
        "split": a.split, "split_seed": SPLIT_SEED if a.split == "stratified" else None,
        "split_note": "sklearn train_test_split(arange(1797), test_size=500, stratify=target, "
                      f"random_state={SPLIT_SEED}); indices sorted" if a.split == "stratified"
                      else "writer-ordered: train = first 1297, test = last 500",
        "train_images": int(len(tr_idx)),
        "test_indices_in_load_digits": [int(i) for i in te_idx],
        **tc.info_tail(
            calib_seed=CALIB_SEED, img_size=IMG, mean=MEAN, std=STD, hp=HP, nparams=nparams, train_hp=train_hp,
            preprocess_steps="pixel/16 -> [0,1]; bilinear upsample 8x8->16x16 (align_corners=False); "
                             "replicate to 3 channels; (v-mean)/std",
            augmentation=aug, train_seed=TRAIN_SEED, threads=a.threads, wall=wall,
            command=f"OPENBLAS_NUM_THREADS=1 /usr/bin/python3 models/train_digits.py --threads {a.threads}"
                    + (f" --split {a.split}" if a.split != "stratified" else "")),
    }
    tc.write_artifacts(a.out, "digits_vit", model, img_size=IMG, test_x=test_x, test_y=test_y,
                       calib_x=calib_x, calib_y=calib_y, info=info)
    print("wrote", a.out, flush=True)


if __name__ == "__main__":
    main()
