#!/usr/bin/env bash
# No `adalog` command loses a file: an output that is an input under another name (./x, a hard
# link, a symbolic link) is refused with exit 2 and the input left byte for byte; an existing
# output that is not a regular file (FIFO, directory, a link to a device) is refused with exit 1
# before any long work and left as it was; a failed write names the user's output path (never the
# temporary file) and leaves no file behind.
#   bash tests/cli/file_safety.sh <path-to-adalog> <repo-root>
# Needs /usr/bin/python3 with numpy and mkfifo; safe as root or not (nothing outside a temp dir).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cli_init file_safety.sh "$@"  # ADALOG absolute: the commands run from $TMP

# A copy of the tiny model, never the repository's file: a failing guard must not damage it.
cp "$ROOT/models/tiny/tiny_timm_op17_dyn.onnx" "$TMP/tiny.onnx" || { echo "FAIL: no tiny model"; exit 1; }
"$PY" - "$TMP" <<'PYEOF'
import sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(11)
np.save(f"{d}/x.npy", rng.standard_normal((4, 3, 32, 32)).astype(np.float32))
np.save(f"{d}/calib.npy", rng.standard_normal((8, 3, 32, 32)).astype(np.float32))
PYEOF
cd "$TMP" || exit 1
mkdir keep && cp tiny.onnx x.npy calib.npy keep/
T=(--threads 1)
Q=(quantize tiny.onnx --calib calib.npy --calib-size 8 "${T[@]}")

# expect RC WANT_TEXT -- ARGS...: exit code, a fixed string on stderr, no temporary/probe files left,
# and no "quantizing" line (nothing long started).
expect() {
  local want_rc=$1 want=$2
  shift 3
  expect_exit "$want_rc" "$want" --timeout 120 --no-temps . --not "quantizing" -- "$@"
}
# unchanged: every input still equals its copy in keep/.
unchanged() {
  for f in tiny.onnx x.npy calib.npy; do
    cmp -s "$f" "keep/$f" && [[ -f $f && ! -L $f ]] && ok || bad "$*: input $f was modified or replaced"
  done
}

# --- the output is an input under another name: usage error (exit 2), inputs untouched
expect 2 "--output ./x.npy is the same file as --input x.npy" -- run tiny.onnx --input x.npy --output ./x.npy "${T[@]}"
unchanged "run --output ./x.npy"
expect 2 "is the same file as --input" -- run tiny.onnx --input x.npy --output "$TMP/x.npy" "${T[@]}"
ln x.npy hard_x.npy
expect 2 "--output hard_x.npy is the same file as --input x.npy" -- run tiny.onnx --input x.npy --output hard_x.npy "${T[@]}"
ln -s x.npy sym_x.npy
expect 2 "--output sym_x.npy is the same file as --input x.npy" -- run tiny.onnx --input x.npy --output sym_x.npy "${T[@]}"
expect 2 "--output ./tiny.onnx is the same file as MODEL 'tiny.onnx'" -- run tiny.onnx --input x.npy --output ./tiny.onnx "${T[@]}"
unchanged "run --output hard link / symlink / model"
expect 2 "-o ./tiny.onnx is the same file as MODEL 'tiny.onnx'" -- "${Q[@]}" -o ./tiny.onnx
ln -s tiny.onnx sym_model.adalog
expect 2 "-o sym_model.adalog is the same file as MODEL 'tiny.onnx'" -- "${Q[@]}" -o sym_model.adalog
ln calib.npy hard_calib.adalog
expect 2 "-o hard_calib.adalog is the same file as --calib calib.npy" -- "${Q[@]}" -o hard_calib.adalog
expect 2 "-o ./calib.npy is the same file as --calib calib.npy" -- "${Q[@]}" -o ./calib.npy
unchanged "quantize -o an input"
[[ -L sym_model.adalog && -L sym_x.npy ]] && ok || bad "a symbolic link given as output was replaced"

# --- existing outputs that are not regular files: exit 1 before any work, left as they were
mkfifo fifo.npy fifo.adalog
expect 1 "output 'fifo.npy' exists and is a FIFO (named pipe), not a regular file" -- \
  run tiny.onnx --input x.npy --output fifo.npy "${T[@]}"
expect 1 "output 'fifo.adalog' exists and is a FIFO (named pipe), not a regular file" -- "${Q[@]}" -o fifo.adalog
[[ -p fifo.npy && -p fifo.adalog ]] && ok || bad "a FIFO given as output was replaced"
mkdir outdir
expect 1 "output 'outdir' exists and is a directory" -- run tiny.onnx --input x.npy --output outdir "${T[@]}"
expect 1 "output 'outdir' exists and is a directory" -- "${Q[@]}" -o outdir
[[ -d outdir && -z $(ls -A outdir) ]] && ok || bad "the directory given as output changed"
ln -s /dev/null null_link.npy  # a device reached through a link: refused without writing to it
expect 1 "output 'null_link.npy' exists and is a character device" -- run tiny.onnx --input x.npy --output null_link.npy "${T[@]}"
[[ -L null_link.npy && -c /dev/null ]] && ok || bad "the link to /dev/null was replaced"
# --- an input model that is a directory: exit 1 naming it (was "empty file" or an internal error)
expect 1 "cannot read ONNX file 'outdir' (a directory or not a regular file)" -- inspect outdir
expect 1 "output 'nodir/y.npy': directory 'nodir' does not exist" -- run tiny.onnx --input x.npy --output nodir/y.npy "${T[@]}"

# --- a write that fails (file size limit 0: EFBIG) names the user's output, never the temporary
# file, and leaves neither; an existing output is kept as it was.
for cmd in run quantize; do
  if [[ $cmd == run ]]; then args=(run tiny.onnx --input x.npy --output big.out "${T[@]}"); else args=("${Q[@]}" -o big.out); fi
  echo previous >big.out
  # stderr through a pipe: the size limit applies to files the limited process writes.
  (ulimit -f 0; trap '' XFSZ; exec "$ADALOG" "${args[@]}") 2>&1 >/dev/null </dev/null | cat >err.txt
  rc=${PIPESTATUS[0]}
  left=$(temps_in .)
  if [[ $rc == 1 ]] && grep -qF "'big.out': write failed" err.txt && ! grep -q "\.tmp\." err.txt && [[ $left == 0 ]] &&
      [[ $(cat big.out) == previous ]]; then
    ok
  else
    bad "$cmd with a failing write: rc $rc, stderr: $(cat err.txt), temporary files: $left, big.out: $(head -c 20 big.out)"
  fi
done

# --- the guards refuse nothing legitimate: a fresh output and replacing an existing regular file
"$ADALOG" run tiny.onnx --input x.npy --output y.npy "${T[@]}" 2>err.txt && [[ -f y.npy ]] && ok ||
  bad "run to a fresh output: $(cat err.txt)"
cp y.npy y_first.npy
"$ADALOG" run tiny.onnx --input x.npy --output y.npy "${T[@]}" 2>err.txt && cmp -s y.npy y_first.npy && ok ||
  bad "run over an existing regular output: $(cat err.txt)"
unchanged "the successful runs"

cli_finish "cli file safety"
