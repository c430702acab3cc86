#!/usr/bin/env bash
# `adalog report` end to end on the shipped digits and shapes W4A4 files (models/int_test/):
# report.json's schema (docs/report.md), its "logits" row against `adalog eval --simulate
# --reference-logits` on the same images (FP32 logits from `adalog run` on the ONNX), report.txt's
# order, the pictures (digits, when /usr/bin/python3 has matplotlib), --no-plots, a missing
# plotting script or matplotlib, and the error contract.
#   bash tests/cli/report.sh <path-to-adalog> <repo-root>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_init report.sh "$@"
N=64
HAVE_MPL=0
"$PY" -c 'import matplotlib' 2>/dev/null && HAVE_MPL=1

cd "$ROOT" || exit 1  # the files' "source" entries are relative to the repository root
for name in digits shapes; do
  Q=models/int_test/${name}_w4a4.adq
  X=models/$name/test_x.npy
  Y=models/$name/test_y.npy
  OUT=$TMP/$name
  plots=()
  mpl=$HAVE_MPL
  [[ $name == shapes ]] && plots=(--no-plots) && mpl=0  # pictures once (digits): they take most of the time
  if ! "$ADALOG" report "$Q" --data "$X" --labels "$Y" -n $N -o "$OUT" "${plots[@]}" >"$TMP/$name.stdout" 2>"$TMP/$name.stderr"; then
    bad "$name: report failed: $(cat "$TMP/$name.stderr")"
    continue
  fi
  "$ADALOG" run models/$name/${name}_vit.onnx --input "$X" --output "$TMP/$name.fp32.npy" 2>/dev/null ||
    bad "$name: run (FP32) failed"
  "$ADALOG" eval "$Q" --data "$X" --labels "$Y" --limit $N --simulate --reference-logits "$TMP/$name.fp32.npy" \
    --json >"$TMP/$name.eval.json" || bad "$name: eval failed"
  if "$PY" - "$OUT" "$TMP/$name.eval.json" $N $mpl <<'PYEOF'
import json, os, sys
out, ev_path, n, mpl = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
rep = json.load(open(os.path.join(out, "report.json"), encoding="utf-8"))
ev = json.load(open(ev_path))
errs = []
def check(cond, msg):
    if not cond:
        errs.append(msg)
check(rep["schema"] == "adalog.report" and rep["schema_version"] == 1, "schema")
check(rep["executor"] == "sim" and rep["images"] == n, "executor / images")
ops = rep["ops"]
check(ops[0]["name"] == "patch_embed" and ops[-1]["name"] == "logits", "op order")
depth = sum(1 for o in ops if o["op"] == "qkv")
check(len(ops) == 1 + 6 * depth + 2 and depth >= 2, f"{len(ops)} ops for depth {depth}")
# The logits row is eval's end-to-end comparison (eval prints 6 decimals).
lg = ops[-1]["accumulated"]
check(abs(lg["cosine"] - ev["ref_cosine"]) <= 5e-7, f"logits cosine {lg['cosine']} vs eval {ev['ref_cosine']}")
check(abs(rep["logits"]["cosine"] - ev["ref_cosine"]) <= 5e-7, "logits.cosine")
check(abs(rep["logits"]["cosine_min"] - ev["ref_cosine_min"]) <= 5e-7, "logits.cosine_min")
check(abs(rep["logits"]["top1_agreement"] - ev["ref_top1_agreement"]) <= 5e-7, "top-1 agreement")
check(abs(rep["top1"]["quantized"] - ev["top1"]) <= 5e-7, f"top-1 {rep['top1']['quantized']} vs eval {ev['top1']}")
check(0.5 < lg["cosine"] < 1.0, "logits cosine range")
for o in ops:
    for side in ("local", "accumulated"):
        e = o[side]
        check(e["sqnr_db"] is not None and 5 < e["sqnr_db"] < 60, f"{o['name']} {side} sqnr {e['sqnr_db']}")
        check(abs(e["rel_error"] - 10 ** (-e["sqnr_db"] / 20)) < 1e-9, f"{o['name']} rel_error vs sqnr")
    for q in o["quantizers"]:
        check(sum(q["code_histogram"]) == q["values"] > 0, f"{o['name']} {q['name']} histogram")
        check(0 <= q["clipped_fraction"] < 0.5 and 0 <= q["zero_fraction"] < 1, f"{o['name']} fractions")
