#!/usr/bin/env bash
# Installs the Node peer (onnxruntime-node, CPU library bundled) into bench/peers/node_modules.
# Idempotent: does nothing when the pinned version is already installed.
# ONNXRUNTIME_NODE_INSTALL=skip stops the package's post-install step from downloading GPU
# binaries (which fails offline and is not needed: the CPU library ships inside the package).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "bench/peers/setup.sh: node and npm are required (apt-get install -y nodejs npm)" >&2
  exit 1
fi

want=$(node -p "require('./package.json').dependencies['onnxruntime-node']")
have=$(node -p "try { require('./node_modules/onnxruntime-node/package.json').version } catch (e) { '' }")
if [[ "$have" == "$want" ]]; then
  echo "onnxruntime-node $have already installed"
  exit 0
fi

ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --loglevel=error
node -e "require('onnxruntime-node')" # fails loudly if the CPU binding cannot load
echo "onnxruntime-node $(node -p "require('./node_modules/onnxruntime-node/package.json').version") installed"
