# Shared preamble of the ONNX Runtime peer tests (ort_int8.sh, ort_qdq.sh): sourced after ROOT is
# set. Sets PY, PEERS, D (the digits model folder) and TMP (removed on exit), and exits 77 (CTest
# SKIP_RETURN_CODE) naming what is missing when node, onnxruntime-node (bench/peers/setup.sh) or
# /usr/bin/python3 with onnx + numpy is absent.
PY=/usr/bin/python3
PEERS=$ROOT/bench/peers
if ! command -v node >/dev/null; then
  echo "SKIP: node is not installed (apt-get install -y nodejs npm; then bench/peers/setup.sh)"; exit 77
fi
if [ ! -d "$PEERS/node_modules/onnxruntime-node" ]; then
  echo "SKIP: onnxruntime-node is not installed in bench/peers/node_modules (run bench/peers/setup.sh)"; exit 77
fi
if ! "$PY" -c "import onnx, numpy" 2>/dev/null; then
  echo "SKIP: $PY lacks the onnx or numpy package"; exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
D=$ROOT/models/digits
