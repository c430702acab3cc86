#!/usr/bin/env bash
# `adalog quantize --optimize` (block reconstruction) end to end with a tiny budget on a tiny export:
# the file is written, loads, runs on the integer executor like on the simulated one and records
# the optimisation in its meta; SIGINT during the optimisation leaves no file (exit 130); bad
# --optimize-* values are refused (usage: exit 2; data: exit 1), before any long work.
#   bash tests/cli/optimize.sh <path-to-adalog> <repo-root>
# The tiny model (depth 2) instead of models/digits keeps the test short: calibrating digits takes
# minutes on the shared machine, and every path the pipeline takes (patch embed, blocks, head) is
# the same. Calibration runs with --calib-size 8 --no-fpcs for the same reason.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_init optimize.sh "$@"

M=$ROOT/models/tiny/tiny_timm_op17_dyn.onnx  # 3x32x32, dim 64, 4 heads, depth 2, erf GELU
[[ -f $M ]] || { echo "FAIL: $M missing"; exit 1; }

"$PY" - "$TMP" <<'PYEOF'
import sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
np.save(f"{d}/calib40.npy", rng.standard_normal((40, 3, 32, 32)).astype(np.float32))
np.save(f"{d}/opt24.npy", rng.standard_normal((24, 3, 32, 32)).astype(np.float32))
np.save(f"{d}/test_x.npy", rng.standard_normal((16, 3, 32, 32)).astype(np.float32))
PYEOF

FAST=(--calib-size 8 --no-fpcs --threads 1)

# --- a small run: file written, summary and per-unit lines, meta, loads, runs on both executors
"$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" "${FAST[@]}" --optimize --optimize-iters 20 \
  --optimize-size 16 --optimize-batch 4 --optimize-data "$TMP/opt24.npy" -o "$TMP/q_opt.adalog" \
  >"$TMP/q.out" 2>"$TMP/q.err" && [[ -s $TMP/q_opt.adalog ]] && ok ||
  bad "quantize --optimize: $(cat "$TMP/q.err")"
grep -qE "^optimize +4 units x 20 iterations, batch 4, on 16 of 24 images from .*opt24.npy \(seed 0\)$" "$TMP/q.out" &&
  grep -qE "^time +[0-9.]+ s calibration, [0-9.]+ s optimization, [0-9.]+ s total$" "$TMP/q.out" && ok ||
  bad "quantize --optimize summary: $(cat "$TMP/q.out")"
for u in "1/4 patch_embed" "2/4 block0" "3/4 block1" "4/4 head"; do
  grep -qE "^adalog: optimized $u: loss [0-9.e+-]+ -> [0-9.e+-]+ " "$TMP/q.err" && ok ||
    bad "no per-unit line for $u: $(cat "$TMP/q.err")"
done
"$ADALOG" inspect "$TMP/q_opt.adalog" >"$TMP/i.out" 2>&1 &&
  grep -qF "optimize_iters=20 optimize_batch=4 optimize_images=16 optimize_data=$TMP/opt24.npy" "$TMP/i.out" && ok ||
  bad "inspect: no optimize meta: $(cat "$TMP/i.out")"
"$ADALOG" run "$TMP/q_opt.adalog" --input "$TMP/test_x.npy" --output "$TMP/y_int.npy" --threads 1 2>"$TMP/r.err" &&
  "$ADALOG" run "$TMP/q_opt.adalog" --simulate --input "$TMP/test_x.npy" --output "$TMP/y_sim.npy" --threads 1 \
    2>>"$TMP/r.err" && ok || bad "run of the optimised file: $(cat "$TMP/r.err")"
# The integer executor against the simulated one on the optimised file: same top-1 everywhere and
# logits equal to float rounding (the random-model W4A4 AdaLog case of executor_int_test.cc
# measures max |int - sim| / max |sim| at 3.9e-7; a wrong code or scale moves logits by far more).
"$PY" - "$TMP/y_int.npy" "$TMP/y_sim.npy" <<'PYEOF' && ok || bad "integer vs simulated executor on the optimised file"
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == (16, 10) and np.isfinite(a).all(), a.shape
assert np.std(b) > 0.01, "degenerate logits"
assert (a.argmax(1) == b.argmax(1)).all(), (a.argmax(1), b.argmax(1))
rel = np.abs(a - b).max() / np.abs(b).max()
assert rel < 1e-5, rel
PYEOF
# --json: the optimisation fields.
"$ADALOG" quantize "$M" --calib "$TMP/calib40.npy" "${FAST[@]}" --optimize --optimize-iters 2 --optimize-batch 8 \
  --json -o "$TMP/q_json.adalog" >"$TMP/j.out" 2>"$TMP/j.err" || bad "quantize --optimize --json: $(cat "$TMP/j.err")"
