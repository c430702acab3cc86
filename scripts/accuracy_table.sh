#!/usr/bin/env bash
# The quantized-accuracy table of models/README.md ("Quantized accuracy"): for each shipped trained
# model, FP32 top-1, then `adalog quantize` + `adalog eval --reference-logits` (simulated executor)
# over bit widths x post-Softmax/post-GELU quantizer choices x calibration seeds, plus the FPCS
# and LN-reparameterization ablations. All numbers come from the CLI; this script only
# orchestrates and averages.
#
#   scripts/accuracy_table.sh [--adalog BIN] [--out DIR] [--jobs N] [--set priority|full|FILE]
# (FILE: one job per line, "model bits softmax gelu seed flags", e.g. "shapes W4A4 adalog adalog 1 -";
#  flags: "-", "fpcs-MODE", or options joined by '+' with values after '=', e.g.
#  "optimize+optimize-iters=1000+optimize-qdrop=50";
#  --set summary only rebuilds DIR/table.md from the results present.)
#
# Calibration: 32 images drawn with --seed S from models/<m>/calib_pool.npy (256 training images,
# models/make_calib_pool.py), seeds 1 2 3. Each job runs with --threads 1; --jobs runs N at once.
# Resumable: a job whose result file exists is skipped. Results: DIR/results/*.json (one eval JSON
# line + quantize seconds), summary: DIR/table.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ADALOG=${ADALOG:-build/cli/adalog}
OUT=out/accuracy
JOBS=2
SET=priority
while (($#)); do
  case $1 in
    --adalog) ADALOG=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --set) SET=$2; shift 2 ;;
    *) echo "usage: $0 [--adalog BIN] [--out DIR] [--jobs N] [--set priority|full|summary|FILE]" >&2; exit 2 ;;
  esac
done
[[ -x $ADALOG ]] || { echo "$ADALOG: not built (cmake --build build --target adalog)" >&2; exit 1; }
ADALOG=$(realpath "$ADALOG")
mkdir -p "$OUT/results" "$OUT/models"

onnx() { echo "models/$1/$1_vit.onnx"; }

# FP32 reference: top-1 and the logits every quantized model is compared with.
for m in shapes digits; do
  [[ -f $OUT/fp32_$m.npy ]] || "$ADALOG" run "$(onnx $m)" --input models/$m/test_x.npy --output "$OUT/fp32_$m.npy" --threads 1 2>/dev/null
  [[ -f $OUT/results/$m.fp32.json ]] ||
    "$ADALOG" eval "$(onnx $m)" --data models/$m/test_x.npy --labels models/$m/test_y.npy --json --threads 1 \
      >"$OUT/results/$m.fp32.json"
done

# Job list: "model bits softmax gelu seed flags" (flags: - | no-fpcs | no-reparam | fpcs-official |
# fpcs-best; fpcs-X = --fpcs-mode X), most important first.
jobs_priority() {
  local s
  for s in 1 2 3; do
    for b in W4A4 W3A3; do for q in adalog uniform; do echo "shapes $b $q $q $s -"; done; done
    for b in W4A4 W3A3; do for q in log2 logsqrt2; do echo "shapes $b $q $q $s -"; done; done
    echo "shapes W6A6 adalog adalog $s -"
    for b in W4A4 W3A3; do echo "shapes $b adalog adalog $s no-fpcs"; echo "shapes $b adalog adalog $s no-reparam"; done
  done
}
jobs_full() {
  jobs_priority
  local s m b q
  for s in 1 2 3; do
    for q in uniform log2 logsqrt2; do echo "shapes W6A6 $q $q $s -"; done
    for b in W4A4 W3A3 W6A6; do for q in adalog uniform log2 logsqrt2; do echo "digits $b $q $q $s -"; done; done
    for b in W4A4 W3A3; do echo "digits $b adalog adalog $s no-fpcs"; echo "digits $b adalog adalog $s no-reparam"; done
  done
}

