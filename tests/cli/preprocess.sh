#!/usr/bin/env bash
# Image-folder preprocessing end to end on the shipped digits model (trained on 8x8 digits scaled
# to [0,1], upsampled bilinearly to 16x16, mean 0.3 / std 0.4: models/digits/info.json):
#  - PNG folders made here from the committed test_x.npy / calib.npy (8x8 grayscale, value
#    round(k * 255 / 16) for digit intensity k in 0..16, recovered exactly from the .npy);
#  - quantize from the .npy and from the PNGs (flat folder, no labels; and class subfolders) with
#    the model's preprocessing: the same W4A4 top-1 within one test image;
#  - the quantized file stores that preprocessing: eval on the folder with no flags uses it
#    (same top-1 as on the .npy), inspect shows it; a disagreeing flag is refused (exit 2) unless
#    --force-preprocess; a model without declared preprocessing says so (warning, inspect
#    "unknown (default ...)");
#  - ONNX metadata adalog.preprocess.* is read (eval with no flags gets the FP32 98.0%);
#  - skipped folder entries are counted on one stderr line, and --strict refuses them;
#  - run and bench take the folder.
#   bash tests/cli/preprocess.sh <path-to-adalog> <repo-root>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_init preprocess.sh "$@"

D=$ROOT/models/digits
M=$D/digits_vit.onnx
[[ -f $M && -f $D/test_x.npy && -f $D/calib.npy ]] || { echo "FAIL: digits model or data missing"; exit 1; }
PRE=(--preprocess none --mean 0.3,0.3,0.3 --std 0.4,0.4,0.4)  # none: resize 16 = the crop
Q=(--bits W4A4 --calib-size 32 --seed 0 --threads 1)

"$PY" - "$D" "$TMP" "$M" <<'PYEOF' || { echo "FAIL: making the PNG folders"; exit 1; }
import os, sys
import numpy as np
import onnx
from PIL import Image
d, out, model = sys.argv[1:4]

def to_digits(x):
    """The 8x8 intensities k (0..16) behind preprocessed [N,3,16,16] digits: undo (v-0.3)/0.4,
    then the 2x bilinear upsample (align_corners=False), row by row then column by column."""
    u = x[:, 0].astype(np.float64) * 0.4 + 0.3
    def inv(a, axis):
        a = np.moveaxis(a, axis, -1)
        r = np.zeros(a.shape[:-1] + (8,))
        r[..., 0] = a[..., 0]
        for i in range(1, 8):
            r[..., i] = (a[..., 2 * i] - 0.25 * r[..., i - 1]) / 0.75
        return np.moveaxis(r, -1, axis)
    e = inv(inv(u, 1), 2) * 16
    k = np.rint(e)
    assert np.abs(e - k).max() < 1e-4, np.abs(e - k).max()
    assert (x[:, 0] == x[:, 2]).all()
    return k.astype(np.int64)

def save(k, path):
    Image.fromarray(np.rint(k * 255.0 / 16).astype(np.uint8), "L").save(path)

tx, ty = np.load(f"{d}/test_x.npy"), np.load(f"{d}/test_y.npy")
kt = to_digits(tx)
assert kt.std() > 3 and len(set(ty.tolist())) == 10
for i, (k, y) in enumerate(zip(kt, ty)):
    os.makedirs(f"{out}/test/{y}", exist_ok=True)
    save(k, f"{out}/test/{y}/{i:03d}.png")
cx, cy = np.load(f"{d}/calib.npy"), np.load(f"{d}/calib_labels.npy")
kc = to_digits(cx)
os.makedirs(f"{out}/calib_flat")
for i, (k, y) in enumerate(zip(kc, cy)):
    save(k, f"{out}/calib_flat/{i:02d}.png")
    os.makedirs(f"{out}/calib_cls/{y}", exist_ok=True)
    save(k, f"{out}/calib_cls/{y}/{i:02d}.png")
# The digits model with its preprocessing declared in metadata_props.
m = onnx.load(model)
for key, value in [("adalog.preprocess.mean", "0.3,0.3,0.3"), ("adalog.preprocess.std", "0.4,0.4,0.4"),
                   ("adalog.preprocess.resize", "16")]:
    p = m.metadata_props.add()
    p.key, p.value = key, value
onnx.save(m, f"{out}/digits_meta.onnx")
PYEOF

# top1_correct of `adalog eval ... --json` (stdout), or "" on failure (stderr kept in $TMP/e.err).
correct() {
  "$ADALOG" eval "$@" --json --threads 1 2>"$TMP/e.err" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["top1_correct"])' 2>/dev/null
}
within_one() { [[ -n $1 && -n $2 ]] && (($1 - $2 <= 1 && $2 - $1 <= 1)); }

