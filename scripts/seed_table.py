#!/usr/bin/env python3
"""Markdown rows with per-seed values from scripts/accuracy_table.sh results.

    /usr/bin/python3 scripts/seed_table.py RESULTS_DIR KEY [KEY ...]

KEY is a result name without its seed, e.g. "shapes.W3A3.adalog-adalog.optimize"; the row lists
top-1 %, cosine against FP32 and top-1 agreement % for seeds 1, 2, 3 (those present) and their
mean, plus the mean quantize time. Missing seeds are shown as "-" and left out of the mean.
"""
import json
import os
import sys


def main():
    d, keys = sys.argv[1], sys.argv[2:]
    print("| result | seeds | top-1 % s1 / s2 / s3 (mean) | cosine vs FP32 (mean) | top-1 agreement % (mean) | quantize s (mean) |")
    print("|---|---|---|---|---|---|")
    for k in keys:
        rows = {}
        for s in (1, 2, 3):
            f = os.path.join(d, f"{k}.s{s}.json")
            if os.path.exists(f):
                rows[s] = json.load(open(f))
        if not rows:
            continue

        def col(field, scale, fmt):
            vals = [rows[s][field] * scale if s in rows else None for s in (1, 2, 3)]
            got = [v for v in vals if v is not None]
            txt = " / ".join("-" if v is None else fmt % v for v in vals)
            return f"{txt} ({fmt % (sum(got) / len(got))})"

        q = [r["quantize_seconds"] for r in rows.values()]
        print(f"| {k} | {len(rows)} | {col('top1', 100, '%.2f')} | {col('ref_cosine', 1, '%.4f')} | "
              f"{col('ref_top1_agreement', 100, '%.2f')} | {sum(q) / len(q):.0f} |")


if __name__ == "__main__":
    main()
