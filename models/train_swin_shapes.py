"""Train a small timm-style Swin (swin_defs.TimmSwin) on the shapes task and write models/shapes_swin/.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 models/train_swin_shapes.py --threads 1

Data, split and preprocessing: exactly train_shapes.py's (shapes_data.make: train 5000 images seed 100,
  test 400 seed 200, extra eval 2000 seed 300; (v - 0.5) / 0.2 per channel). The test set and its labels
  are NOT duplicated: they are byte-identical to models/shapes/test_x.npy / test_y.npy (checked here when
  that folder exists) and info.json points at them. calib.npy / calib_labels.npy (the same 32 seeded
  training images as models/shapes/, 393 KB) are written into the folder because the scripts and the
  CLI take "<folder>/calib.npy".
Model (--arch p4, the default and the committed model): TimmSwin, 32x32 input, patch 4 -> 8x8
  grid, embed 64, two stages (depths 4 and 2, heads 2 and 4, head_dim 32), window 4 (stage 1: 4
  windows of 16 tokens, every second block shifted by 2; stage 2: after the patch merge a 4x4 grid
  = one window, no shift by the window rule), MLP ratio 4, exact GELU, LayerNorm eps 1e-5, average
  pooling. --arch p2: patch 2 -> 16x16 grid, embed 32, three stages (depths 2, 2, 2; heads 1, 2, 4;
  grids 16, 8, 4). Not a working recipe yet: with these training settings its loss stayed at chance
  (2.47-2.50, test 6-10%) for 10 epochs (2026-12-06, run stopped), where p4 left chance at epoch 5-6.
Training: as train_shapes.py (AdamW lr 1e-3, wd 0.05 (train_common: not on 1-D params; the 2-D
  relative position bias tables do get it), batch 64, 2 warmup epochs then per-step cosine to 1e-5,
  label smoothing 0.1, no augmentation, 20 epochs); the final-epoch weights are exported (opset 17,
  dynamic batch); test accuracy is only monitored.
"""
import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import shapes_data  # noqa: E402
import swin_defs  # noqa: E402
import train_common as tc  # noqa: E402
import train_shapes as ts  # noqa: E402  (data seeds, sizes, normalization: one definition)
from export import export_onnx  # noqa: E402