"$PY" - "$TMP/j.out" "$TMP/calib40.npy" <<'PYEOF' && ok || bad "quantize --optimize --json: $(cat "$TMP/j.out")"
import json, sys
j = json.loads(open(sys.argv[1]).read())
# Without --optimize-size, a source smaller than the default 1024 is used whole.
assert (j["optimize_iters"], j["optimize_batch"], j["optimize_images"]) == (2, 8, 40), j
assert j["optimize_qdrop"] == 0 and j["optimize_inputs"] == "fp32", j
assert j["optimize_data"] == sys.argv[2] and j["optimization_seconds"] >= 0, j
PYEOF

# --- bad values: usage errors (exit 2) and data errors (exit 1), no output either way
Q=(quantize "$M" --calib "$TMP/calib40.npy" "${FAST[@]}" -o "$TMP/e.adalog")
expect_exit 2 "option '--optimize-iters' of 'adalog quantize': 0 is out of range [1, 10000000]" --absent "$TMP/e.adalog" -- \
  "${Q[@]}" --optimize --optimize-iters 0
expect_exit 2 "option '--optimize-batch' of 'adalog quantize': 0 is out of range [1, 1024]" --absent "$TMP/e.adalog" -- \
  "${Q[@]}" --optimize --optimize-batch 0
expect_exit 2 "option '--optimize-size' of 'adalog quantize'" --absent "$TMP/e.adalog" -- \
  "${Q[@]}" --optimize --optimize-size many
expect_exit 2 "'adalog quantize': --optimize-iters needs --optimize" --absent "$TMP/e.adalog" -- \
  "${Q[@]}" --optimize-iters 5
expect_exit 2 "'adalog quantize': --optimize-data needs --optimize" --absent "$TMP/e.adalog" -- \
  "${Q[@]}" --optimize-data "$TMP/opt24.npy"
expect_exit 2 "'adalog quantize': --optimize-qdrop needs --optimize" --absent "$TMP/e.adalog" -- \
  "${Q[@]}" --optimize-qdrop 50
expect_exit 2 "option '--optimize-qdrop' of 'adalog quantize': 101 is out of range [0, 100]" --absent "$TMP/e.adalog" -- \
  "${Q[@]}" --optimize --optimize-qdrop 101
expect_exit 2 "'adalog quantize': --optimize-inputs needs --optimize" --absent "$TMP/e.adalog" -- \
  "${Q[@]}" --optimize-inputs quantized
expect_exit 2 "--optimize-inputs" --absent "$TMP/e.adalog" -- \
  "${Q[@]}" --optimize --optimize-inputs int8
expect_exit 2 "'adalog quantize': --optimize-batch 16 is more than --optimize-size 8" --absent "$TMP/e.adalog" -- \
  "${Q[@]}" --optimize --optimize-size 8 --optimize-batch 16
expect_exit 2 "is the same file as --optimize-data" --absent "$TMP/e.adalog" -- \
  quantize "$M" --calib "$TMP/calib40.npy" --optimize --optimize-data "$TMP/opt24.npy" -o "$TMP/opt24.npy"
# Data errors come before calibration (quick): too few images for --optimize-size / the batch, a
# missing source.
expect_exit 1 "has 24 images, --optimize-size asks for 100" --absent "$TMP/e.adalog" --timeout 20 -- \
  "${Q[@]}" --optimize --optimize-data "$TMP/opt24.npy" --optimize-size 100
expect_exit 1 "--optimize-batch 32 is more than the 24 optimisation images of $TMP/opt24.npy" --absent "$TMP/e.adalog" \
  --timeout 20 -- "${Q[@]}" --optimize --optimize-data "$TMP/opt24.npy"
expect_exit 1 "$TMP/missing.npy" --absent "$TMP/e.adalog" --timeout 20 -- \
  "${Q[@]}" --optimize --optimize-data "$TMP/missing.npy"

# --- SIGINT during the optimisation: exit 130 with the interrupt message, no output and no
# temporary file. stderr is a pseudo-terminal so that quantize prints its progress; SIGINT is sent
# once the first unit reports an iteration ("[1/4 patch_embed] "), i.e. while the training loop
# runs (the budget, 100000 iterations per unit, would take far longer than the test's deadline).
"$PY" "$ROOT/tests/cli/sigint_on_progress.py" '\[1/4 patch_embed\] \d+/100000 ' "$ADALOG" "quantize" "$M" "--calib" "$TMP/calib40.npy" "--calib-size" "8" "--no-fpcs" "--optimize" "--optimize-iters" "100000" "--optimize-batch" "4" "-o" "$TMP/int.adalog" "--threads" "1" >"$TMP/sig.out" 2>&1
sig_rc=$(sed -n 's/^sent=True rc=\(-\?[0-9]*\)$/\1/p' "$TMP/sig.out")
[[ $sig_rc == 130 ]] && grep -qF "adalog: error: interrupted (SIGINT) during optimization; no output written" "$TMP/sig.out" &&
  [[ ! -e $TMP/int.adalog ]] && ok || bad "SIGINT: want exit 130, the interrupt message and no output; got:
$(tail -5 "$TMP/sig.out"); output exists: $([[ -e $TMP/int.adalog ]] && echo yes || echo no)"
[[ $(temps_in "$TMP") == 0 ]] && ok || bad "SIGINT left temporary files: $(ls "$TMP")"

cli_finish "cli optimize"