# --- FP32: the folder with the model's preprocessing gives the .npy's top-1 (490 of 500)
fp_npy=$(correct "$M" --data "$D/test_x.npy" --labels "$D/test_y.npy")
fp_dir=$(correct "$M" --data "$TMP/test" "${PRE[@]}")
echo "FP32 top-1 correct: .npy $fp_npy, PNG folder with the model's preprocessing $fp_dir"
[[ $fp_npy == 490 ]] && within_one "$fp_npy" "$fp_dir" && ok || bad "FP32: .npy $fp_npy vs folder $fp_dir"
# Without flags the ONNX declares nothing: one warning line names the default, and it is wrong here.
fp_def=$(correct "$M" --data "$TMP/test")
[[ $(grep -c "declares no preprocessing" "$TMP/e.err") == 1 ]] && grep -q "default resize 18, crop 16" "$TMP/e.err" && ok ||
  bad "no warning for an undeclared preprocessing: $(cat "$TMP/e.err")"
[[ -n $fp_def ]] && ((fp_def < fp_npy - 5)) && ok || bad "default preprocessing unexpectedly as good: $fp_def"
echo "FP32 top-1 correct on the folder with the default (imagenet) preprocessing: $fp_def"
"$ADALOG" inspect "$M" | grep -qx "preprocess unknown (default: resize 18, crop 16, bilinear, rgb, mean 0.485,0.456,0.406, std 0.229,0.224,0.225)" &&
  ok || bad "inspect of an ONNX without metadata: $("$ADALOG" inspect "$M" | grep preprocess)"

# --- ONNX metadata: read by inspect and eval (no flags, no warning)
"$ADALOG" inspect "$TMP/digits_meta.onnx" | grep -qx "preprocess resize 16, crop 16, bilinear, rgb, mean 0.3,0.3,0.3, std 0.4,0.4,0.4 (ONNX metadata)" &&
  ok || bad "inspect of an ONNX with metadata: $("$ADALOG" inspect "$TMP/digits_meta.onnx" | grep preprocess)"
meta_dir=$(correct "$TMP/digits_meta.onnx" --data "$TMP/test")
[[ $meta_dir == "$fp_dir" ]] && ! grep -q "preprocess" "$TMP/e.err" && ok || bad "ONNX metadata eval: $meta_dir vs $fp_dir: $(cat "$TMP/e.err")"

# --- W4A4 from the .npy and from the PNG folders (flat, and class subfolders), same flags
"$ADALOG" quantize "$M" --calib "$D/calib.npy" "${Q[@]}" "${PRE[@]}" -o "$TMP/npy.adalog" >"$TMP/q.out" 2>"$TMP/q.err" &&
  grep -q "^preprocess resize 16, crop 16, bilinear, rgb, mean 0.3,0.3,0.3, std 0.4,0.4,0.4 (stored)" "$TMP/q.out" && ok ||
  bad "quantize from .npy: $(cat "$TMP/q.out" "$TMP/q.err")"
"$ADALOG" quantize "$M" --calib "$TMP/calib_flat" "${Q[@]}" "${PRE[@]}" -o "$TMP/flat.adalog" >"$TMP/q.out" 2>"$TMP/q.err" &&
  grep -q "32 images of 32 from" "$TMP/q.out" && ok || bad "quantize from a flat folder: $(cat "$TMP/q.out" "$TMP/q.err")"
"$ADALOG" quantize "$M" --calib "$TMP/calib_cls" "${Q[@]}" "${PRE[@]}" -o "$TMP/cls.adalog" >/dev/null 2>"$TMP/q.err" && ok ||
  bad "quantize from class subfolders: $(cat "$TMP/q.err")"
q_npy=$(correct "$TMP/npy.adalog" --data "$D/test_x.npy" --labels "$D/test_y.npy")
q_flat=$(correct "$TMP/flat.adalog" --data "$D/test_x.npy" --labels "$D/test_y.npy")
q_cls=$(correct "$TMP/cls.adalog" --data "$D/test_x.npy" --labels "$D/test_y.npy")
# The quantized files evaluated on the PNG folder with no flags: the stored preprocessing applies.
q_flat_dir=$(correct "$TMP/flat.adalog" --data "$TMP/test")
! grep -q "preprocess" "$TMP/e.err" && ok || bad "eval with stored preprocessing printed: $(cat "$TMP/e.err")"
q_npy_dir=$(correct "$TMP/npy.adalog" --data "$TMP/test")
q_npy_dir_flags=$(correct "$TMP/npy.adalog" --data "$TMP/test" "${PRE[@]}")
echo "W4A4 top-1 correct of 500: calibrated on .npy $q_npy (folder eval $q_npy_dir), on the flat PNG folder $q_flat" \
  "(folder eval $q_flat_dir), on class subfolders $q_cls"
within_one "$q_npy" "$q_flat" && within_one "$q_npy" "$q_cls" && ok ||
  bad "W4A4 calibrated from PNGs differs from the .npy route by more than one image: $q_npy / $q_flat / $q_cls"
