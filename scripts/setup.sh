#!/usr/bin/env bash
# Installs the Debian packages adalog needs (only the missing ones, one apt-get update), then
# configures and builds into ./build (Release). Idempotent; safe to run again.
#   scripts/setup.sh            install + build
#   ADALOG_BUILD_DIR=dir scripts/setup.sh   build elsewhere
#   ADALOG_SKIP_BUILD=1 scripts/setup.sh    install only
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config bc
      libdnnl-dev ocl-icd-opencl-dev libeigen3-dev
      libonnx-dev libprotobuf-dev protobuf-compiler
      libgtest-dev libbenchmark-dev libstb-dev libjpeg62-turbo-dev libpng-dev
      nlohmann-json3-dev
      python3 python3-torch python3-torchvision python3-onnx python3-numpy python3-sklearn python3-matplotlib
      python3-dev pybind11-dev python3-pytest
      libopenblas0-pthread clang libclang-rt-14-dev)

missing=()
# Node.js (for the ONNX Runtime peer in bench/peers) usually ships with the machine.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs npm)
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "[setup] all apt packages present"
fi

[ "${ADALOG_SKIP_BUILD:-0}" = "1" ] && exit 0
BUILD="${ADALOG_BUILD_DIR:-build}"
JOBS="${ADALOG_JOBS:-$(nproc)}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release ${ADALOG_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD" -j "$JOBS"
echo "[setup] built into $BUILD"
