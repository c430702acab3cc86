"""Shared training loop and artifact writer for the trained benchmark models (digits, shapes).

Deterministic on one machine: seeded torch/numpy, deterministic algorithms, fixed thread count.
The final epoch's weights are exported; the test set is never used for model selection.
"""
import json
import math
import os
import platform
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from export import export_onnx  # noqa: E402
import vit_defs  # noqa: E402


def setup(seed, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)


def normalizer(mean, std):
    """x -> (x - mean) / std per channel of a [B,3,H,W] batch."""
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return lambda x: (x - m) / s


def build_model(hp):
    """The timm-style ViT of hyperparameters hp (vit_defs.TimmViT) and its parameter count."""
    model = vit_defs.TimmViT(**hp)
    return model, sum(p.numel() for p in model.parameters())


def calib_indices(n_train, seed, count=32):
    """The calibration subset: `count` training indices, RandomState(seed).choice without
    replacement, sorted (described by info_tail's calib_note)."""
    rng = np.random.RandomState(seed)
    return np.sort(rng.choice(n_train, count, replace=False))


def info_tail(*, calib_seed, img_size, preprocess_steps, mean, std, hp, nparams, train_hp, augmentation,
              train_seed, threads, wall, command):
    """The info.json entries both trained models share, in their order: calibration, preprocessing,
    model, training, wall time, command and date."""
    tokens = (hp["img_size"] // hp["patch"]) ** 2 + 1  # patches + cls
    return {
        "calib_note": f"32 training images, np.random.RandomState({calib_seed}).choice(n_train, 32, "
                      "replace=False), sorted; preprocessed like test_x",
        "preprocess": {
            "input": f"NCHW float32 [N,3,{img_size},{img_size}]",
            "steps": preprocess_steps,
            "mean": list(mean), "std": list(std), "image_size": img_size, "channels": 3,
        },
        "model": dict(hp, style="timm", tokens=tokens, params=nparams),
        "training": dict(train_hp, schedule="linear warmup then cosine per step to 1e-5", optimizer="AdamW",
                         augmentation=augmentation, seed=train_seed, threads=threads,
                         model_selection="final epoch (no selection on test)"),
        "train_wall_s": round(wall, 1),
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
    }


def random_affine(x, gen, max_rot_deg, max_shift_px, scale_range):
    """Per-image random rotation/scale/shift of a [B,C,H,W] batch (zero padding, bilinear)."""
    B, _, H, W = x.shape
    ang = (torch.rand(B, generator=gen) * 2 - 1) * math.radians(max_rot_deg)
    sc = scale_range[0] + torch.rand(B, generator=gen) * (scale_range[1] - scale_range[0])
    tx = (torch.rand(B, generator=gen) * 2 - 1) * max_shift_px * 2.0 / W
    ty = (torch.rand(B, generator=gen) * 2 - 1) * max_shift_px * 2.0 / H
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@torch.no_grad()
def evaluate(model, x, y, batch=250):
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def train(model, train_x, train_y, *, epochs, batch, lr, wd, warmup_epochs, label_smoothing, seed,
          augment=None, normalize=None, test_x=None, test_y=None, log_every=5, min_lr=1e-5):
    """AdamW + linear warmup + cosine decay (per step). train_x is *unnormalized* if `normalize` is
    given (augmentation runs before normalization); returns wall time in seconds."""
    gen = torch.Generator().manual_seed(seed)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or n.endswith(("cls_token", "dist_token", "pos_embed")) else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr)
    crit = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    n = len(train_x)
    steps_per_epoch = math.ceil(n / batch)
    total = epochs * steps_per_epoch
    warm = warmup_epochs * steps_per_epoch
    step = 0
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        tot_loss = 0.0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            xb, yb = train_x[idx], train_y[idx]
            if augment is not None:
                xb = augment(xb, gen)
            if normalize is not None:
                xb = normalize(xb)
            cur = lr * (step + 1) / warm if step < warm else \
                min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
            for gparam in opt.param_groups:
                gparam["lr"] = cur
            out = model(xb)
            if isinstance(out, tuple):
                out = out[0]
            loss = crit(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += loss.item() * len(idx)
            step += 1
        msg = f"epoch {ep + 1}/{epochs} loss {tot_loss / n:.4f} lr {cur:.2e} t {time.time() - t0:.0f}s"
        if test_x is not None and ((ep + 1) % log_every == 0 or ep + 1 == epochs):
            msg += f" test {evaluate(model, test_x, test_y):.4f} (monitor only)"
        print(msg, flush=True)
    return time.time() - t0


def write_artifacts(out_dir, stem, model, *, img_size, test_x, test_y, calib_x, calib_y, info, n_ref=8):
    """Writes STEM.onnx (opset 17, dynamic batch) + STEM.input.npy/.output.npy (first n_ref test images),
    calib.npy, calib_labels.npy, test_x.npy, test_y.npy and info.json into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    model.eval()
    tx = test_x.numpy().astype(np.float32)
    export_onnx(model, os.path.join(out_dir, stem + ".onnx"), img_size, opset=17, dynamic_batch=True,
                input_array=tx[:n_ref], graph_name=stem)
    np.save(os.path.join(out_dir, "test_x.npy"), np.ascontiguousarray(tx))
    np.save(os.path.join(out_dir, "test_y.npy"), test_y.numpy().astype(np.int64))
    np.save(os.path.join(out_dir, "calib.npy"), np.ascontiguousarray(calib_x.numpy().astype(np.float32)))
    np.save(os.path.join(out_dir, "calib_labels.npy"), calib_y.numpy().astype(np.int64))
    info = dict(info)
    info.update({
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "onnx": stem + ".onnx", "onnx_opset": 17, "dynamic_batch": True,
        "reference_input": stem + ".input.npy", "reference_output": stem + ".output.npy",
        "reference_note": f"first {n_ref} images of test_x.npy and their PyTorch FP32 logits",
        "files": {"test_x": "test_x.npy", "test_y": "test_y.npy", "calib": "calib.npy",
                  "calib_labels": "calib_labels.npy"},
        "test_images": int(len(tx)), "calib_images": int(len(calib_x)),
    })
    with open(os.path.join(out_dir, "info.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
