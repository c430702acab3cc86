#!/usr/bin/env bash
# `adalog inspect | run | eval | bench` end to end on the shipped tiny exports (models/tiny/*.onnx,
# each with a reference NAME.input.npy and the PyTorch logits NAME.output.npy beside it).
#   bash tests/cli/tiny_models.sh <path-to-adalog> <repo-root>
# Checks: inspect exits 0 and describes the blocks; run's logits match PyTorch's (relative max
# diff <= 1e-4, and the logits are not trivially constant); eval with labels = PyTorch's argmax
# scores top-1 = 1; bench --json prints median_ms/p90_ms/images_per_s. Needs /usr/bin/python3
# with numpy to compare .npy files.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_init tiny_models.sh "$@"

models=("$ROOT"/models/tiny/*.onnx)
[[ -e ${models[0]} ]] || { echo "FAIL: no models in $ROOT/models/tiny"; exit 1; }

for m in "${models[@]}"; do
  stem=${m%.onnx}
  name=$(basename "$stem")
  if ! "$ADALOG" inspect "$m" >"$TMP/inspect" 2>"$TMP/err" || ! grep -q "^structure" "$TMP/inspect"; then
    bad "adalog inspect $m: $(cat "$TMP/err")"
    continue
  fi
  if ! "$ADALOG" run "$m" --input "$stem.input.npy" --output "$TMP/$name.npy" --threads 1 --batch 2 2>"$TMP/err"; then
    bad "adalog run $m --input $stem.input.npy: $(cat "$TMP/err")"
    continue
  fi
  if ! "$PY" - "$stem.output.npy" "$TMP/$name.npy" "$TMP/$name.labels.npy" <<'EOF'
import sys
import numpy as np
ref, got = np.load(sys.argv[1]), np.load(sys.argv[2])
assert ref.shape == got.shape, f"shape {got.shape}, want {ref.shape}"
assert ref.std() > 1e-3, "reference logits are (nearly) constant: the test would be vacuous"
rel = np.abs(ref - got).max() / max(np.abs(ref).max(), 1e-30)
assert rel <= 1e-4, f"max relative diff {rel:.3g} > 1e-4"
np.save(sys.argv[3], ref.argmax(1).astype(np.int64))
EOF
  then
    bad "adalog run $m: logits differ from $stem.output.npy (see above)"
    continue
  fi
  out=$("$ADALOG" eval "$m" --data "$stem.input.npy" --labels "$TMP/$name.labels.npy" --json --threads 1 2>"$TMP/err")
  rc=$?
  # Parsed, not string-matched: the JSON writer (cli/json_out.h) prints 1.0, not 1.000000.
  if [[ $rc != 0 ]] || ! echo "$out" | "$PY" -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["top1"] == 1.0 and r["top1_correct"] == r["images"], r'; then
    bad "adalog eval $m: want top1 1.0, got: $out $(cat "$TMP/err")"
    continue
  fi
  ok
done

m=${models[0]}
for args in "--batch 1 --threads 1" "--batch 3 --threads 2"; do
  # shellcheck disable=SC2086
  out=$("$ADALOG" bench "$(dirname "$m")/tiny_timm_op17_dyn.onnx" $args --json --warmup 1 --runs 3 2>"$TMP/err")
  if ! echo "$out" | "$PY" -c 'import json,sys; r=json.loads(sys.stdin.read()); assert r["median_ms"] > 0 and r["p90_ms"] >= r["median_ms"] and r["images_per_s"] > 0, r'; then
    bad "adalog bench $args --json: $out $(cat "$TMP/err")"
  else
    ok
  fi
done

cli_finish "cli tiny models"
