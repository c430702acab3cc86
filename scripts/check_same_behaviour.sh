#!/usr/bin/env bash
# Checks that two `adalog` binaries behave the same: identical exit codes, stdout, stderr and
# output files for inspect / run / eval / bench / quantize (npy and image-folder data, JSON and
# text, success and loader errors). Timing values are masked; quantized files are compared byte
# for byte after dropping META's `search_seconds` value, if any (model format v1 files held one; and the size / checksum fields that
# depend on its length). For restructurings that must not change behaviour.
#   bash scripts/check_same_behaviour.sh OLD_ADALOG NEW_ADALOG
# Exit 0: no difference; 1: a difference (each one printed with a diff); 2: bad usage.
# Needs /usr/bin/python3 with numpy and PIL (image folders are written from models/digits).
# Cost: the two full W4A4 digits calibrations (one per binary) dominate; THREADS (default 2).
set -u
OLD=${1:?usage: check_same_behaviour.sh OLD_ADALOG NEW_ADALOG}
NEW=${2:?usage: check_same_behaviour.sh OLD_ADALOG NEW_ADALOG}
OLD=$(realpath "$OLD") NEW=$(realpath "$NEW")
[[ -x $OLD && -x $NEW ]] || { echo "not executable: $OLD or $NEW" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-2}
D=$ROOT/models/digits
M=$D/digits_vit.onnx
TINY=$ROOT/models/tiny/tiny_timm_op17_dyn.onnx
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/old" "$TMP/new" "$TMP/data"
fails=0
checks=0

# Test data: image folders (class sub-folders of PNGs, un-normalised from the digits arrays) and
# small .npy files for the error paths.
"$PY" - "$D" "$TMP/data" <<'PYEOF' || { echo "FAIL: could not write the test data"; exit 1; }
import os, sys
import numpy as np
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
x = np.load(f"{src}/test_x.npy")
y = np.load(f"{src}/test_y.npy")
pool = np.load(f"{src}/calib_pool.npy")
def write(folder, imgs, labels):
    for i, (img, lab) in enumerate(zip(imgs, labels)):
        d = f"{out}/{folder}/{int(lab)}"
        os.makedirs(d, exist_ok=True)
        v = np.clip(np.rint((img.transpose(1, 2, 0) * 0.4 + 0.3) * 255), 0, 255).astype(np.uint8)
        Image.fromarray(v, "RGB").save(f"{d}/img{i:03d}.png")
write("eval_dir", x[:60], y[:60])
write("calib_dir", pool[:40], np.arange(40) % 10)
write("nine_classes", x[:30], y[:30] % 9)
np.save(f"{out}/x3d.npy", x[0])
np.save(f"{out}/x_nan.npy", np.where(np.arange(x[:8].size).reshape(x[:8].shape) == 77, np.nan, x[:8]).astype(np.float32))
np.save(f"{out}/y_short.npy", y[:10])
np.save(f"{out}/y_bad.npy", np.full(500, 12, dtype=np.int64))
np.save(f"{out}/calib8_32x32.npy", np.zeros((8, 3, 32, 32), np.float32))
np.save(f"{out}/ref_bad.npy", np.zeros((500, 7), np.float32))
rng = np.random.default_rng(1)
np.save(f"{out}/c32.npy", rng.standard_normal((40, 3, 32, 32)).astype(np.float32))
np.save(f"{out}/y40.npy", np.arange(40, dtype=np.int64) % 10)
PYEOF

# Masks values that differ between runs of the same binary (wall time, memory).
mask() {
  sed -E -e 's/"seconds":[0-9.]+/"seconds":T/' \
    -e 's/, [0-9]+\.[0-9] s$/, T s/' \
    -e 's/^time .*/time T/' \
    -e 's/search_seconds=[^ ]*/search_seconds=T/' \
    -e 's/"(median_ms|p90_ms|min_ms|mean_ms|images_per_s|peak_rss_mb)":[0-9.]+/"\1":T/g' \
    -e 's/(median|p90|min) [0-9.]+ ms/\1 T ms/g' -e 's/[0-9.]+ images\/s/T images\/s/' \
    -e 's/peak RSS [0-9]+ MB/peak RSS T MB/'
}

