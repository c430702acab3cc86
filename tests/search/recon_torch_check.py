#!/usr/bin/env python3
"""Block reconstruction in PyTorch, written from the equations of docs/method.md ("Block
reconstruction") and the issue, not from the official code, to check adalog's C++ training path.

Run by tests/search/recon_torch_test.cc, which writes one folder per case (a transformer block,
its quantization plan, a perturbed starting point, and adalog's forward output, loss, gradients
and the parameters after three iterations of ReconstructBlock). Here the same block runs in
float64 with autograd:

  x -> LN1 -> Q(qkv.in) -> qkv (AdaRound soft weights) -> per head Q(q), Q(k), Q(v)
    -> softmax(q k^T * scale) -> Q(probs) -> P v -> Q(proj.in) -> proj -> + x
    -> LN2 -> Q(fc1.in) -> fc1 -> GELU -> Q(fc2.in) (log of x + shift) -> fc2 -> + residual
  loss = sum((out - target)^2) / (batch * dim) / 10

with the straight-through quantizers (round's gradient 1, clamp's gradient inside its inclusive
bounds), the soft weights (floor(w/s) + h(alpha) + z clamped, h the stretched sigmoid clamped to
[0, 1] with gamma -0.1, zeta 1.1), the rounding regulariser weight * sum(1 - |2h - 1|^b) (on from
iteration warmup * iters, b linear from 20 to 2 after it), torch.optim.Adam on the alphas (lr 1e-3)
and on the step sizes with CosineAnnealingLR. Exits 0 when everything agrees, 1 otherwise, 77 when
torch is missing.

One rewrite, exact in real numbers: the log quantizer's level s * 2^(-(c + off) den / num) with
c = -log2(u) num / den is evaluated as (s u) * 2^(-off den / num), u = clamp((x + shift) / s,
1e-15, 1) and s u = x + shift inside the clamp, so that autograd's step-size derivative inside the
clamp is exactly 0 (the direct form gives the sum of two terms that cancel up to rounding).
"""
import json
import math
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the test skips
    print(f"recon_torch_check: {e}")
    sys.exit(77)

torch.set_default_dtype(torch.float64)
GAMMA, ZETA = -0.1, 1.1
LOG_MIN = float(np.float32(1e-15))  # the clamp floor as the C++ float code holds it
LINEARS = ["qkv", "proj", "fc1", "fc2"]
ACTS = ["qkv.in", "q", "k", "v", "probs", "proj.in", "fc1.in", "fc2.in"]

# Tolerances: adalog computes in float32 (oneDNN sgemm, vector exp/erf, 8-lane sums); this script
# in float64. A wrong term moves a gradient by O(1) of its largest element.
TOL_VALUE = 2e-5   # block output and loss, relative to the largest |value|
TOL_GRAD = 2e-4    # every gradient, max |difference| / max |torch gradient|
TOL_STEP = 2e-3    # parameters after 3 iterations: |moved_cpp - moved_torch| / |moved_torch| (L2)


def load(d, name):
    return np.load(os.path.join(d, name + ".npy"))


