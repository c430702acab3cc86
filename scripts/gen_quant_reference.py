#!/usr/bin/python3
"""Writes reference values for the quant/ tests to tests/data/quant/.

The spec formulas are stated here again, independently of the C++ code, in torch float32
(torch.round rounds half to even) exactly as docs/method.md §2.1-2.5 write them.
Run with Debian's python:  /usr/bin/python3 scripts/gen_quant_reference.py

Log codes: two columns are written.
  code      -- the adalog definition: the exact rounding of -log2(u) * r / q for the float32 u,
               evaluated here in float64 (numpy), i.e. the mathematically exact code.
  code_f32  -- torch's float32 evaluation round(-log2(u) * r / q); it may differ from `code` at
               isolated floats within a few ulp of a decision threshold (quant/README.md).
NaN inputs: adalog encodes NaN as if it were 0.0 (torch would carry NaN through the codes);
fake-quant of NaN is NaN in both.

File format (text): '#' comments; 'case ...' header lines; data lines of hex float32 bit patterns
and decimal codes.
"""
import math
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "quant")
torch.set_num_threads(1)


def hexf(v):
    return "%08x" % struct.unpack("<I", struct.pack("<f", float(v)))[0]


def f32(v):
    return float(np.float32(v))


def special_inputs(s):
    tiny = np.float32(1e-40)  # denormal
    return [0.0, -0.0, -1.0, -s, float(tiny), -float(tiny), float("nan"), float("inf"),
            float("-inf"), s, 2 * s, 1000.0 * s, f32(1e-30), 3.4e38]


def random_inputs(rng, n, lo, hi):
    return list(rng.uniform(lo, hi, size=n).astype(np.float32))


# ------------------------------------------------------------------ uniform (method §2.1)
def uniform_fq(x, bits, s, z, symmetric):
    xt = torch.tensor(x, dtype=torch.float32)
    st = torch.tensor(s, dtype=torch.float32)
    if symmetric:
        c = torch.clamp(torch.round(xt / st), -2 ** (bits - 1), 2 ** (bits - 1) - 1)
        xhat = c * st
    else:
        zt = torch.tensor(float(z), dtype=torch.float32)
        c = torch.clamp(torch.round(xt / st) + zt, 0, 2 ** bits - 1)
        xhat = (c - zt) * st
    # adalog encodes NaN as 0.0
    x0 = torch.where(torch.isnan(xt), torch.zeros_like(xt), xt)
    if symmetric:
        code = torch.clamp(torch.round(x0 / st), -2 ** (bits - 1), 2 ** (bits - 1) - 1)
    else:
        code = torch.clamp(torch.round(x0 / st) + zt, 0, 2 ** bits - 1)
    return code.to(torch.int64).tolist(), xhat.tolist()