STEM = "shapes_swin"
ARCHS = {
    # the committed model: 8x8 grid, two stages
    "p4": dict(img_size=ts.IMG, patch=4, in_chans=3, num_classes=shapes_data.NUM_CLASSES, embed_dim=64,
               depths=(4, 2), heads=(2, 4), window=4, mlp_ratio=4.0, gelu="erf"),
    # 16x16 grid, three stages (16, 8, 4), head_dim 32 throughout
    "p2": dict(img_size=ts.IMG, patch=2, in_chans=3, num_classes=shapes_data.NUM_CLASSES, embed_dim=32,
               depths=(2, 2, 2), heads=(1, 2, 4), window=4, mlp_ratio=4.0, gelu="erf"),
}
N_REF = 8


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--train-n", type=int, default=5000)
    ap.add_argument("--out", default=os.path.join(HERE, "shapes_swin"))
    ap.add_argument("--arch", default="p4", choices=sorted(ARCHS))
    a = ap.parse_args()
    HP = ARCHS[a.arch]
    g = ts.IMG // HP["patch"]
    grids = []
    for _ in HP["depths"]:
        grids.append([g, g])
        g = -(-g // 2)
    tc.setup(ts.TRAIN_SEED, a.threads)

    t0 = time.time()
    trx, try_ = shapes_data.make(a.train_n, ts.DATA_SEED_TRAIN)
    tex, tey = shapes_data.make(ts.TEST_N, ts.DATA_SEED_TEST)
    evx, evy = shapes_data.make(ts.EVAL_N, ts.DATA_SEED_EVAL)
    print(f"data generated in {time.time() - t0:.0f}s", flush=True)
    train_u, train_y = torch.from_numpy(trx), torch.from_numpy(try_)
    test_x, test_y = ts.normalize(torch.from_numpy(tex)), torch.from_numpy(tey)
    eval_x, eval_y = ts.normalize(torch.from_numpy(evx)), torch.from_numpy(evy)

    model = swin_defs.TimmSwin(**HP)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"train {len(train_y)} test {len(test_y)} eval {len(eval_y)} params {nparams} threads {a.threads}",
          flush=True)
    train_hp = dict(epochs=a.epochs, batch=64, lr=1e-3, wd=0.05, warmup_epochs=2, label_smoothing=0.1)
    wall = tc.train(model, train_u, train_y, seed=ts.TRAIN_SEED, normalize=ts.normalize, augment=None,
                    test_x=test_x, test_y=test_y, log_every=2, **train_hp)
    acc = tc.evaluate(model, test_x, test_y)
    acc_eval = tc.evaluate(model, eval_x, eval_y)
    acc_train = tc.evaluate(model, ts.normalize(train_u[:2000]), train_y[:2000])
    print(f"FP32 top-1: test({ts.TEST_N}) {acc:.4f}  eval({ts.EVAL_N}) {acc_eval:.4f}  train(first 2000) "
          f"{acc_train:.4f}; train wall {wall:.0f}s", flush=True)

    rng = np.random.RandomState(ts.CALIB_SEED)
    ci = np.sort(rng.choice(len(train_y), 32, replace=False))
    calib_x, calib_y = ts.normalize(train_u[ci]), train_y[ci]
    with torch.no_grad():
        model.eval()
        pred = torch.cat([model(eval_x[i:i + 250]).argmax(1) for i in range(0, ts.EVAL_N, 250)])
    per_class = {shapes_data.CLASS_NAMES[c]: round(float((pred[eval_y == c] == c).float().mean()), 4)
                 for c in range(shapes_data.NUM_CLASSES)}

    tx = test_x.numpy().astype(np.float32)
    ty = test_y.numpy().astype(np.int64)
    shapes_dir = os.path.join(HERE, "shapes")
    shared = os.path.isfile(os.path.join(shapes_dir, "test_x.npy"))
    if shared:  # the shared files must be exactly this script's test set
        assert np.array_equal(np.load(os.path.join(shapes_dir, "test_x.npy")), tx), "shapes/test_x.npy differs"
        assert np.array_equal(np.load(os.path.join(shapes_dir, "test_y.npy")), ty), "shapes/test_y.npy differs"
    os.makedirs(a.out, exist_ok=True)
    export_onnx(model, os.path.join(a.out, STEM + ".onnx"), ts.IMG, opset=17, dynamic_batch=True,
                input_array=tx[:N_REF], graph_name=STEM)
    if not shared:
        np.save(os.path.join(a.out, "test_x.npy"), np.ascontiguousarray(tx))
        np.save(os.path.join(a.out, "test_y.npy"), ty)
    np.save(os.path.join(a.out, "calib.npy"), np.ascontiguousarray(calib_x.numpy().astype(np.float32)))
    np.save(os.path.join(a.out, "calib_labels.npy"), calib_y.numpy().astype(np.int64))
    test_files = ({"test_x": "../shapes/test_x.npy", "test_y": "../shapes/test_y.npy"} if shared
                  else {"test_x": "test_x.npy", "test_y": "test_y.npy"})
    info = {
        "name": STEM,
        "task": "procedural 32x32 RGB patterns, 12 classes (models/shapes_data.py)",
        "classes": shapes_data.CLASS_NAMES,
        "fp32_top1": acc, "fp32_correct": int(round(acc * ts.TEST_N)),
        "fp32_top1_eval2000": acc_eval, "fp32_top1_train2000": acc_train,
        "fp32_per_class_eval2000": per_class,
        "data": {"generator": "shapes_data.make(n, seed)", "train": [a.train_n, ts.DATA_SEED_TRAIN],
                 "test": [ts.TEST_N, ts.DATA_SEED_TEST], "eval_not_stored": [ts.EVAL_N, ts.DATA_SEED_EVAL],
                 "note": "same data, split and preprocessing as models/shapes (train_shapes.py)"},
        "calib_note": f"32 training images, np.random.RandomState({ts.CALIB_SEED}).choice(n_train, 32, "
                      "replace=False), sorted; preprocessed like test_x (the same images as shapes/calib.npy)",
        "preprocess": {
            "input": "NCHW float32 [N,3,32,32]",
            "steps": "generated RGB in [0,1]; (v-mean)/std",
            "mean": list(ts.MEAN), "std": list(ts.STD), "image_size": ts.IMG, "channels": 3,
        },
        "model": dict(HP, depths=list(HP["depths"]), heads=list(HP["heads"]), style="timm-swin",
                      definition="models/swin_defs.py TimmSwin", ln_eps=swin_defs.LN_EPS, params=nparams,
                      grids=grids, dims=[HP["embed_dim"] * 2 ** i for i in range(len(HP["depths"]))],
                      arch=a.arch),
        "training": dict(train_hp, schedule="linear warmup then cosine per step to 1e-5", optimizer="AdamW",
                         augmentation=None, seed=ts.TRAIN_SEED, threads=a.threads,
                         model_selection="final epoch (no selection on test)"),
        "train_wall_s": round(wall, 1),
        "command": f"OPENBLAS_NUM_THREADS=1 /usr/bin/python3 models/train_swin_shapes.py --threads {a.threads}"
                   + (f" --epochs {a.epochs}" if a.epochs != 20 else "")
                   + (f" --train-n {a.train_n}" if a.train_n != 5000 else "")
                   + (f" --arch {a.arch}" if a.arch != "p4" else ""),
        "date": time.strftime("%Y-%m-%d"),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "onnx": STEM + ".onnx", "onnx_opset": 17, "dynamic_batch": True,
        "reference_input": STEM + ".input.npy", "reference_output": STEM + ".output.npy",
        "reference_note": f"first {N_REF} images of the test set and their PyTorch FP32 logits",
        "files": dict(test_files, calib="calib.npy", calib_labels="calib_labels.npy"),
        "test_images": int(len(tx)), "calib_images": int(len(calib_x)),
    }
    with open(os.path.join(a.out, "info.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    print("wrote", a.out, flush=True)


if __name__ == "__main__":
    main()
