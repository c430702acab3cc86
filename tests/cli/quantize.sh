#!/usr/bin/env bash
# `adalog quantize` end to end on a tiny export, then inspect / run / eval / bench of the quantized
# file (simulated executor), and quantize's error contract: clear messages, exit 1, and never a
# partial or stale output file.
#   bash tests/cli/quantize.sh <path-to-adalog> <repo-root>
# Random-weight tiny model: checks plumbing and fidelity sanity only, never accuracy claims.
# Needs /usr/bin/python3 with numpy to write and compare .npy files.
set -u
ADALOG=${1:?usage: quantize.sh <path-to-adalog> <repo-root>}
ROOT=${2:?usage: quantize.sh <path-to-adalog> <repo-root>}
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'chmod -R u+w "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT
fail=0
pass=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
ok() { pass=$((pass + 1)); }

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

# --- quantize at W8A8 and W4A4 (AdaLog), and one non-default quantizer choice
for bits in W8A8 W4A4; do
  out=$TMP/q_$bits.adalog
  if ! "$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" --bits $bits -o "$out" --calib-size 32 --seed 3 \
      "${T1[@]}" >"$TMP/q.out" 2>"$TMP/q.err"; then
    bad "quantize $bits: $(cat "$TMP/q.err")"
    continue
  fi
  grep -q "^quantized " "$TMP/q.out" && grep -q "^time " "$TMP/q.out" && [[ -s $out ]] && ok ||
    bad "quantize $bits: no summary or no output: $(cat "$TMP/q.out")"
  # No temporary or probe files are left beside the output.
  [[ $(ls "$TMP" | grep -c -E '\.(tmp|probe)\.') == 0 ]] && ok || bad "temporary files left: $(ls "$TMP")"
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
"$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" --no-fpcs --fpcs-mode best -o "$TMP/e8.adalog" \
  >/dev/null 2>"$TMP/x.err"
rc=$?
[[ $rc == 2 && ! -e $TMP/e8.adalog ]] && grep -q -- "--no-fpcs turns FPCS off" "$TMP/x.err" && ok ||
  bad "--no-fpcs --fpcs-mode best: rc $rc, $(cat "$TMP/x.err")"
"$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" --fpcs-mode fast -o "$TMP/e9.adalog" >/dev/null 2>"$TMP/x.err"
rc=$?
[[ $rc == 2 && ! -e $TMP/e9.adalog ]] && ok || bad "--fpcs-mode fast: rc $rc, $(cat "$TMP/x.err")"

# Same seed -> identical file; with exactly --calib-size images the seed does not matter.
"$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" --bits W4A4 -o "$TMP/q_again.adalog" --calib-size 32 --seed 3 \
  "${T1[@]}" >/dev/null 2>&1
# (The files differ only in the recorded search time, so compare every quantizer instead.)
cmp -s <("$ADALOG" inspect "$TMP/q_W4A4.adalog" | grep -v -E '^(meta|model) ') \
  <("$ADALOG" inspect "$TMP/q_again.adalog" | grep -v -E '^(meta|model) ') && ok ||
  bad "quantize is not deterministic for a fixed seed"

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
lo = 0.99 if bits == "W8A8" else 0.5
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
  "$ADALOG" "$@" >"$TMP/x.out" 2>"$TMP/x.err"
  local rc=$?
  if [[ $rc != 1 ]] || ! grep -qF -- "$want" "$TMP/x.err" || [[ -e $out ]] ||
      [[ $(ls "$(dirname "$out")" 2>/dev/null | grep -c -E '\.(tmp|probe)\.') != 0 ]]; then
    bad "adalog $*: rc $rc (want 1), stderr: $(cat "$TMP/x.err"), want '$want'; output exists: $([[ -e $out ]] && echo yes || echo no)"
  else
    ok
  fi
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
  "$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" --bits $b -o "$TMP/e7.adalog" >/dev/null 2>"$TMP/x.err"
  rc=$?
  [[ $rc == 2 && ! -e $TMP/e7.adalog ]] && grep -q "out of range \[2, 8\]" "$TMP/x.err" && ok ||
    bad "--bits $b: rc $rc, $(cat "$TMP/x.err")"
done
# SIGINT during calibration: no output.
"$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" --bits W4A4 -o "$TMP/int.adalog" "${T1[@]}" >/dev/null 2>&1 &
pid=$!
sleep 0.3
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
[[ ! -e $TMP/int.adalog || $rc == 0 ]] && ok || bad "SIGINT left an output file (rc $rc)"
[[ $(ls "$TMP" | grep -c -E '\.(tmp|probe)\.') == 0 ]] && ok || bad "SIGINT left temporary files: $(ls "$TMP")"

echo "cli quantize: $pass passed, $fail failed"
((fail == 0))
