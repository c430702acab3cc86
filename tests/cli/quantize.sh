#!/usr/bin/env bash
# `adalog quantize` end to end on a tiny export, then inspect / run / eval / bench of the quantized
# file (simulated executor), and quantize's error contract: clear messages, exit 1, and never a
# partial or stale output file.
#   bash tests/cli/quantize.sh <path-to-adalog> <repo-root>
# Random-weight tiny model: checks plumbing and fidelity sanity only, never accuracy claims.
# Needs /usr/bin/python3 with numpy to write and compare .npy files.
# The W4A4 file's `inspect` is compared with tests/data/golden/tiny_w4a4.inspect.txt; after an
# intended change of the search, rewrite it with ADALOG_UPDATE_GOLDEN=1 and review the diff.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_init quantize.sh "$@"  # ADALOG absolute: the golden runs from $TMP
GOLDEN=$ROOT/tests/data/golden/tiny_w4a4.inspect.txt

M=$ROOT/models/tiny/tiny_timm_op17_dyn.onnx  # 3x32x32, dim 64, 4 heads, depth 2, erf GELU
[[ -f $M ]] || { echo "FAIL: $M missing"; exit 1; }

"$PY" - "$TMP" <<'PYEOF'
import sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
x = rng.standard_normal((40, 3, 32, 32)).astype(np.float32)
np.save(f"{d}/calib40.npy", x)
np.save(f"{d}/calib20.npy", x[:20])
np.save(f"{d}/test_x.npy", rng.standard_normal((16, 3, 32, 32)).astype(np.float32))
np.save(f"{d}/small.npy", x[:8, :, :16, :16].copy())
bad = x[:32].copy()
bad[3, 1, 2, 5] = np.nan
np.save(f"{d}/nan.npy", bad)
PYEOF

T1=(--threads 1)
# The model and calibration file under fixed relative names, so that the paths quantize records in
# the file's meta (source=, calib=) are the same on every machine (golden inspect below).
ln -s "$M" "$TMP/tiny.onnx"

# --- quantize at W8A8 and W4A4 (AdaLog), and one non-default quantizer choice
for bits in W8A8 W4A4; do
  out=$TMP/q_$bits.adalog
  if ! (cd "$TMP" && "$ADALOG" quantize tiny.onnx --calib calib40.npy --bits $bits -o "q_$bits.adalog" \
      --calib-size 32 --seed 3 "${T1[@]}") >"$TMP/q.out" 2>"$TMP/q.err"; then
    bad "quantize $bits: $(cat "$TMP/q.err")"
    continue
  fi
  grep -q "^quantized " "$TMP/q.out" && grep -q "^time " "$TMP/q.out" && [[ -s $out ]] && ok ||
    bad "quantize $bits: no summary or no output: $(cat "$TMP/q.out")"
  # No temporary or probe files are left beside the output.
  [[ $(temps_in "$TMP") == 0 ]] && ok || bad "temporary files left: $(ls "$TMP")"
done
"$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" --bits W4A4 --softmax uniform --gelu twin --no-fpcs \
  --no-reparam -o "$TMP/q_uni.adalog" --calib-size 16 "${T1[@]}" >/dev/null 2>"$TMP/q.err" && ok ||
  bad "quantize --softmax uniform --gelu twin: $(cat "$TMP/q.err")"

# --fpcs-mode: the variant is printed and recorded in the plan's meta; with --no-fpcs (nothing to
# choose) it is a usage error.
"$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" --bits W4A4 --fpcs-mode official -o "$TMP/q_off.adalog" \
  --calib-size 16 "${T1[@]}" >"$TMP/q.out" 2>"$TMP/q.err" && grep -q "FPCS official" "$TMP/q.out" &&
  "$ADALOG" inspect "$TMP/q_off.adalog" 2>/dev/null | grep "^meta" | grep -q "fpcs_mode=official" && ok ||
  bad "quantize --fpcs-mode official: $(cat "$TMP/q.out" "$TMP/q.err")"