run_job() {  # model bits softmax gelu seed flags
  local m=$1 b=$2 sm=$3 ge=$4 s=$5 fl=$6
  local name="$m.$b.$sm-$ge.$fl.s$s"
  local res="$OUT/results/$name.json"
  [[ -f $res ]] && return 0
  local extra=()
  case $fl in
    -) ;;
    fpcs-*) extra=(--fpcs-mode "${fl#fpcs-}") ;;  # fpcs-official | fpcs-best
    *)  # one or more options joined by '+', a value after '=': optimize+optimize-iters=1000
      local f
      IFS=+ read -ra parts <<<"$fl"
      for f in "${parts[@]}"; do
        if [[ $f == *=* ]]; then extra+=(--"${f%%=*}" "${f#*=}"); else extra+=(--"$f"); fi
      done ;;
  esac
  local q="$OUT/models/$name.adalog" t0 t1
  t0=$(date +%s.%N)
  if ! "$ADALOG" quantize "$(onnx $m)" --calib models/$m/calib_pool.npy --calib-size 32 --seed "$s" --bits "$b" \
      --softmax "$sm" --gelu "$ge" "${extra[@]}" --threads 1 -o "$q" >"$OUT/results/$name.log" 2>&1; then
    echo "FAILED: $name (see $OUT/results/$name.log)"; return 0
  fi
  t1=$(date +%s.%N)
  local e
  e=$("$ADALOG" eval "$q" --simulate --data models/$m/test_x.npy --labels models/$m/test_y.npy --json --threads 1 \
      --reference-logits "$OUT/fp32_$m.npy")
  echo "${e%\}},\"quantize_seconds\":$(echo "$t1 - $t0" | bc)}" >"$res.part" && mv "$res.part" "$res"
  rm -f "$q"
  echo "done: $name $(grep -o '"top1":[0-9.]*' "$res")"
}
export -f run_job onnx
export ADALOG OUT

start=$(date +%s)
{ case $SET in
    full) jobs_full ;;
    priority) jobs_priority ;;
    summary) ;;
    *) grep -v '^#' "$SET" ;;
  esac; } |
  xargs -r -P "$JOBS" -L 1 bash -c 'run_job "$@"' _
echo "wall time: $(($(date +%s) - start)) s for this invocation"

# Summary: mean and spread (min..max) over the seeds present.
{
  echo "| model | bits | softmax/gelu | variant | seeds | top-1 % mean (min..max) | cosine vs FP32 mean (min..max) | top-1 agreement % | quantize s |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for m in shapes digits; do
    fp=$(grep -o '"top1":[0-9.]*' "$OUT/results/$m.fp32.json" | cut -d: -f2)
    printf '| %s | FP32 | - | - | - | %.2f | 1 | 100 | - |\n' "$m" "$(echo "$fp * 100" | bc -l)"
    for f in "$OUT"/results/$m.*.s*.json; do
      if [[ -e $f ]]; then basename "$f" | sed -E 's/\.s[0-9]+\.json$//'; fi
    done | sort -u |
    while read -r key; do
      cat "$OUT"/results/$key.s*.json | awk -v key="$key" '
        { match($0, /"top1":[0-9.]+/); t = substr($0, RSTART + 7, RLENGTH - 7) * 100
          match($0, /"ref_cosine":[0-9.]+/); c = substr($0, RSTART + 13, RLENGTH - 13)
          match($0, /"ref_top1_agreement":[0-9.]+/); a = substr($0, RSTART + 21, RLENGTH - 21) * 100
          match($0, /"quantize_seconds":[0-9.]+/); q = substr($0, RSTART + 19, RLENGTH - 19)
          n++; st += t; sc += c; sa += a; sq += q
          if (n == 1 || t < tmin) tmin = t; if (n == 1 || t > tmax) tmax = t
          if (n == 1 || c < cmin) cmin = c; if (n == 1 || c > cmax) cmax = c }
        END { split(key, k, ".");
              printf "| %s | %s | %s | %s | %d | %.2f (%.2f..%.2f) | %.4f (%.4f..%.4f) | %.1f | %.0f |\n",
                     k[1], k[2], k[3], (k[4] == "-" ? "default" : k[4]), n, st / n, tmin, tmax,
                     sc / n, cmin, cmax, sa / n, sq / n }'
    done
  done
} >"$OUT/table.md"
cat "$OUT/table.md"
