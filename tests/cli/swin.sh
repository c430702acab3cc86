#!/usr/bin/env bash
# `adalog inspect | run | eval | quantize` on the Swin exports (models/tiny/swin/, models/shapes_swin/).
#   bash tests/cli/swin.sh <path-to-adalog> <repo-root>
# Checks: inspect prints each stage with its window/shift per block, and the merges (and --json
# its swin_stages); run's logits
# match PyTorch's (max |diff| / max |logit| <= 1e-4; logits not constant); eval of shapes_swin on the
# shapes test set gives info.json's fp32_top1 (0.79, 316/400); a quantized Swin file runs, on the
# simulated executor only for its log-sqrt2 softmax; quantize -> run -> eval on shapes_swin (a
# version-3 file, run and eval on the integer executor); --optimize refuses Swin and writes
# nothing; the V2 export is rejected naming its cosine attention.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_init swin.sh "$@"

for m in "$ROOT"/models/tiny/swin/tiny_swin_*.onnx; do
  stem=${m%.onnx}
  name=$(basename "$stem")
  if ! "$ADALOG" inspect "$m" >"$TMP/inspect" 2>"$TMP/err" ||
     ! grep -q "^structure  Swin: " "$TMP/inspect" ||
     ! grep -Eq "^ +stage 0: depth 2, .*blocks \(window/shift\): 4/0 4/2; patch merge" "$TMP/inspect"; then
    bad "adalog inspect $m: $(cat "$TMP/inspect" "$TMP/err")"
    continue
  fi
  if ! "$ADALOG" run "$m" --input "$stem.input.npy" --output "$TMP/$name.npy" --threads 2 --batch 2 2>"$TMP/err" ||
     ! "$PY" - "$stem.output.npy" "$TMP/$name.npy" <<'PYEOF'
import sys
import numpy as np
ref, got = np.load(sys.argv[1]), np.load(sys.argv[2])
assert ref.shape == got.shape, f"shape {got.shape}, want {ref.shape}"
assert ref.std() > 1e-3, "reference logits are (nearly) constant: the test would be vacuous"
rel = np.abs(ref - got).max() / np.abs(ref).max()
assert rel <= 1e-4, f"max relative diff {rel:.3g} > 1e-4"
assert (ref.argmax(1) == got.argmax(1)).all(), "top-1 differs"
PYEOF
  then
    bad "adalog run $m: $(cat "$TMP/err")"
    continue
  fi
  ok
done

out=$("$ADALOG" inspect --json "$ROOT/models/tiny/swin/tiny_swin_timm3_op17_dyn.onnx" 2>"$TMP/err")
if ! echo "$out" | "$PY" -c '
import json, sys
s = json.loads(sys.stdin.read())["swin_stages"]
assert [t["depth"] for t in s] == [2, 2, 2] and [t["dim"] for t in s] == [12, 24, 48], s
assert [t["shift"] for t in s] == [[0, 2], [0, 2], [0, 0]] and [t["grid"] for t in s] == [[16, 16], [8, 8], [4, 4]], s
assert [t.get("merge_to") for t in s] == [24, 48, None], s'; then
  bad "adalog inspect --json timm3: $out $(cat "$TMP/err")"
else
  ok
fi

out=$("$ADALOG" eval "$ROOT/models/shapes_swin/shapes_swin.onnx" --data "$ROOT/models/shapes/test_x.npy" \
      --labels "$ROOT/models/shapes/test_y.npy" --json --threads 2 2>"$TMP/err")
if ! echo "$out" | "$PY" -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["top1_correct"] == 316 and r["images"] == 400, r'; then
  bad "adalog eval shapes_swin: want 316/400 (info.json fp32_correct), got: $out $(cat "$TMP/err")"
else
  ok
fi