"$ADALOG" inspect "$TMP/q_W4A4.adalog" 2>/dev/null | grep "^meta" | grep -q "fpcs_mode=best" && ok ||
  bad "inspect: the default quantize does not record fpcs_mode=best in meta"
expect_exit 2 "--no-fpcs turns FPCS off" --absent "$TMP/e8.adalog" -- \
  quantize "$M" --calib "$TMP/calib40.npy" --no-fpcs --fpcs-mode best -o "$TMP/e8.adalog"
expect_exit 2 "option '--fpcs-mode' of 'adalog quantize': 'fast' is not one of official, best" --absent "$TMP/e9.adalog" -- \
  quantize "$M" --calib "$TMP/calib40.npy" --fpcs-mode fast -o "$TMP/e9.adalog"

# LN reparameterization: --reparam-select keeps it or not for the whole model; the summary and
# the file agree on what was kept, and the file is byte for byte the default (every LayerNorm)
# or the --no-reparam one. With --no-reparam it is a usage error.
"$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" --bits W4A4 --reparam-select -o "$TMP/q_rsel.adalog" \
  --calib-size 16 "${T1[@]}" >"$TMP/q.out" 2>"$TMP/q.err" &&
  "$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" --bits W4A4 -o "$TMP/q_rall.adalog" \
  --calib-size 16 "${T1[@]}" >/dev/null 2>&1 &&
  "$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" --bits W4A4 --no-reparam -o "$TMP/q_rnone.adalog" \
  --calib-size 16 "${T1[@]}" >/dev/null 2>&1 || bad "quantize --reparam-select: $(cat "$TMP/q.out" "$TMP/q.err")"
if grep -q "LN reparam on (select)" "$TMP/q.out"; then kept=yes same="$TMP/q_rall.adalog"
else kept=no same="$TMP/q_rnone.adalog"; fi
grep -q "LN reparam $([[ $kept == yes ]] && echo on || echo off) (select)" "$TMP/q.out" &&
  "$ADALOG" inspect "$TMP/q_rsel.adalog" 2>/dev/null | grep -q "LN reparam $kept" &&
  cmp "$TMP/q_rsel.adalog" "$same" >/dev/null 2>&1 && ok ||
  bad "quantize --reparam-select: summary, inspect and bytes disagree: $(cat "$TMP/q.out")"
expect_exit 2 "--reparam-select chooses whether to reparameterize; --no-reparam never does" --absent "$TMP/e10.adalog" -- \
  quantize "$M" --calib "$TMP/calib40.npy" --reparam-select --no-reparam -o "$TMP/e10.adalog"

# --- golden: the W4A4 file's inspect (every quantizer, the plan header, meta) against the
# committed text, unmasked: the file holds nothing timing-dependent.
if "$ADALOG" inspect "$TMP/q_W4A4.adalog" >/dev/null 2>&1; then
  (cd "$TMP" && "$ADALOG" inspect q_W4A4.adalog) >"$TMP/golden.txt"
  if [[ ${ADALOG_UPDATE_GOLDEN:-0} == 1 ]]; then
    mkdir -p "$(dirname "$GOLDEN")" && cp "$TMP/golden.txt" "$GOLDEN" && echo "wrote $GOLDEN"
  fi
  diff -u "$GOLDEN" "$TMP/golden.txt" >"$TMP/golden.diff" && ok ||
    bad "inspect of the W4A4 file differs from $GOLDEN:
$(head -40 "$TMP/golden.diff")"
else
  bad "inspect of the W4A4 file failed"
fi

