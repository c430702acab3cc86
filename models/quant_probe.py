"""Naive fake-quant sensitivity probe for the trained models (a sanity check of the benchmarks, NOT adalog).

    /usr/bin/python3 models/quant_probe.py models/digits [models/shapes] [--bits 8 6 4]

Loads NAME.onnx's weights back into vit_defs.TimmViT (checked against NAME.output.npy), then reports
top-1 on test_x/test_y with:
  - weights: symmetric per-output-channel min-max, b bits, for every Linear (qkv, proj, fc1, fc2, head)
    and the patch-embed Conv;
  - activations: asymmetric per-tensor min-max, b bits, on every Linear input, with ranges from calib.npy;
  - attention probabilities: uniform b-bit on [0, 1] (the baseline adalog's log quantizers beat).
This is the crudest PTQ; it only shows how much room a real method has. Random-weight models must
never be used for such numbers.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from onnx import numpy_helper  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vit_defs  # noqa: E402


def load_timm_from_onnx(path, hp):
    """Rebuilds a TimmViT from an export of one: named initializers by name, MatMul weights
    (renamed and transposed by constant folding) in graph order qkv, proj, fc1, fc2 per block."""
    m = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    model = vit_defs.TimmViT(**hp)
    sd = model.state_dict()
    new = {}
    for k in sd:
        if k in inits:
            new[k] = torch.from_numpy(inits[k].copy()).reshape(sd[k].shape)
    mats = [inits[n.input[1]] for n in m.graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    names = [f"blocks.{b}.{s}.weight" for b in range(hp["depth"])
             for s in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")]
    assert len(mats) == len(names), (len(mats), len(names))
    for k, w in zip(names, mats):
        new[k] = torch.from_numpy(w.T.copy())
    missing = set(sd) - set(new)
    assert not missing, missing
    model.load_state_dict(new)
    return model.eval()


def fq_sym_per_channel(w, bits):
    q = 2 ** (bits - 1) - 1
    flat = w.reshape(w.shape[0], -1)
    s = flat.abs().amax(1).clamp(min=1e-8) / q
    return (torch.round(flat / s[:, None]).clamp(-q, q) * s[:, None]).reshape(w.shape)


def fq_asym(x, lo, hi, bits):
    n = 2 ** bits - 1
    s = max(hi - lo, 1e-8) / n
    z = round(-lo / s)
    return (torch.clamp(torch.round(x / s) + z, 0, n) - z) * s


class QAttention(nn.Module):
    def __init__(self, attn, bits):
        super().__init__()
        self.a, self.bits = attn, bits

    def forward(self, x):
        a = self.a
        B, N, C = x.shape
        qkv = a.qkv(x).reshape(B, N, 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        p = ((q @ k.transpose(-2, -1)) * a.scale).softmax(-1)
        if self.bits:
            n = 2 ** self.bits - 1
            p = torch.round(p * n).clamp(0, n) / n
        return a.proj((p @ v).transpose(1, 2).reshape(B, N, C))


@torch.no_grad()
def probe(model, calib, test_x, test_y, bits):
    import copy
    q = copy.deepcopy(model)
    lins = [m for m in q.modules() if isinstance(m, nn.Linear)]
    ranges = {}
    hooks = [m.register_forward_pre_hook(
        lambda mod, inp: ranges.__setitem__(mod, (min(ranges.get(mod, (0, 0))[0], inp[0].min().item()),
                                                  max(ranges.get(mod, (0, 0))[1], inp[0].max().item()))))
             for m in lins]
    q(calib)
    for h in hooks:
        h.remove()
    for m in lins:
        m.weight.copy_(fq_sym_per_channel(m.weight, bits))
        lo, hi = ranges[m]
        m.register_forward_pre_hook(lambda mod, inp, lo=lo, hi=hi: (fq_asym(inp[0], lo, hi, bits),))
    conv = q.patch_embed.proj
    conv.weight.copy_(fq_sym_per_channel(conv.weight, bits))
    for blk in q.blocks:
        blk.attn = QAttention(blk.attn, bits)
    out = q(test_x)
    ref = model(test_x)
    acc = (out.argmax(1) == test_y).float().mean().item()
    agree = (out.argmax(1) == ref.argmax(1)).float().mean().item()
    kl = torch.nn.functional.kl_div(out.log_softmax(1), ref.log_softmax(1), log_target=True,
                                    reduction="batchmean").item()
    return acc, agree, kl


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--bits", type=int, nargs="+", default=[8, 6, 4])
    a = ap.parse_args()
    torch.set_num_threads(1)
    for d in a.dirs:
        info = json.load(open(os.path.join(d, "info.json")))
        hp = {k: info["model"][k] for k in ("img_size", "patch", "in_chans", "num_classes", "dim", "depth", "heads",
                                            "mlp_ratio", "gelu", "pooling")}
        model = load_timm_from_onnx(os.path.join(d, info["onnx"]), hp)
        ref_in = torch.from_numpy(np.load(os.path.join(d, info["reference_input"])))
        ref_out = np.load(os.path.join(d, info["reference_output"]))
        with torch.no_grad():
            err = np.abs(model(ref_in).numpy() - ref_out).max()
        assert err < 1e-4, err
        calib = torch.from_numpy(np.load(os.path.join(d, "calib.npy")))
        tx = torch.from_numpy(np.load(os.path.join(d, "test_x.npy")))
        ty = torch.from_numpy(np.load(os.path.join(d, "test_y.npy")))
        with torch.no_grad():
            fp = (model(tx).argmax(1) == ty).float().mean().item()
        print(f"{info['name']}: FP32 top-1 {fp:.4f} (info.json {info['fp32_top1']:.4f})")
        for b in a.bits:
            acc, agree, kl = probe(model, calib, tx, ty, b)
            print(f"  W{b}A{b} (min-max, uniform softmax): top-1 {acc:.4f}  agree {agree:.4f}  KL {kl:.4f}")


if __name__ == "__main__":
    main()