def t64(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def h_of(alpha):
    return torch.clamp(torch.sigmoid(alpha) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


class Block:
    def __init__(self, d, meta, unfold):
        self.meta = meta
        self.acts = {k: dict(v) for k, v in meta["acts"].items()}
        self.ln = [(t64(load(d, f"ln{j}_gamma")), t64(load(d, f"ln{j}_beta")), meta[f"ln{j}_eps"])
                   for j in (1, 2)]
        self.w32, self.s32, self.floor, self.s, self.z, self.bias = {}, {}, {}, {}, {}, {}
        for n in LINEARS:
            w = load(d, "w_" + n)
            s = load(d, "wscale_" + n)
            self.w32[n], self.s32[n] = w, s
            self.floor[n] = t64(np.floor(w / s[:, None]))  # float32, as the forward takes it
            self.s[n] = t64(s)[:, None]
            self.z[n] = t64(load(d, "wzp_" + n))[:, None]
            self.bias[n] = t64(load(d, "b_" + n))
        a = self.acts["fc2.in"]
        if unfold and a["kind"] == "log" and a["folded"]:
            # ReconstructBlock trains Q(x + shift) - shift with the unfolded bias: the folded bias
            # plus shift * rowsum(W^), W^ the round-to-nearest fake-quantized fc2 weight (float32).
            w, s = self.w32["fc2"], load(d, "wscale_fc2")[:, None]
            zp = load(d, "wzp_fc2")[:, None]
            cw = self.meta["weights"]["fc2"]
            wq = (np.clip(np.round(w / s) + zp, cw["cmin"], cw["cmax"]) - zp) * s
            self.bias["fc2"] = self.bias["fc2"] + t64(a["shift"] * wq.astype(np.float64).sum(1))
            a["folded"] = False

    def init_alpha_f32(self, n):
        t = (self.w32[n] / self.s32[n][:, None]).astype(np.float32)
        rest = (t - np.floor(t)).astype(np.float32)
        zg, g = np.float32(ZETA - GAMMA), np.float32(GAMMA)
        return (-np.log(zg / (rest - g) - np.float32(1))).astype(np.float32)

    def soft_w(self, n, alpha):
        c = self.floor[n] + h_of(alpha) + self.z[n]
        cw = self.meta["weights"][n]
        return (torch.clamp(c, cw["cmin"], cw["cmax"]) - self.z[n]) * self.s[n]

    def quant(self, name, x, scale, head_axis=False):
        a = self.acts[name]
        if a["kind"] == "none":
            return x
        if head_axis:  # per head: x [B, H, T, hd], scale [H]
            s = scale.view(1, -1, 1, 1)
            z = t64(a["zp"]).view(1, -1, 1, 1)
        else:
            s = scale[0]
            z = float(a["zp"][0]) if a["kind"] == "uniform" else 0.0
        if a["kind"] == "uniform":
            t = x / s
            r = t + (torch.round(t) - t).detach()  # round half to even, gradient 1
            return (torch.clamp(r + z, a["cmin"], a["cmax"]) - z) * s
        v = x + a["shift"]
        ud = v / s
        u = torch.clamp(ud, LOG_MIN, 1.0)
        cr = -torch.log2(u) * a["num"] / a["den"]
        r = torch.round(cr)
        zero = r >= 2 ** a["bits"]
        off = (r - cr).detach()
        su = torch.where(ud > 1.0, s.expand_as(v), torch.where(ud < LOG_MIN, s * LOG_MIN, v))
        xq = su * torch.pow(2.0, -off * a["den"] / a["num"])
        out = torch.where(zero, torch.zeros_like(xq), xq)
        return out if a["folded"] else out - a["shift"]

    def forward(self, alphas, scales, x):
        m = self.meta
        B, T, D = x.shape
        H = m["heads"]
        hd = D // H
        W = {n: self.soft_w(n, alphas[n]) for n in LINEARS}

        def lin(n, a):
            return a @ W[n].t() + self.bias[n]

        g1, b1, e1 = self.ln[0]
        a = self.quant("qkv.in", F.layer_norm(x, (D,), g1, b1, e1), scales.get("qkv.in"))
        qkv = lin("qkv", a)

        def head(i):
            return qkv[..., i * D:(i + 1) * D].reshape(B, T, H, hd).permute(0, 2, 1, 3)

        q = self.quant("q", head(0), scales.get("q"), True)
        k = self.quant("k", head(1), scales.get("k"), True)
        v = self.quant("v", head(2), scales.get("v"), True)
        p = torch.softmax(q @ k.transpose(-1, -2) * m["attn_scale"], dim=-1)
        p = self.quant("probs", p, scales.get("probs"))
        o = (p @ v).permute(0, 2, 1, 3).reshape(B, T, D)
        x1 = x + lin("proj", self.quant("proj.in", o, scales.get("proj.in")))
        g2, b2, e2 = self.ln[1]
        hdn = lin("fc1", self.quant("fc1.in", F.layer_norm(x1, (D,), g2, b2, e2), scales.get("fc1.in")))
        hdn = F.gelu(hdn, approximate="none" if m["gelu"] == "erf" else "tanh")
        return x1 + lin("fc2", self.quant("fc2.in", hdn, scales.get("fc2.in")))


def params(d, prefix, meta):
    alphas = {n: t64(load(d, f"{prefix}alpha_{n}")).reshape(-1) for n in LINEARS}
    scales = {}
    for a in ACTS:
        f = os.path.join(d, f"{prefix}scale_{a}.npy")
        if os.path.exists(f):
            scales[a] = t64(np.load(f))
    return alphas, scales


def shaped(block, alphas):
    return {n: alphas[n].view(block.floor[n].shape) for n in LINEARS}


def rec_loss(out, target):
    B, _, D = out.shape
    return ((out - target) ** 2).sum() / (B * D) / 10.0


def rel_max(got, want):
    want = np.asarray(want, dtype=np.float64)
    scale = np.abs(want).max()
    return np.abs(np.asarray(got, dtype=np.float64) - want).max() / max(scale, 1e-300), scale


def exponent(t, iters, warmup, b0, b1):
    start = warmup * iters
    if t < start:
        return b0
    return b1 + (b0 - b1) * max(0.0, 1.0 - (t - start) / (iters - start))


def check_case(d):
    meta = json.load(open(os.path.join(d, "meta.json")))
    fails = []
    x, target = t64(load(d, "x")), t64(load(d, "target"))
    tag = f"block {meta['block']} ({meta['gelu']}; probs {meta['acts']['probs']['kind']}, fc2.in {meta['acts']['fc2.in']['kind']})"

    def report(what, err, tol, extra=""):
        ok = err <= tol
        print(f"  {what:<22} {err:10.3g}  (tol {tol:g}){extra}{'' if ok else '  <-- FAIL'}")
        if not ok:
            fails.append(f"{tag}: {what} {err:.3g} > {tol:g}")

    print(tag)
    # The starting point: alphas from the rounding rests (float32 formula).
    blk = Block(d, meta, unfold=False)
    for n in LINEARS:
        e = np.abs(blk.init_alpha_f32(n).reshape(-1) - load(d, "init_alpha_" + n)).max()
        report(f"init alpha {n}", e, 1e-5)

    # One forward + backward from the perturbed start, against adalog's training path.
    alphas, scales = params(d, "start_", meta)
    for v in list(alphas.values()) + list(scales.values()):
        v.requires_grad_(True)
    xg = x.clone().requires_grad_(True)
    out = blk.forward(shaped(blk, alphas), scales, xg)
    loss = rec_loss(out, target)
    loss.backward()
    report("block output", rel_max(load(d, "out"), out.detach().numpy())[0], TOL_VALUE)
    report("loss", abs(meta["loss"] - loss.item()) / loss.item(), TOL_VALUE)
    report("grad x", rel_max(load(d, "grad_x"), xg.grad.numpy())[0], TOL_GRAD)
    for n in LINEARS:
        e, mx = rel_max(load(d, "grad_alpha_" + n), alphas[n].grad.numpy())
        report(f"grad alpha {n}", e, TOL_GRAD, f"  max |g| {mx:.3g}")
        if mx == 0.0:
            fails.append(f"{tag}: grad alpha {n} is all zero (a void check)")
    for a, s in scales.items():
        e, mx = rel_max(load(d, "grad_scale_" + a), s.grad.numpy())
        report(f"grad scale {a}", e, TOL_GRAD, f"  max |g| {mx:.3g}")

    # Three iterations of the loop from the unperturbed start (all images in every batch).
    lp = meta["loop"]
    blk = Block(d, meta, unfold=True)
    alphas, scales = params(d, "init_", meta)
    a0 = {n: v.clone() for n, v in alphas.items()}
    s0 = {n: v.clone() for n, v in scales.items()}
    for v in list(alphas.values()) + list(scales.values()):
        v.requires_grad_(True)
    opt_w = torch.optim.Adam(list(alphas.values()), lr=lp["lr_alpha"])
    opt_a = torch.optim.Adam(list(scales.values()), lr=lp["lr_act"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt_a, T_max=lp["iters"], eta_min=0.0)
    losses = []
    for it in range(1, lp["iters"] + 1):
        rec = rec_loss(blk.forward(shaped(blk, alphas), scales, x), target)
        total = rec
        if it >= lp["warmup"] * lp["iters"]:
            b = exponent(it, lp["iters"], lp["warmup"], lp["b_start"], lp["b_end"])
            reg = sum((1.0 - torch.abs(2.0 * h_of(alphas[n]) - 1.0) ** b).sum() for n in LINEARS)
            total = rec + lp["round_weight"] * reg
        losses.append(rec.item())
        opt_w.zero_grad()
        opt_a.zero_grad()
        total.backward()
        opt_w.step()
        opt_a.step()
        sched.step()
    report("loop loss iter 1", abs(lp["first_loss"] - losses[0]) / losses[0], TOL_VALUE)
    report(f"loop loss iter {lp['iters']}", abs(lp["last_loss"] - losses[-1]) / losses[-1], TOL_VALUE)
    moved = [(f"alpha {n}", load(d, "after_alpha_" + n), alphas[n], a0[n]) for n in LINEARS]
    moved += [(f"scale {a}", load(d, "after_scale_" + a), scales[a], s0[a]) for a in scales]
    for what, got, want, start in moved:
        dw = (want.detach() - start).numpy()
        dg = got.astype(np.float64) - start.numpy()
        norm = np.linalg.norm(dw)
        if norm == 0.0:  # a log step size with every element inside its clamp: gradient 0
            report(f"after 3 it. {what}", np.abs(dg).max(), 0.0, "  (unmoved in torch)")
            continue
        report(f"after 3 it. {what}", np.linalg.norm(dg - dw) / norm, TOL_STEP,
               f"  |moved| {norm:.3g}")
    return fails


def main():
    root = sys.argv[1]
    cases = sorted(c for c in os.listdir(root) if c.startswith("case"))
    fails = []
    for c in cases:
        fails += check_case(os.path.join(root, c))
    print(f"cases compared: {len(cases)}")
    if fails:
        print("FAILED:\n  " + "\n  ".join(fails))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