# --- reproducible files: the same command on the same inputs writes the same bytes (cmp, nothing
# masked), run again with --threads 1 and with 2 and 3 threads; the times are printed instead.
for t in 1 2 3; do
  (cd "$TMP" && "$ADALOG" quantize tiny.onnx --calib calib40.npy --bits W4A4 -o "q_t$t.adalog" --calib-size 32 \
    --seed 3 --threads $t) >"$TMP/q.out" 2>"$TMP/q.err" || bad "quantize --threads $t: $(cat "$TMP/q.err")"
  cmp "$TMP/q_W4A4.adalog" "$TMP/q_t$t.adalog" >"$TMP/det.out" 2>&1 && ok ||
    bad "quantize --threads $t wrote different bytes from the first --threads 1 run: $(cat "$TMP/det.out")"
done
grep -qE "^time +[0-9.]+ s calibration" "$TMP/q.out" && ok || bad "quantize prints no search time: $(cat "$TMP/q.out")"
"$ADALOG" inspect "$TMP/q_t3.adalog" 2>/dev/null | grep "^meta" | grep -qiE "seconds|time" &&
  bad "the file's meta still records a time" || ok

# --- version-1 files (docs/model_format.md, Versioning) still load; inspect prints the file's version
V1=$ROOT/tests/data/model_file/v1_timm_w4a4.adalog
"$ADALOG" inspect "$V1" 2>"$TMP/x.err" | grep -qF "adalog quantized model file (version 1)" && ok ||
  bad "inspect of a version-1 file: $(cat "$TMP/x.err")"
"$ADALOG" inspect "$TMP/q_W4A4.adalog" 2>/dev/null | grep -qF "adalog quantized model file (version 2)" && ok ||
  bad "inspect of a new file does not say version 2"

# --- quantize --json: the same run, its summary as one JSON line (cli/README.md schema)
(cd "$TMP" && "$ADALOG" quantize tiny.onnx --calib calib40.npy --bits W4A4 -o q_json.adalog --calib-size 32 \
  --seed 3 --threads 2 --json) >"$TMP/q_json.out" 2>"$TMP/q.err" || bad "quantize --json: $(cat "$TMP/q.err")"
cmp "$TMP/q_W4A4.adalog" "$TMP/q_json.adalog" >/dev/null 2>&1 && ok || bad "quantize --json wrote different bytes"
"$PY" - "$TMP/q_json.out" "$TMP/q_json.adalog" <<'PYEOF' && ok || bad "quantize --json: $(cat "$TMP/q_json.out")"
import json, os, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert len(lines) == 1, lines
r = json.loads(lines[0])
want = {"model": "tiny.onnx", "output": "q_json.adalog", "bytes": os.path.getsize(sys.argv[2]), "weight_bits": 4,
        "act_bits": 4, "softmax": "adalog", "gelu": "adalog", "fpcs": "best", "ln_reparam": True, "ln_reparam_mode": "all",
        "calib": "calib40.npy", "calib_images": 32, "calib_available": 40, "seed": 3}
for k, v in want.items():
    assert r[k] == v, (k, r[k], v)
assert 0 < r["calibration_seconds"] <= r["total_seconds"], r
PYEOF

# --- inspect lists every quantizer
if "$ADALOG" inspect "$TMP/q_W4A4.adalog" >"$TMP/i.out" 2>"$TMP/i.err"; then
  for want in "adalog quantized model file" "quant      W4A4, softmax adalog, gelu adalog" "block 1" \
      "per-channel x" "per-head x4" "adalog 4-bit per-tensor, scale 1, q " "shift-adalog 4-bit" \
      "folded into fc2's bias" "input  FP32 (the image)"; do
    grep -qF -- "$want" "$TMP/i.out" && ok || bad "inspect: missing '$want'"
  done
else
  bad "inspect quantized: $(cat "$TMP/i.err")"
fi
"$ADALOG" inspect "$TMP/q_uni.adalog" 2>/dev/null | grep -q "twin-uniform 4-bit" && ok || bad "inspect: no twin-uniform line"
# inspect --json: the same facts (cli/README.md schema)
for f in q_W4A4 q_uni; do
  "$ADALOG" inspect "$TMP/$f.adalog" --json 2>/dev/null | "$PY" -c '