# report.txt: most damaged (lowest local SQNR) first.
lines = open(os.path.join(out, "report.txt"), encoding="utf-8").read().splitlines()
i = next(k for k, l in enumerate(lines) if l.startswith("op "))
worst = min(ops, key=lambda o: o["local"]["sqnr_db"])
check(lines[i + 1].split()[0] == worst["name"], f"first row {lines[i + 1].split()[0]} != {worst['name']}")
check(len(lines) - i - 1 == len(ops), "one row per op")
pngs = sorted(f for f in os.listdir(out) if f.endswith(".png"))
if mpl:
    check("sqnr.png" in pngs, "sqnr.png")
    check(len([p for p in pngs if p.startswith("act_")]) == 2 * depth, f"act PNGs {pngs}")
    check(all(os.path.getsize(os.path.join(out, p)) > 10000 for p in pngs), "PNG sizes")
if errs:
    print("\n".join(errs))
    sys.exit(1)
PYEOF
  then ok; else bad "$name: report.json checks"; fi
  if [[ $HAVE_MPL == 0 && $name == digits ]]; then
    grep -q "no plots: /usr/bin/python3 cannot import matplotlib" "$TMP/$name.stderr" && ok ||
      bad "$name: missing matplotlib not reported"
  fi
done

# --no-plots: JSON and text only.
Q=models/int_test/digits_w4a4.adq
X=models/digits/test_x.npy
"$ADALOG" report "$Q" --data "$X" -n 8 -o "$TMP/np" --no-plots >/dev/null 2>&1 || bad "--no-plots failed"
[[ -f $TMP/np/report.json && -f $TMP/np/report.txt ]] && ok || bad "--no-plots: files missing"
ls "$TMP/np"/*.png >/dev/null 2>&1 && bad "--no-plots wrote PNGs" || ok

# No plotting script: said plainly, the report is still complete.
if [[ $HAVE_MPL == 1 ]]; then
  ADALOG_PLOT_SCRIPT=$TMP/none.py "$ADALOG" report "$Q" --data "$X" -n 8 -o "$TMP/ns" >/dev/null 2>"$TMP/ns.err" &&
    grep -q "no plots: plotting script .* not found" "$TMP/ns.err" && [[ -f $TMP/ns/report.json ]] && ok ||
    bad "missing plotting script: $(cat "$TMP/ns.err")"
fi

# An interpreter without matplotlib: said plainly, exit 0, JSON and text complete, no PNG.
ADALOG_PYTHON=/bin/false "$ADALOG" report "$Q" --data "$X" -n 8 -o "$TMP/nm" >/dev/null 2>"$TMP/nm.err" &&
  grep -q "no plots: /bin/false cannot import matplotlib (Debian: apt install python3-matplotlib)" "$TMP/nm.err" &&
  [[ -f $TMP/nm/report.json && -f $TMP/nm/report.txt ]] && ! ls "$TMP/nm"/*.png >/dev/null 2>&1 && ok ||
  bad "no matplotlib: $(cat "$TMP/nm.err")"

# Errors: exit 1 with a message naming the fix.
expect_fail() {  # expect_fail "<message regex>" args...
  local re=$1
  shift
  expect_exit 1 "$re" --regex -- "$@"
}
expect_fail "is not an adalog quantized model file" report models/digits/digits_vit.onnx --data "$X" -o "$TMP/e1"
cp "$Q" "$TMP/copy.adq"
(cd "$TMP" && "$ADALOG" report copy.adq --data "$ROOT/$X" -o e2 >/dev/null 2>err2; echo $? >rc2)
[[ $(cat "$TMP/rc2") == 1 ]] && grep -q "give the FP32 ONNX with --fp32" "$TMP/err2" && ok ||
  bad "source not found: $(cat "$TMP/err2")"
(cd "$TMP" && "$ADALOG" report copy.adq --fp32 "$ROOT/models/digits/digits_vit.onnx" --data "$ROOT/$X" -n 4 \
  -o e3 --no-plots >/dev/null 2>&1) && [[ -f $TMP/e3/report.json ]] && ok || bad "--fp32 did not work"
expect_fail "does not match the quantized model" report "$Q" --fp32 models/shapes/shapes_vit.onnx --data "$X" -o "$TMP/e4"
touch "$TMP/afile"
expect_fail "exists and is not a directory" report "$Q" --data "$X" -o "$TMP/afile"

cli_finish "report.sh"