def write_uniform(rng):
    lines = ["# uniform quantizer reference: case <asym|sym> bits scale_hex zp n",
             "# data: x_hex code xhat_hex"]
    configs = []
    for bits in (2, 3, 4, 6, 8):
        for s in (f32(0.0371), f32(0.25), f32(1.7e-3)):
            n = 2 ** bits
            configs.append(("asym", bits, s, n // 2 - 1))
            configs.append(("asym", bits, s, 0))
            configs.append(("sym", bits, s, 0))
    for mode, bits, s, z in configs:
        lo = -(2 ** bits) * s
        xs = special_inputs(s) + random_inputs(rng, 150, 1.2 * lo, -1.2 * lo)
        # half-way points: x with x/s == k + 0.5 exactly in float32
        for k in range(-(2 ** bits), 2 ** bits):
            x = np.float32((k + 0.5) * s)
            if np.float32(x / np.float32(s)) == np.float32(k + 0.5):
                xs.append(float(x))
        codes, xhat = uniform_fq(xs, bits, s, z, mode == "sym")
        lines.append("case %s %d %s %d %d" % (mode, bits, hexf(s), z, len(xs)))
        for x, c, y in zip(xs, codes, xhat):
            lines.append("%s %d %s" % (hexf(x), c, hexf(y)))
    with open(os.path.join(OUT, "uniform.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ------------------------------------------------------------------ log quantizers (method §2.3-2.5)
def ratio(kind, q):
    return {"log2": (1, 1), "logsqrt2": (2, 1), "adalog": (37, q)}[kind]


def log_ref(x, kind, bits, s, q):
    num, den = ratio(kind, q)
    xt = torch.tensor(x, dtype=torch.float32)
    st = torch.tensor(s, dtype=torch.float32)
    u = torch.clamp(xt / st, 1e-15, 1.0)
    u = torch.where(torch.isnan(u), torch.full_like(u, np.float32(1e-15)), u)  # NaN as 0.0
    # exact code: float64 evaluation of the float32 u
    t = -np.log2(u.double().numpy()) * num / den
    raw = np.round(t).astype(np.int64)
    zero = raw >= 2 ** bits
    code = np.where(zero, 2 ** bits, raw)
    # torch float32 evaluation, as the official code does
    qt = torch.tensor(float(den), dtype=torch.float32)
    raw32 = torch.round(-torch.log2(u) * num / qt).to(torch.int64).numpy()
    code32 = np.where(raw32 >= 2 ** bits, 2 ** bits, raw32)
    # dequantization in torch float32 (spec formulas), from the exact code
    cc = torch.tensor(np.minimum(code, 2 ** bits - 1), dtype=torch.float32)
    if kind == "log2":
        xhat = 2 ** (-cc) * st
    elif kind == "logsqrt2":
        odd = torch.remainder(cc, 2)
        xhat = 2 ** (-torch.ceil(cc / 2)) * torch.where(
            odd > 0, torch.tensor(math.sqrt(2), dtype=torch.float32), torch.tensor(1.0)) * st
    else:
        D = 2 ** (bits + 1) - 2
        table1 = torch.tensor([math.floor(c * q / 37) for c in range(2 ** bits)], dtype=torch.float32)
        table2 = torch.tensor([round(2 ** (-(c * q % 37) / 37) * D) / D for c in range(2 ** bits)],
                              dtype=torch.float32)
        idx = cc.to(torch.int64)
        xhat = 2 ** (-table1[idx]) * table2[idx] * st
    xhat = torch.where(torch.tensor(zero), torch.zeros_like(xhat), xhat)
    xhat = torch.where(torch.isnan(xt), xt, xhat)
    return code.tolist(), code32.tolist(), xhat.tolist()


def write_log(rng):
    lines = ["# log quantizer reference: case <log2|logsqrt2|adalog> bits scale_hex q n",
             "# data: x_hex code code_f32 xhat_hex   (code 2^b = exact zero)"]
    for kind, qs in (("log2", [37]), ("logsqrt2", [37]), ("adalog", [10, 18, 19, 30, 37, 50, 137])):
        for bits in (2, 3, 4, 6, 8):
            for q in qs:
                if kind == "adalog" and bits == 2 and q not in (10, 30):
                    continue
                for s in (1.0, f32(0.37)):
                    num, den = ratio(kind, q)
                    xs = special_inputs(s)
                    # softmax-like: log-uniform magnitudes over the code range, plus > s
                    top = min(60.0, (2 ** bits + 1) * den / num)
                    xs += list((s * np.exp2(-rng.uniform(0, top, size=120))).astype(np.float32))
                    xs += random_inputs(rng, 10, -s, 2 * s)
                    # decision boundaries u_k = 2^(-(k-0.5) den/num) and their float neighbours
                    for k in range(1, 2 ** bits + 1):
                        e = (k - 0.5) * den / num
                        if e > 49:
                            break
                        u = np.float32(2.0 ** (-e))
                        for v in (np.nextafter(u, np.float32(0)), u, np.nextafter(u, np.float32(1))):
                            xs.append(float(np.float32(v * np.float32(s))))
                    codes, codes32, xhat = log_ref(xs, kind, bits, s, q)
                    lines.append("case %s %d %s %d %d" % (kind, bits, hexf(s), q, len(xs)))
                    for x, c, c32, y in zip(xs, codes, codes32, xhat):
                        lines.append("%s %d %d %s" % (hexf(x), c, c32, hexf(y)))
    with open(os.path.join(OUT, "log.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ------------------------------------------------------------------ AdaLog tables (method §2.5)
def write_tables():
    lines = ["# AdaLog tables: bits q D, then T1 (floor(c q / 37)) and m (round(2^-(cq mod 37)/37 * D))"]
    for bits in (2, 3, 4, 6, 8):
        for q in (10, 18, 19, 30, 37, 50, 100, 137):
            D = 2 ** (bits + 1) - 2
            t1 = [c * q // 37 for c in range(2 ** bits)]
            m = [round(2 ** (-(c * q % 37) / 37) * D) for c in range(2 ** bits)]
            lines.append("%d %d %d" % (bits, q, D))
            lines.append(" ".join(map(str, t1)))
            lines.append(" ".join(map(str, m)))
    with open(os.path.join(OUT, "adalog_tables.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ------------------------------------------------------------------ twin uniform (method §2.2)
def write_twin(rng):
    lines = ["# twin uniform reference: case bits s0_hex s1_hex n", "# data: x_hex code xhat_hex"]
    for bits in (3, 4, 6, 8):
        n = 2 ** (bits - 1)
        s1 = f32(0.16997124 / n)
        for s0 in (f32(4.0 / (n - 0.5)), f32(s1 * 8)):
            xs = special_inputs(s0) + random_inputs(rng, 100, -0.2, 1.2 * n * s0)
            xt = torch.tensor(xs, dtype=torch.float32)
            t0 = torch.tensor(s0, dtype=torch.float32)
            t1 = torch.tensor(s1, dtype=torch.float32)
            xhat = torch.clamp(torch.round(xt / t0), 0, n - 1) * t0 + \
                torch.clamp(torch.round(xt / t1), -n, 0) * t1
            x0 = torch.where(torch.isnan(xt), torch.zeros_like(xt), xt)
            code = torch.where(x0 >= 0, torch.clamp(torch.round(x0 / t0), 0, n - 1),
                               torch.clamp(torch.round(x0 / t1), -n, 0)).to(torch.int64)
            lines.append("case %d %s %s %d" % (bits, hexf(s0), hexf(s1), len(xs)))
            for x, c, y in zip(xs, code.tolist(), xhat.tolist()):
                lines.append("%s %d %s" % (hexf(x), c, hexf(y)))
    with open(os.path.join(OUT, "twin_uniform.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240712)
    write_uniform(rng)
    write_log(rng)
    write_tables()
    write_twin(rng)


if __name__ == "__main__":
    main()
