#!/usr/bin/env bash
# `cmake --install` puts the adalog module under <prefix>/lib/python3/dist-packages, and python
# imports it from there (and not from the build tree) and runs a model with it.
#   bash python/tests/install_test.sh <build-dir> <python3>
set -euo pipefail
BUILD=${1:?usage: install_test.sh <build-dir> <python3>}
PY=${2:?usage: install_test.sh <build-dir> <python3>}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cmake --install "$BUILD" --prefix "$TMP/prefix" --component python >/dev/null
SITE=$TMP/prefix/lib/python3/dist-packages
ls "$SITE"/adalog*.so >/dev/null
cd "$TMP"
env -u PYTHONPATH PYTHONPATH="$SITE" "$PY" - "$SITE" "$ROOT" <<'PYEOF'
import os, sys
import numpy as np
site, root = sys.argv[1:3]
import adalog
assert os.path.dirname(adalog.__file__) == site, adalog.__file__
x = np.load(os.path.join(root, "models/digits/digits_vit.input.npy"))
ref = np.load(os.path.join(root, "models/digits/digits_vit.output.npy"))
y = adalog.Session(os.path.join(root, "models/digits/digits_vit.onnx"), threads=1).run(x)
assert y.shape == ref.shape and np.allclose(y, ref, rtol=1e-4, atol=1e-4), np.abs(y - ref).max()
print("installed module OK:", adalog.__file__)
PYEOF