# A quantized Swin file (the model_file fuzz seed: micro Swin, W4A4, padded grids, shifted
# windows, one merge, every quantizer kind of sim_hand_plan.h) runs: the integer executor takes
# Swin, so `run` falls back to the simulated one only for this plan's log-sqrt2 softmax of block 2
# and says so (an all-integer Swin plan runs on the integer executor through the same Session:
# SwinInt.SessionRunsASwinModelFileOnTheIntegerExecutor). Logits finite and varying.
SEED="$ROOT/tests/fuzz/corpus_model_file/swin_micro_w4a4.adalog"
"$PY" -c 'import sys, numpy as np; np.save(sys.argv[1], np.random.default_rng(3).standard_normal((5, 3, 10, 10)).astype(np.float32))' \
  "$TMP/micro_x.npy"
out=$("$ADALOG" run "$SEED" --input "$TMP/micro_x.npy" --output "$TMP/micro.npy" --batch 2 --threads 2 \
      --json 2>"$TMP/err")
if ! echo "$out" | "$PY" -c '
import json, sys, numpy as np
r = json.loads(sys.stdin.read())
assert r["executor"] == "sim" and r["images"] == 5 and r["classes"] == 3, r
y = np.load(sys.argv[1])
assert y.shape == (5, 3) and np.isfinite(y).all() and y.std() > 1e-4, y' "$TMP/micro.npy" ||
   ! grep -Eq "integer path does not support logsqrt2 for block 2 softmax .*running the simulated executor|has no AVX2" "$TMP/err" ||
   grep -q "Swin" "$TMP/err"; then
  bad "adalog run $SEED: want the simulated executor for the log-sqrt2 softmax only: $out $(cat "$TMP/err")"
else
  ok
fi

# quantize -> run -> eval on the trained Swin (2 calibration images: this checks the pipeline,
# not accuracy; the accuracy table is docs/swin-import.md's): a version-3 file, logits of the
# stored input's shape that are finite and not all equal, eval on the integer executor (the calibrated plan has only kinds it runs).
sw=$ROOT/models/shapes_swin
if ! "$ADALOG" quantize "$sw/shapes_swin.onnx" --calib "$sw/calib.npy" --calib-size 2 --bits W8A8 --threads 2 \
       -o "$TMP/q.adalog" >"$TMP/qout" 2>&1 ||
   ! "$ADALOG" inspect --json "$TMP/q.adalog" 2>"$TMP/err" |
     "$PY" -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["file_version"] == 3, r["file_version"]'; then
  bad "adalog quantize shapes_swin: $(cat "$TMP/qout" "$TMP/err")"
elif ! "$ADALOG" run "$TMP/q.adalog" --input "$sw/shapes_swin.input.npy" --output "$TMP/q_logits.npy" --threads 2 \
         2>"$TMP/err" ||
     ! "$PY" - "$sw/shapes_swin.output.npy" "$TMP/q_logits.npy" <<'PYEOF'
import sys
import numpy as np
ref, got = np.load(sys.argv[1]), np.load(sys.argv[2])
assert ref.shape == got.shape, f"shape {got.shape}, want {ref.shape}"
assert np.isfinite(got).all(), "non-finite logits"
assert got.std() > 0, "constant logits"
assert not np.array_equal(ref, got), "quantized logits equal FP32's bit for bit"
PYEOF
then
  bad "adalog run on the quantized shapes_swin: $(cat "$TMP/err")"
else
  out=$("$ADALOG" eval "$TMP/q.adalog" --data "$ROOT/models/shapes/test_x.npy" --labels "$ROOT/models/shapes/test_y.npy" \
        --json --threads 2 2>"$TMP/err")
  if ! echo "$out" | "$PY" -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["images"] == 400 and r["executor"] == "int" and 0 < r["top1_correct"] <= 400, r'; then
    bad "adalog eval on the quantized shapes_swin: $out $(cat "$TMP/err")"
  else
    ok
  fi
fi
expect_exit 1 "--optimize (block reconstruction) does not support Swin models yet" --absent "$TMP/o.adalog" -- \
  quantize "$sw/shapes_swin.onnx" --calib "$sw/calib.npy" --optimize -o "$TMP/o.adalog"
expect_exit 1 "Swin V2 cosine attention at node '/layers/layers.0/blocks.0/attn/MatMul_1'" -- \
  inspect "$ROOT/models/tiny/swin/tiny_swinv2_timm_op17_static.onnx"

cli_finish "swin"