# same NAME -- ARGS...: runs both binaries with ARGS in $TMP/old and $TMP/new (so relative output
# paths print the same) and compares exit code and masked stdout / stderr.
same() {
  local name=$1
  shift 2
  checks=$((checks + 1))
  for side in old new; do
    local bin=$OLD
    [[ $side == new ]] && bin=$NEW
    (cd "$TMP/$side" && "$bin" "$@" >"$name.out" 2>"$name.err"; echo $? >"$name.rc")
    mask <"$TMP/$side/$name.out" >"$TMP/$side/$name.out.m"
    mask <"$TMP/$side/$name.err" >"$TMP/$side/$name.err.m"
  done
  local f
  for f in rc out.m err.m; do
    if ! cmp -s "$TMP/old/$name.$f" "$TMP/new/$name.$f"; then
      echo "FAIL: $name: ${f%.m} differs ($*)"
      diff "$TMP/old/$name.$f" "$TMP/new/$name.$f" | head -20
      fails=$((fails + 1))
    fi
  done
}

# same_file FILE: the file each side wrote must be byte-identical.
same_file() {
  checks=$((checks + 1))
  if ! cmp "$TMP/old/$1" "$TMP/new/$1"; then
    echo "FAIL: output file $1 differs"
    fails=$((fails + 1))
  fi
}

# same_model FILE: quantized model files, byte-identical once META's search_seconds value is
# dropped (it moves the payload size, the META body length and the checksum, dropped too).
same_model() {
  checks=$((checks + 1))
  if ! "$PY" - "$TMP/old/$1" "$TMP/new/$1" <<'PYEOF'
import struct, sys
def canon(path):
    b = open(path, "rb").read()
    assert b[:8] == b"ADALOGQ\0", f"{path}: not a quantized model file"
    payload = struct.unpack_from("<Q", b, 16)[0]
    assert len(b) == 24 + payload + 8, f"{path}: size"
    off, sections = 24, []
    while off < 24 + payload:
        tag = b[off:off + 4]
        n = struct.unpack_from("<Q", b, off + 8)[0]
        sections.append((tag, b[off + 16:off + 16 + n]))
        off += 16 + n
    assert sections[-1][0] == b"META", f"{path}: last section {sections[-1][0]}"
    meta, p = sections[-1][1], 4
    pairs = []
    for _ in range(struct.unpack_from("<I", meta, 0)[0]):
        kv = []
        for _ in range(2):
            n = struct.unpack_from("<I", meta, p)[0]
            kv.append(meta[p + 4:p + 4 + n])
            p += 4 + n
        pairs.append(kv)
    assert p == len(meta), f"{path}: META length"
    timed = [k for k, v in pairs if k == b"search_seconds"]
    assert len(timed) <= 1, f"{path}: search_seconds repeated"  # files since model format v2 have none
    body = b"".join(t + s for t, s in sections[:-1])
    return body, [(k, b"T" if k == b"search_seconds" else v) for k, v in pairs], b[:16]
a, b = canon(sys.argv[1]), canon(sys.argv[2])
if a[2] != b[2]: sys.exit("header differs")
if a[0] != b[0]: sys.exit("sections before META differ")
if a[1] != b[1]: sys.exit(f"META differs beyond search_seconds: {a[1]} vs {b[1]}")
PYEOF
  then
    echo "FAIL: quantized file $1 differs beyond search_seconds"
    fails=$((fails + 1))
  fi
}

X=$D/test_x.npy
Y=$D/test_y.npy
DIR=$TMP/data/eval_dir
T=(--threads "$THREADS")

# ---- ONNX model: inspect, run, eval, bench ----
same inspect_onnx -- inspect "$M"
same run_onnx -- run "$M" --input "$X" --output fp32_logits.npy --batch 16 "${T[@]}"
same_file fp32_logits.npy
same eval_npy -- eval "$M" --data "$X" --labels "$Y" "${T[@]}"
same eval_npy_json -- eval "$M" --data "$X" --labels "$Y" --json --limit 100 --batch 5 "${T[@]}"
same eval_dir -- eval "$M" --data "$DIR" "${T[@]}"
same eval_dir_json -- eval "$M" --data "$DIR" --json --batch 7 --limit 33 "${T[@]}"
same eval_dir_opts -- eval "$M" --data "$DIR" --image-size 16 --resize 20 --mean 0.3,0.3,0.3 --std 0.4,0.5,0.4 "${T[@]}"
same eval_dir_size -- eval "$M" --data "$DIR" --image-size 8
same eval_ref -- eval "$M" --data "$X" --labels "$Y" --reference-logits fp32_logits.npy "${T[@]}"
same eval_ref_json -- eval "$M" --data "$X" --labels "$Y" --reference-logits "$D/test_x.npy" --json
same bench_text -- bench "$M" --batch 4 --warmup 1 --runs 3 "${T[@]}"
same bench_json -- bench "$M" --batch 2 --warmup 1 --runs 3 --json --threads 1
same run_tiny -- run "$TINY" --input "$TMP/data/c32.npy" --output tiny_logits.npy "${T[@]}"
same_file tiny_logits.npy
C32_REF=$TMP/old/tiny_logits.npy

