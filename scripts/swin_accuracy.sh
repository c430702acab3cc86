#!/usr/bin/env bash
# The trained Swin's quantized-accuracy table (models/shapes_swin; issue 11): FP32, then
# W6A6 / W4A4 / W3A3 x adalog / log2 / uniform (post-Softmax and post-GELU alike) x calibration
# seeds 1..3, each `adalog quantize` + `adalog eval --simulate --reference-logits`, the same form as
# scripts/accuracy_table.sh (whose summary columns it prints). All numbers come from the CLI.
#
#   scripts/swin_accuracy.sh [--adalog BIN] [--out DIR] [--jobs N] [--bits "W4A4 ..."] [--quant "adalog ..."] [--seeds "1 2 3"]
#
# Calibration: 32 images drawn with --seed S from models/shapes/calib_pool.npy (the shapes task's
# 256-image pool; shapes_swin shares its data and preprocessing, models/README.md). Test set:
# models/shapes/test_x.npy (400 images). Each job --threads 1, peak RSS from /usr/bin/time -v.
# Resumable: a job whose DIR/results/*.json exists is skipped. Summary: DIR/table.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ADALOG=${ADALOG:-build/cli/adalog}
OUT=out/swin_accuracy
JOBS=2
BITS="W6A6 W4A4 W3A3"
QUANT="adalog log2 uniform"
SEEDS="1 2 3"
while (($#)); do
  case $1 in
    --adalog) ADALOG=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --bits) BITS=$2; shift 2 ;;
    --quant) QUANT=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    *) echo "usage: $0 [--adalog BIN] [--out DIR] [--jobs N] [--bits LIST] [--quant LIST] [--seeds LIST]" >&2; exit 2 ;;
  esac
done
[[ -x $ADALOG ]] || { echo "$ADALOG: not built (cmake --build build --target adalog)" >&2; exit 1; }
ADALOG=$(realpath "$ADALOG")
mkdir -p "$OUT/results" "$OUT/models"
MODEL=models/shapes_swin/shapes_swin.onnx
DATA=models/shapes/test_x.npy
LABELS=models/shapes/test_y.npy

[[ -f $OUT/fp32.npy ]] || "$ADALOG" run "$MODEL" --input "$DATA" --output "$OUT/fp32.npy" --threads 1 2>/dev/null
[[ -f $OUT/results/fp32.json ]] ||
  "$ADALOG" eval "$MODEL" --data "$DATA" --labels "$LABELS" --json --threads 1 >"$OUT/results/fp32.json"

run_job() {  # bits quantizer seed
  local b=$1 q=$2 s=$3
  local name="$b.$q.s$s" res="$OUT/results/$1.$2.s$3.json"
  [[ -f $res ]] && return 0
  local f="$OUT/models/$name.adalog" t0 t1
  t0=$(date +%s.%N)
  if ! /usr/bin/time -v "$ADALOG" quantize "$MODEL" --calib models/shapes/calib_pool.npy --calib-size 32 --seed "$s" \
      --bits "$b" --softmax "$q" --gelu "$q" --threads 1 -o "$f" >"$OUT/results/$name.log" 2>&1; then
    echo "FAILED: $name (see $OUT/results/$name.log)"; return 0
  fi
  t1=$(date +%s.%N)
  local e rss
  e=$("$ADALOG" eval "$f" --simulate --data "$DATA" --labels "$LABELS" --json --threads 1 --reference-logits "$OUT/fp32.npy")
  rss=$(grep -o 'Maximum resident set size (kbytes): [0-9]*' "$OUT/results/$name.log" | grep -o '[0-9]*$')
  echo "${e%\}},\"quantize_seconds\":$(echo "$t1 - $t0" | bc),\"quantize_peak_rss_kb\":$rss}" >"$res.part" && mv "$res.part" "$res"
  rm -f "$f"
  echo "done: $name $(grep -o '"top1":[0-9.]*' "$res")"
}
export -f run_job
export ADALOG OUT MODEL DATA LABELS

for b in $BITS; do for q in $QUANT; do for s in $SEEDS; do echo "$b $q $s"; done; done; done |
  xargs -r -P "$JOBS" -L 1 bash -c 'run_job "$@"' _

{
  echo "| model | bits | softmax/gelu | seeds | top-1 % mean (min..max) | cosine vs FP32 mean (min..max) | top-1 agreement % | quantize s | peak RSS MB |"
  echo "|---|---|---|---|---|---|---|---|---|"
  fp=$(grep -o '"top1":[0-9.]*' "$OUT/results/fp32.json" | cut -d: -f2)
  printf '| shapes_swin | FP32 | - | - | %.2f | 1 | 100 | - | - |\n' "$(echo "$fp * 100" | bc -l)"
  for b in $BITS; do for q in $QUANT; do
    ls "$OUT"/results/$b.$q.s*.json >/dev/null 2>&1 || continue
    cat "$OUT"/results/$b.$q.s*.json | awk -v b="$b" -v q="$q" '
      { match($0, /"top1":[0-9.]+/); t = substr($0, RSTART + 7, RLENGTH - 7) * 100
        match($0, /"ref_cosine":[0-9.]+/); c = substr($0, RSTART + 13, RLENGTH - 13)
        match($0, /"ref_top1_agreement":[0-9.]+/); a = substr($0, RSTART + 21, RLENGTH - 21) * 100
        match($0, /"quantize_seconds":[0-9.]+/); s = substr($0, RSTART + 19, RLENGTH - 19)
        match($0, /"quantize_peak_rss_kb":[0-9]+/); r = substr($0, RSTART + 23, RLENGTH - 23) / 1024
        n++; st += t; sc += c; sa += a; ss += s; if (r > rm) rm = r
        if (n == 1 || t < tmin) tmin = t; if (n == 1 || t > tmax) tmax = t
        if (n == 1 || c < cmin) cmin = c; if (n == 1 || c > cmax) cmax = c }
      END { printf "| shapes_swin | %s | %s-%s | %d | %.2f (%.2f..%.2f) | %.4f (%.4f..%.4f) | %.1f | %.0f | %.0f |\n",
                   b, q, q, n, st / n, tmin, tmax, sc / n, cmin, cmax, sa / n, ss / n, rm }'
  done; done
} >"$OUT/table.md"
cat "$OUT/table.md"