import json, sys
r = json.load(sys.stdin)
p = r["plan"]
assert r["format"] == "quantized" and r["blocks"] == 2 and r["heads"] == 4 and len(p["blocks"]) == 2, r
b = p["blocks"][1]
assert p["weight_bits"] == 4 and p["act_bits"] == 4
assert len(b["q"]["scales"]) == 4 and b["qkv"]["weight"]["bits"] == 4 and len(b["qkv"]["weight"]["scales"]) == 3 * r["dim"]
if sys.argv[1] == "q_W4A4":
    assert b["probs"]["kind"] == "adalog" and b["probs"]["scale"] == 1.0 and "q" in b["probs"], b["probs"]
    assert b["fc2"]["input"]["kind"] == "adalog" and b["fc2"]["input"]["shift_folded"] is True, b["fc2"]
else:
    assert b["probs"]["kind"] == "uniform" and b["fc2"]["input"]["kind"] == "twin", (b["probs"], b["fc2"])
' "$f" && ok || bad "inspect --json $f"
done

# --- run / eval / bench on the quantized file: W8A8 is close to FP32, W4A4 further but sane
"$ADALOG" run "$M" --input "$TMP/test_x.npy" --output "$TMP/fp.npy" "${T1[@]}" 2>/dev/null
"$PY" -c 'import sys,numpy as np; np.save(sys.argv[2], np.load(sys.argv[1]).argmax(1).astype(np.int64))' \
  "$TMP/fp.npy" "$TMP/labels.npy"
for bits in W8A8 W4A4; do
  for sim in "" --simulate; do
    out=$("$ADALOG" eval "$TMP/q_$bits.adalog" --data "$TMP/test_x.npy" --labels "$TMP/labels.npy" --json \
      --reference-logits "$TMP/fp.npy" $sim "${T1[@]}" 2>"$TMP/e.err")
    if ! echo "$out" | "$PY" -c '
import json, sys
r = json.loads(sys.stdin.read()); bits = sys.argv[1]
assert r["executor"] == ("sim" if sys.argv[2] == "--simulate" else r["executor"]) and r["executor"] in ("sim", "int"), r
# W4A4 floor from measurement: ref_cosine 0.957753 for this file (int and sim equal to 6 digits);
# 0.952892 / 0.959016 / 0.957009 with --seed 1 / 2 / 5 and 0.953577 with ADALOG_ISA=avx2 (build of
# e79f80d + tests, same 16 images). Floor = lowest 0.9529 minus 0.023 (random-weight model: these
# spreads are all the margin rests on).
lo = 0.99 if bits == "W8A8" else 0.93
assert lo <= r["ref_cosine"] <= 1.0 + 1e-6, r
if bits == "W8A8": assert r["top1"] >= 0.8, r
' $bits "$sim"; then
      bad "eval $bits $sim: $out $(cat "$TMP/e.err")"
    else
      ok
    fi
  done
done
"$ADALOG" run "$TMP/q_W4A4.adalog" --input "$TMP/test_x.npy" --output "$TMP/q.npy" --batch 5 "${T1[@]}" 2>/dev/null &&
  "$PY" -c 'import sys,numpy as np; a=np.load(sys.argv[1]); assert a.shape==(16,10) and np.isfinite(a).all() and a.std()>1e-3' \
    "$TMP/q.npy" && ok || bad "run on the quantized file"
"$ADALOG" bench "$TMP/q_W4A4.adalog" --batch 2 --json --warmup 0 --runs 2 --simulate 2>/dev/null |
  grep -q '"engine":"adalog-sim"' && ok || bad "bench on the quantized file"

