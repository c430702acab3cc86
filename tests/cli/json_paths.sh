#!/usr/bin/env bash
# JSON outputs stay valid JSON whatever the paths hold: eval --json, bench --json and report's
# report.json on a model and data copied to paths with '"', '\', 'é' (and, for the invalid-UTF-8
# rule of cli/json_out.h, a byte 0xff), each parsed by Python's json module with the path read back.
#   bash tests/cli/json_paths.sh <path-to-adalog> <repo-root>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_init json_paths.sh "$@"

DIR="$TMP/a \"quoted\" back\\slash é dir"
mkdir -p "$DIR" || exit 1
Q="$DIR/mo\"del\\é.adq"
X="$DIR/x \"é\\.npy"
Y="$DIR/y.npy"
cp "$ROOT/models/int_test/digits_w4a4.adq" "$Q"
cp "$ROOT/models/digits/test_x.npy" "$X"
cp "$ROOT/models/digits/test_y.npy" "$Y"
ONNX="$ROOT/models/digits/digits_vit.onnx"

# parse FILE KEY EXPECTED: FILE is JSON whose KEY holds EXPECTED exactly.
parse() {
  "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1], encoding="utf-8")); assert r[sys.argv[2]] == sys.argv[3], (r[sys.argv[2]], sys.argv[3])' "$@"
}

"$ADALOG" eval "$Q" --data "$X" --labels "$Y" --limit 16 --simulate --json >"$TMP/eval.json" 2>"$TMP/err" ||
  bad "eval failed: $(cat "$TMP/err")"
"$PY" -c 'import json,sys; json.load(sys.stdin)' <"$TMP/eval.json" && ok || bad "eval --json is not JSON: $(cat "$TMP/eval.json")"
parse "$TMP/eval.json" model "$Q" && parse "$TMP/eval.json" data "$X" && ok || bad "eval --json paths"

"$ADALOG" bench "$Q" --json --warmup 0 --runs 1 --simulate >"$TMP/bench.json" 2>"$TMP/err" || bad "bench failed: $(cat "$TMP/err")"
"$PY" -c 'import json,sys; json.load(sys.stdin)' <"$TMP/bench.json" && parse "$TMP/bench.json" model "$Q" && ok ||
  bad "bench --json: $(cat "$TMP/bench.json")"

"$ADALOG" report "$Q" --fp32 "$ONNX" --data "$X" -n 4 -o "$DIR/out \"é\\" --no-plots >/dev/null 2>"$TMP/err" ||
  bad "report failed: $(cat "$TMP/err")"
parse "$DIR/out \"é\\/report.json" model "$Q" && parse "$DIR/out \"é\\/report.json" data "$X" && ok ||
  bad "report.json paths"

# inspect --json, run --json
"$ADALOG" inspect "$Q" --json >"$TMP/inspect.json" 2>"$TMP/err" && parse "$TMP/inspect.json" model "$Q" && ok ||
  bad "inspect --json: $(cat "$TMP/inspect.json" "$TMP/err")"
"$ADALOG" run "$Q" --input "$X" --output "$DIR/lo\"gits é.npy" --simulate --json >"$TMP/run.json" 2>"$TMP/err" &&
  parse "$TMP/run.json" output "$DIR/lo\"gits é.npy" && parse "$TMP/run.json" input "$X" && ok ||
  bad "run --json: $(cat "$TMP/run.json" "$TMP/err")"

# A file name that is not UTF-8: still valid JSON (the byte becomes U+FFFD).
B="$TMP/bad"$'\xff'".adq"
cp "$Q" "$B"
"$ADALOG" bench "$B" --json --warmup 0 --runs 1 --simulate >"$TMP/bench2.json" 2>"$TMP/err" || bad "bench (0xff) failed: $(cat "$TMP/err")"
"$PY" -c 'import json,sys; r=json.load(open(sys.argv[1], encoding="utf-8")); assert r["model"].endswith("bad\ufffd.adq"), r["model"]' \
  "$TMP/bench2.json" && ok || bad "non-UTF-8 path: $(cat "$TMP/bench2.json")"

cli_finish "json_paths.sh"
