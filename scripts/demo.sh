#!/usr/bin/env bash
# Sets up, then runs the main job end-to-end on the shipped digits ViT.
# (The full pipeline - AdaLog W4A4 quantization, FP32 vs quantized top-1 and latency - lands with
#  issues 4 and 5; until then this runs what exists.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD="${ADALOG_BUILD_DIR:-build}"
"$BUILD/cli/adalog"