# ---- loader errors (run / eval / quantize) ----
same err_run_3d -- run "$M" --input "$TMP/data/x3d.npy" --output o.npy
same err_run_missing -- run "$M" --input "$TMP/data/nope.npy" --output o.npy
same err_run_nan -- run "$M" --input "$TMP/data/x_nan.npy" --output o.npy
same err_eval_count -- eval "$M" --data "$X" --labels "$TMP/data/y_short.npy"
same err_eval_label -- eval "$M" --data "$X" --labels "$TMP/data/y_bad.npy"
same err_eval_3d -- eval "$M" --data "$TMP/data/x3d.npy" --labels "$Y"
same err_eval_classes -- eval "$M" --data "$TMP/data/nine_classes"
same err_eval_nodir -- eval "$M" --data "$TMP/data/nodir"
same err_eval_ref -- eval "$M" --data "$X" --labels "$Y" --reference-logits "$TMP/data/ref_bad.npy"
same err_q_shape -- quantize "$M" --calib "$TMP/data/calib8_32x32.npy" -o e.adalog
same err_q_count -- quantize "$M" --calib "$D/calib.npy" --calib-size 33 -o e.adalog
same err_q_dircount -- quantize "$M" --calib "$TMP/data/calib_dir" --calib-size 41 -o e.adalog
same err_q_nan -- quantize "$M" --calib "$TMP/data/x_nan.npy" --calib-size 8 -o e.adalog
same err_q_softmax -- quantize "$M" --calib "$D/calib.npy" --softmax log3 -o e.adalog

# ---- quantize: the W4A4 default on calib.npy (digits); on the tiny model (fast): a seeded
# subset of an .npy, an image folder (subset and all), the official FPCS ----
C32=$TMP/data/c32.npy
same quantize_w4a4 -- quantize "$M" --calib "$D/calib.npy" --bits W4A4 -o w4a4.adalog "${T[@]}"
same_model w4a4.adalog
same quantize_pool -- quantize "$TINY" --calib "$C32" --calib-size 4 --seed 11 --bits W3A4 \
  --no-fpcs --softmax log2 --gelu twin -o pool.adalog "${T[@]}"
same_model pool.adalog
same quantize_dir -- quantize "$TINY" --calib "$TMP/data/calib_dir" --calib-size 8 --no-fpcs --no-reparam \
  --gelu uniform --softmax uniform -o dir.adalog "${T[@]}"
same_model dir.adalog
same quantize_dir_all -- quantize "$TINY" --calib "$TMP/data/calib_dir" --calib-size 40 --no-fpcs \
  --softmax logsqrt2 --gelu logsqrt2 -o dirall.adalog "${T[@]}"
same_model dirall.adalog
same quantize_official -- quantize "$TINY" --calib "$C32" --calib-size 2 --seed 4294967295 \
  --fpcs-mode official --bits W8A8 --gelu log2 -o official.adalog "${T[@]}"
same_model official.adalog
same err_q_again -- quantize w4a4.adalog --calib "$D/calib.npy" -o e.adalog

# ---- the quantized models: inspect (every quantizer), run on both executors, eval (npy with
# reference logits, image folder) ----
for q in w4a4 pool dir dirall official; do
  [[ -f $TMP/old/$q.adalog && -f $TMP/new/$q.adalog ]] || continue
  if [[ $q == w4a4 ]]; then QX=$X QY=$Y REF=fp32_logits.npy; else QX=$C32 QY=$TMP/data/y40.npy REF=$C32_REF; fi
  same "inspect_$q" -- inspect "$q.adalog"
  same "run_$q" -- run "$q.adalog" --input "$QX" --output "$q.logits.npy" "${T[@]}"
  same_file "$q.logits.npy"
  same "run_sim_$q" -- run "$q.adalog" --input "$QX" --output "$q.sim.npy" --simulate "${T[@]}"
  same_file "$q.sim.npy"
  same "eval_$q" -- eval "$q.adalog" --data "$QX" --labels "$QY" --reference-logits "$REF" --json "${T[@]}"
  same "eval_dir_$q" -- eval "$q.adalog" --data "$DIR" --simulate --limit 20
done
same bench_w4a4 -- bench w4a4.adalog --batch 4 --warmup 1 --runs 2 --json "${T[@]}"

echo "check_same_behaviour: $checks checks, $fails differences ($OLD vs $NEW)"
[[ $fails -eq 0 ]]
