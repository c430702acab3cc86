"""Train the "shapes" ViT (procedural 32x32 pattern task, 12 classes; see shapes_data.py) and write models/shapes/.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 models/train_shapes.py [--threads 2]

Data: shapes_data.make(n, seed): train TRAIN_N images (seed DATA_SEED_TRAIN), test 400 images
  (seed DATA_SEED_TEST; stored as test_x.npy, 4.9 MB), plus a 2000-image extra evaluation set
  (seed DATA_SEED_EVAL; not stored, regenerate with shapes_data.make) for a tighter FP32 estimate.
Preprocessing: images are generated in [0,1] RGB 32x32; the model expects (v - 0.5) / 0.2 per channel.
  test_x.npy and calib.npy are already normalized. NCHW float32 [N,3,32,32].
Model: timm-style ViT, patch 4 -> 64 patches + cls = 65 tokens, dim 96, depth 6, 3 heads, MLP ratio 4,
  exact GELU, cls pooling.
Training: AdamW lr 1e-3, wd 0.05, batch 64, 2 warmup epochs then cosine, label smoothing 0.1, no
  augmentation (the generator already randomizes position, size, colour, phase, clutter and noise).
  Final-epoch weights are exported; test accuracy is only monitored.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_common as tc  # noqa: E402  (first: it sets OPENBLAS_NUM_THREADS before numpy loads)

import torch  # noqa: E402

import shapes_data  # noqa: E402

DATA_SEED_TRAIN = 100
DATA_SEED_TEST = 200
DATA_SEED_EVAL = 300
TRAIN_SEED = 1
CALIB_SEED = 2
TEST_N = 400
EVAL_N = 2000
MEAN = (0.5, 0.5, 0.5)
STD = (0.2, 0.2, 0.2)
IMG = 32
HP = dict(img_size=IMG, patch=4, in_chans=3, num_classes=shapes_data.NUM_CLASSES, dim=96, depth=6, heads=3,
          mlp_ratio=4.0, gelu="erf", pooling="cls")


normalize = tc.normalizer(MEAN, STD)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--train-n", type=int, default=5000)
    ap.add_argument("--out", default=os.path.join(tc.HERE, "shapes"))
    a = ap.parse_args()
    tc.setup(TRAIN_SEED, a.threads)

    t0 = time.time()
    trx, try_ = shapes_data.make(a.train_n, DATA_SEED_TRAIN)
    tex, tey = shapes_data.make(TEST_N, DATA_SEED_TEST)
    evx, evy = shapes_data.make(EVAL_N, DATA_SEED_EVAL)
    print(f"data generated in {time.time() - t0:.0f}s", flush=True)
    train_u, train_y = torch.from_numpy(trx), torch.from_numpy(try_)
    test_x, test_y = normalize(torch.from_numpy(tex)), torch.from_numpy(tey)
    eval_x, eval_y = normalize(torch.from_numpy(evx)), torch.from_numpy(evy)

    model, nparams = tc.build_model(HP)
    print(f"train {len(train_y)} test {len(test_y)} eval {len(eval_y)} params {nparams} threads {a.threads}",
          flush=True)
    train_hp = dict(epochs=a.epochs, batch=64, lr=1e-3, wd=0.05, warmup_epochs=2, label_smoothing=0.1)
    wall = tc.train(model, train_u, train_y, seed=TRAIN_SEED, normalize=normalize, augment=None,
                    test_x=test_x, test_y=test_y, log_every=2, **train_hp)
    acc = tc.evaluate(model, test_x, test_y)
    acc_eval = tc.evaluate(model, eval_x, eval_y)
    acc_train = tc.evaluate(model, normalize(train_u[:2000]), train_y[:2000])
    print(f"FP32 top-1: test({TEST_N}) {acc:.4f}  eval({EVAL_N}) {acc_eval:.4f}  train(first 2000) "
          f"{acc_train:.4f}; train wall {wall:.0f}s", flush=True)

    ci = tc.calib_indices(len(train_y), CALIB_SEED)
    calib_x, calib_y = normalize(train_u[ci]), train_y[ci]
    # Per-class accuracy on the extra eval set (shows where the fine-grained confusions are).
    with torch.no_grad():
        model.eval()
        pred = torch.cat([model(eval_x[i:i + 250]).argmax(1) for i in range(0, EVAL_N, 250)])
    per_class = {shapes_data.CLASS_NAMES[c]: round(float((pred[eval_y == c] == c).float().mean()), 4)
                 for c in range(shapes_data.NUM_CLASSES)}
    info = {
        "name": "shapes_vit",
        "task": "procedural 32x32 RGB patterns, 12 classes (models/shapes_data.py)",
        "classes": shapes_data.CLASS_NAMES,
        "fp32_top1": acc, "fp32_correct": int(round(acc * TEST_N)),
        "fp32_top1_eval2000": acc_eval, "fp32_top1_train2000": acc_train,
        "fp32_per_class_eval2000": per_class,
        "data": {"generator": "shapes_data.make(n, seed)", "train": [a.train_n, DATA_SEED_TRAIN],
                 "test": [TEST_N, DATA_SEED_TEST], "eval_not_stored": [EVAL_N, DATA_SEED_EVAL]},
        **tc.info_tail(
            calib_seed=CALIB_SEED, img_size=IMG, mean=MEAN, std=STD, hp=HP, nparams=nparams, train_hp=train_hp,
            preprocess_steps="generated RGB in [0,1]; (v-mean)/std",
            augmentation=None, train_seed=TRAIN_SEED, threads=a.threads, wall=wall,
            command=f"OPENBLAS_NUM_THREADS=1 /usr/bin/python3 models/train_shapes.py --threads {a.threads}"
                    + (f" --epochs {a.epochs}" if a.epochs != 20 else "")
                    + (f" --train-n {a.train_n}" if a.train_n != 5000 else "")),
    }
    tc.write_artifacts(a.out, "shapes_vit", model, img_size=IMG, test_x=test_x, test_y=test_y,
                       calib_x=calib_x, calib_y=calib_y, info=info)
    print("wrote", a.out, flush=True)


if __name__ == "__main__":
    main()
