#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite with CTest.
# Long tiers are GoogleTest suites named Long* (e.g. the exhaustive float32 sweep of the fast log
# encoder over every q); they are excluded unless ADALOG_LONG_TESTS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD="${ADALOG_BUILD_DIR:-build}"
EXCLUDE=(-E "^Long")
[ "${ADALOG_LONG_TESTS:-0}" = "1" ] && EXCLUDE=()
ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)" "${EXCLUDE[@]}"
