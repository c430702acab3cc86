#!/usr/bin/python3
"""Pictures of an `adalog report` (docs/report.md), drawn from its report.json alone.

  /usr/bin/python3 scripts/plot_report.py DIR/report.json OUT_DIR

writes OUT_DIR/sqnr.png (per-op SQNR through the network, local and accumulated) and, for every
post-Softmax and post-GELU quantizer, OUT_DIR/act_<op>_<quantizer>.png: the histogram of the values
it sees on a log2 axis with the levels of the model's quantizer and of log2 / uniform at the same
bits and the same top level drawn over it. Needs matplotlib (Debian: python3-matplotlib).
"""
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABEL = {"adalog": "AdaLog", "log2": "log2", "logsqrt2": "log-sqrt2", "uniform": "uniform", "twin": "twin uniform"}


def db_text(v):
    return "no error" if v is None else f"{v:.1f} dB"


def plot_sqnr(rep, path):
    ops = [o for o in rep["ops"] if o["op"] != "logits"]
    x = list(range(len(ops)))
    big = 1e9  # an infinite SQNR (no error) is drawn at the top of the axis
    loc = [o["local"]["sqnr_db"] if o["local"]["sqnr_db"] is not None else big for o in ops]
    acc = [o["accumulated"]["sqnr_db"] if o["accumulated"]["sqnr_db"] is not None else big for o in ops]
    finite = [v for v in loc + acc if v != big]
    top = max(finite) + 3 if finite else 60
    loc = [min(v, top) for v in loc]
    acc = [min(v, top) for v in acc]
    fig, ax = plt.subplots(figsize=(max(8, 0.28 * len(ops) + 2), 5.2))
    ax.plot(x, loc, "o-", color="tab:blue", ms=4, lw=1.2, label="local: op on FP32 inputs (its own damage)")
    ax.plot(x, acc, "s-", color="tab:red", ms=4, lw=1.2, label="accumulated: through the quantized model")
    prev = None
    for i, o in enumerate(ops):
        if o["block"] != prev and o["block"] >= 0:
            ax.axvline(i - 0.5, color="0.85", lw=0.8, zorder=0)
            ax.text(i - 0.4, top - 0.5, f"block {o['block']}", fontsize=7, color="0.4", va="top")
        prev = o["block"]
    ax.set_xticks(x)
    ax.set_xticklabels([o["op"] for o in ops], rotation=90, fontsize=7)
    ax.set_ylabel("SQNR of the op output vs FP32 (dB, higher is better)")
    ax.set_ylim(min(finite) - 3 if finite else 0, top)
    logits = rep["logits"]
    ax.set_title(
        f"{os.path.basename(rep['model'])}: W{rep['weight_bits']}A{rep['act_bits']}, {rep['images']} images, "
        f"simulated executor\nend to end: logits cosine {logits['cosine']:.4f}, "
        f"top-1 agreement {100 * logits['top1_agreement']:.1f}%",
        fontsize=10)
    ax.grid(axis="y", color="0.9")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_domain(rep, op, q, path):
    d = q["domain"]
    h = d["histogram"]
    lo, per = h["log2_lo"], h["bins_per_octave"]
    counts = h["counts"]
    total = max(1, q["values"])
    edges = [2.0 ** (lo + i / per) for i in range(len(counts) + 1)]
    nz = [i for i, c in enumerate(counts) if c > 0]
    levels_pos = [v for qq in d["quantizers"] for v in qq["levels"] if v > 0]
    xmin = min([edges[nz[0]]] if nz else [] + [min(levels_pos)] if levels_pos else [1e-6])
    xmin = min(xmin, min(levels_pos)) if levels_pos else xmin
    xmax = max(([edges[nz[-1] + 1]] if nz else []) + [max(levels_pos) if levels_pos else 1.0])
    is_gelu = op["op"] == "fc2"
    where = "post-GELU (fc2 input)" if is_gelu else "post-Softmax (attention probabilities)"
    xlabel = (f"GELU output + shift {d['shift']:.4f}  (the value the quantizer encodes; log axis)" if is_gelu
              else "softmax probability (log axis)")
    n = len(d["quantizers"])
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.1 * n + 1.0), sharex=True)
    if n == 1:
        axes = [axes]
    colors = ["tab:green", "tab:orange", "tab:purple"]
    pct = [100.0 * c / total for c in counts]
    for ax, qq, color in zip(axes, d["quantizers"], colors):
        ax.stairs(pct, edges, fill=True, color="0.75", label="observed values")
        first = True
        for v in qq["levels"]:
            if v > 0:
                ax.axvline(v, color=color, lw=1.0, alpha=0.9, label="levels" if first else None)
                first = False
        name = LABEL.get(qq["kind"], qq["kind"])
        role = "this model's quantizer" if qq["name"] == "plan" else "same bits, same top level"
        has_zero = any(v == 0 for v in qq["levels"])
        ax.set_title(f"{name} {q['bits']}-bit ({role}): quantizer SQNR {db_text(qq['sqnr_db'])}"
                     + ("; plus a level at 0" if has_zero else ""), fontsize=9, loc="left")
        ax.set_xscale("log", base=2)
        ax.set_ylabel("% of values\nper 1/4 octave", fontsize=8)
        ax.legend(fontsize=7, loc="upper left")
    axes[-1].set_xlim(xmin / 2, xmax * 2)
    axes[-1].set_xlabel(xlabel, fontsize=9)
    below = 100.0 * h["below"] / total
    fig.suptitle(f"{op['name']}: {where}, {q['values']} values; {below:.1f}% below 2^{lo} (incl. exact 0)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_report.py REPORT.json OUT_DIR")
    with open(sys.argv[1], encoding="utf-8") as f:
        rep = json.load(f)
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    written = [os.path.join(out, "sqnr.png")]
    plot_sqnr(rep, written[0])
    for op in rep["ops"]:
        for q in op["quantizers"]:
            if "domain" in q:
                p = os.path.join(out, f"act_{op['name']}_{q['name']}.png".replace("/", "_"))
                plot_domain(rep, op, q, p)
                written.append(p)
    print(f"plot_report: wrote {len(written)} PNGs to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