# The folder-calibrated file on the folder with no flags: the .npy's top-1 (the PNGs hold the
# .npy's values rounded to 8 bits, so only that rounding separates the two inputs).
within_one "$q_flat" "$q_flat_dir" && ok || bad "W4A4 folder eval with the stored preprocessing: $q_flat_dir vs $q_flat"
# The .npy-calibrated file stored the flags it was given: no flags on the folder is the same run
# as the explicit flags.
[[ -n $q_npy_dir && $q_npy_dir == "$q_npy_dir_flags" ]] && ok ||
  bad "stored preprocessing of the .npy-calibrated file: $q_npy_dir without flags, $q_npy_dir_flags with"
((q_npy > 450)) && ok || bad "W4A4 top-1 $q_npy: implausibly low, the comparisons above would be vacuous"
"$ADALOG" inspect "$TMP/flat.adalog" | grep -qx "preprocess resize 16, crop 16, bilinear, rgb, mean 0.3,0.3,0.3, std 0.4,0.4,0.4 (stored by quantize)" &&
  ok || bad "inspect of the quantized file: $("$ADALOG" inspect "$TMP/flat.adalog" | grep preprocess)"

# --- flags against the stored preprocessing: agreeing accepted, disagreeing refused unless forced
same=$(correct "$TMP/flat.adalog" --data "$TMP/test" --resize 16 --mean 0.3,0.3,0.3)
[[ $same == "$q_flat_dir" ]] && ok || bad "agreeing flags: $same vs $q_flat_dir: $(cat "$TMP/e.err")"
expect_exit 2 "--mean 0.485,0.456,0.406 disagrees with the preprocessing $TMP/flat.adalog declares: mean 0.485,0.456,0.406 (stored 0.3,0.3,0.3). Pass --force-preprocess" \
  -- eval "$TMP/flat.adalog" --data "$TMP/test" --mean 0.485,0.456,0.406
expect_exit 2 "interpolation bicubic (stored bilinear)" -- eval "$TMP/flat.adalog" --data "$TMP/test" --preprocess timm
expect_exit 2 "std 0.5,0.5,0.5 (stored 0.4,0.4,0.4)" --absent "$TMP/x.adalog" -- \
  quantize "$TMP/digits_meta.onnx" --calib "$TMP/calib_flat" --std 0.5,0.5,0.5 -o "$TMP/x.adalog"
forced=$(correct "$TMP/flat.adalog" --data "$TMP/test" --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --resize 18 --force-preprocess)
grep -q "^adalog: note: --force-preprocess" "$TMP/e.err" && [[ -n $forced ]] && ((forced < q_flat_dir - 5)) && ok ||
  bad "forced preprocessing: $forced vs $q_flat_dir: $(cat "$TMP/e.err")"
echo "W4A4 flat-calibrated file on the folder with forced imagenet preprocessing: $forced"

# --- skipped entries: one stderr line with counts and an example; --strict makes them an error
cp -r "$TMP/test" "$TMP/test_skip"
echo notes >"$TMP/test_skip/3/notes.txt"
echo x >"$TMP/test_skip/3/scan.webp"
skip=$(correct "$TMP/flat.adalog" --data "$TMP/test_skip")
[[ $skip == "$q_flat_dir" ]] && [[ $(grep -c "skipped" "$TMP/e.err") == 1 ]] &&
  grep -qF "$TMP/test_skip: skipped 2 entries: 2 unsupported extension (e.g. '$TMP/test_skip/3/notes.txt')" "$TMP/e.err" &&
  ok || bad "skip summary: $skip: $(cat "$TMP/e.err")"
expect_exit 1 "skipped 2 entries.*strict" --regex -- eval "$TMP/flat.adalog" --data "$TMP/test_skip" --strict
mkdir "$TMP/calib_skip" && cp "$TMP"/calib_flat/*.png "$TMP/calib_skip/" && mkfifo "$TMP/calib_skip/pipe.png"
expect_exit 1 "1 not a regular file (e.g. '$TMP/calib_skip/pipe.png')" --absent "$TMP/x.adalog" -- \
  quantize "$M" --calib "$TMP/calib_skip" "${Q[@]}" "${PRE[@]}" --strict -o "$TMP/x.adalog"
# eval needs labels: a flat folder is refused, saying why.
expect_exit 1 "a flat folder of images has no labels" -- eval "$TMP/flat.adalog" --data "$TMP/calib_flat"

# --- run and bench on folders; .npy inputs refuse the options
"$ADALOG" run "$TMP/flat.adalog" --input "$TMP/calib_flat" --output "$TMP/logits.npy" --threads 1 2>"$TMP/x.err" &&
  "$PY" -c 'import sys,numpy as np; a=np.load(sys.argv[1]); assert a.shape==(32,10) and a.std()>0.1' "$TMP/logits.npy" && ok ||
  bad "run on a flat folder: $(cat "$TMP/x.err")"
"$ADALOG" bench "$TMP/flat.adalog" --data "$TMP/test" --batch 4 --runs 2 --warmup 0 >/dev/null 2>"$TMP/x.err" && ok ||
  bad "bench --data folder: $(cat "$TMP/x.err")"
expect_exit 2 "--mean applies to image folders" -- run "$M" --input "$D/test_x.npy" --output "$TMP/l.npy" --mean 0.3,0.3,0.3

cli_finish "preprocess"
