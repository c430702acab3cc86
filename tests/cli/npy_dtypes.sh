#!/usr/bin/env bash
# float64 and float16 .npy inputs are converted to float32 (runtime/data/npy.h): the same images
# stored as float16, float32 and float64 give byte-identical logits from `adalog run` and the same
# `eval` result; a float64 value outside float32's range gives one warning line and then the same
# refusal as an infinite float32 value; NaN is refused as in float32 input; big-endian data and
# Fortran order stay clear errors.
#   bash tests/cli/npy_dtypes.sh <path-to-adalog> <repo-root>
# Needs /usr/bin/python3 with numpy (it writes every file with np.save).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_init npy_dtypes.sh "$@"
M=$ROOT/models/tiny/tiny_timm_op17_dyn.onnx

"$PY" - "$TMP" <<'PYEOF' || { echo "FAIL: numpy"; exit 1; }
import sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(5)
# float16-representable values, so that all three dtypes hold exactly the same numbers.
x16 = rng.standard_normal((6, 3, 32, 32)).astype(np.float16)
assert np.unique(x16).size > 1000  # not a degenerate input
np.save(f"{d}/x16.npy", x16)
np.save(f"{d}/x32.npy", x16.astype(np.float32))
np.save(f"{d}/x64.npy", x16.astype(np.float64))
np.save(f"{d}/y.npy", np.arange(6, dtype=np.int64) % 10)
big = x16.astype(np.float64)
big[2, 1, 3, 4] = 1e39   # beyond float32's range
big[4, 0, 0, 0] = -1e300
np.save(f"{d}/x64_big.npy", big)
inf32 = x16.astype(np.float32)
inf32[2, 1, 3, 4] = np.inf
np.save(f"{d}/x32_inf.npy", inf32)
nan64 = x16.astype(np.float64)
nan64[1, 2, 3, 4] = np.nan
np.save(f"{d}/x64_nan.npy", nan64)
nan32 = x16.astype(np.float32)
nan32[1, 2, 3, 4] = np.nan
np.save(f"{d}/x32_nan.npy", nan32)
np.save(f"{d}/x64_be.npy", x16.astype(">f8"))
np.save(f"{d}/x64_fortran.npy", np.asfortranarray(x16.astype(np.float64)))
assert np.load(f"{d}/x64_fortran.npy").flags.f_contiguous
PYEOF

T=(--threads 1)
for t in 16 32 64; do
  "$ADALOG" run "$M" --input "$TMP/x$t.npy" --output "$TMP/l$t.npy" "${T[@]}" 2>"$TMP/e$t.txt" && ok ||
    bad "run on float$t input: $(cat "$TMP/e$t.txt")"
  grep -q "warning" "$TMP/e$t.txt" && bad "float$t input: unexpected warning: $(cat "$TMP/e$t.txt")" || ok
done
cmp "$TMP/l32.npy" "$TMP/l64.npy" && ok || bad "float64 input gives different logits from the same float32 values"
cmp "$TMP/l32.npy" "$TMP/l16.npy" && ok || bad "float16 input gives different logits from the same float32 values"
"$PY" -c 'import sys,numpy as np; a=np.load(sys.argv[1]); assert a.shape==(6,10) and np.isfinite(a).all() and a.std()>1e-3' \
  "$TMP/l32.npy" && ok || bad "logits degenerate"
e32=$("$ADALOG" eval "$M" --data "$TMP/x32.npy" --labels "$TMP/y.npy" --json "${T[@]}" 2>&1 | sed 's/"seconds":[^,}]*//; s/x32/X/g')
e64=$("$ADALOG" eval "$M" --data "$TMP/x64.npy" --labels "$TMP/y.npy" --json "${T[@]}" 2>&1 | sed 's/"seconds":[^,}]*//; s/x64/X/g')
[[ $e32 == "$e64" && $e32 == *'"images":6'* ]] && ok || bad "eval float32 vs float64: $e32 / $e64"

# expect_err FILE WANT [NOT_WANT]: run exits 1 with WANT on stderr.
expect_err() {
  expect_exit 1 "$2" --absent "$TMP/out.npy" -- run "$M" --input "$TMP/$1" --output "$TMP/out.npy" "${T[@]}"
}
# Overflow: one warning line (count and first index), then the refusal float32 inf gets.
expect_err x64_big.npy "x64_big.npy: 2 float64 values outside float32's range became infinite when converted to float32 (the first at flat index"
[[ $(grep -c "warning" "$TMP/cli.err") == 1 ]] && ok || bad "want exactly one warning line: $(cat "$TMP/cli.err")"
expect_err x64_big.npy "input: element [2,1,3,4] is infinite"
expect_err x32_inf.npy "input: element [2,1,3,4] is infinite"
# NaN: refused as in float32 input, with no overflow warning.
expect_err x64_nan.npy "input: element [1,2,3,4] is NaN"
grep -q "warning" "$TMP/cli.err" && bad "NaN gave an overflow warning" || ok
expect_err x32_nan.npy "input: element [1,2,3,4] is NaN"
expect_err x64_be.npy "unsupported npy dtype '>f8' (expected little-endian"
expect_err x64_fortran.npy "fortran_order True not supported (need C order)"

cli_finish "cli npy dtypes"