# --- errors: exit 1, a clear message, and no output file
check_err() {  # WANT_TEXT OUT -- ARGS...
  local want=$1 out=$2
  shift 3
  expect_exit 1 "$want" --absent "$out" --no-temps "$(dirname "$out")" -- "$@"
}
Q=(quantize "$M" --bits W4A4 "${T1[@]}")
check_err "has 20 images, --calib-size asks for 32" "$TMP/e1.adalog" -- "${Q[@]}" --calib "$TMP/calib20.npy" -o "$TMP/e1.adalog"
check_err "calibration images are [8,3,16,16] but the model expects [N,3,32,32]" "$TMP/e2.adalog" -- \
  "${Q[@]}" --calib "$TMP/small.npy" --calib-size 8 -o "$TMP/e2.adalog"
check_err "element [3,1,2,5] is NaN" "$TMP/e3.adalog" -- "${Q[@]}" --calib "$TMP/nan.npy" -o "$TMP/e3.adalog"
mkdir -p "$TMP/ro"
chmod a-w "$TMP/ro"
if [[ -w $TMP/ro ]]; then
  # root writes into read-only folders; /proc accepts no new files from anyone.
  check_err "not writable" "/proc/adalog_quantize_test.adalog" -- "${Q[@]}" --calib "$TMP/calib40.npy" \
    -o /proc/adalog_quantize_test.adalog
else
  check_err "not writable" "$TMP/ro/e4.adalog" -- "${Q[@]}" --calib "$TMP/calib40.npy" -o "$TMP/ro/e4.adalog"
fi
check_err "does not exist" "$TMP/nodir/e5.adalog" -- "${Q[@]}" --calib "$TMP/calib40.npy" -o "$TMP/nodir/e5.adalog"
check_err "is already an adalog quantized model" "$TMP/e6.adalog" -- quantize "$TMP/q_W4A4.adalog" --calib "$TMP/calib40.npy" -o "$TMP/e6.adalog"
# An existing output is replaced only by a complete file: a failed run leaves it untouched.
cp "$TMP/q_W8A8.adalog" "$TMP/keep.adalog"
"$ADALOG" "${Q[@]}" --calib "$TMP/nan.npy" -o "$TMP/keep.adalog" >/dev/null 2>&1
cmp -s "$TMP/q_W8A8.adalog" "$TMP/keep.adalog" && ok || bad "a failed quantize modified an existing output"
# Unsupported bit widths are usage errors (exit 2), before anything runs.
for b in W9A9 W1A1 W4A16; do
  expect_exit 2 "out of range [2, 8]" --absent "$TMP/e7.adalog" -- \
    quantize "$M" --calib "$TMP/calib40.npy" --bits $b -o "$TMP/e7.adalog"
done
# SIGINT during calibration: exit 130 (128 + SIGINT) with the interrupt message, no output and no
# temporary file.
# stderr is a pseudo-terminal so that quantize prints its progress bar; SIGINT is sent once the
# first step ("1/N") is reported, i.e. while the handler is installed and calibration runs (13 of
# 14 steps left), never after a fixed sleep. A process that ignores the flag finishes (exit 0,
# output written); one without a handler dies of the signal: both fail here.
"$PY" "$ROOT/tests/cli/sigint_on_progress.py" '\] 1/\d+ ' "$ADALOG" "quantize" "$M" "--calib" "$TMP/calib40.npy" "--bits" "W4A4" "-o" "$TMP/int.adalog" "--threads" "1" >"$TMP/sig.out" 2>&1
sig_rc=$(sed -n 's/^sent=True rc=\(-\?[0-9]*\)$/\1/p' "$TMP/sig.out")
[[ $sig_rc == 130 ]] && grep -qF "adalog: error: interrupted (SIGINT) during calibration; no output written" "$TMP/sig.out" &&
  [[ ! -e $TMP/int.adalog ]] && ok || bad "SIGINT: want exit 130, the interrupt message and no output; got:
$(tail -5 "$TMP/sig.out"); output exists: $([[ -e $TMP/int.adalog ]] && echo yes || echo no)"
[[ $(temps_in "$TMP") == 0 ]] && ok || bad "SIGINT left temporary files: $(ls "$TMP")"

cli_finish "cli quantize"
