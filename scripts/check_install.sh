#!/usr/bin/env bash
# Installs the built tree into a temporary prefix, then configures, builds and runs
# examples/cpp_consumer against that prefix only (CMAKE_PREFIX_PATH = the prefix; nothing from the
# source or build tree is on its paths), linked to the shared library and to the static one.
#   scripts/check_install.sh [BUILD_DIR]     (default: $ADALOG_BUILD_DIR or build)
# Needs the build dir configured and built (scripts/setup.sh); builds the package targets if not.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="$PWD"
BUILD="${1:-${ADALOG_BUILD_DIR:-build}}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
PREFIX="$WORK/prefix"
# The example is copied out of the source tree, so it cannot reach the project's headers by path.
cp -r "$SRC/examples/cpp_consumer" "$WORK/src"

cmake --build "$BUILD" -j "${ADALOG_JOBS:-$(nproc)}" --target adalog_shared adalog_static adalog >/dev/null
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
for f in include/adalog/adalog.h include/adalog/error.h lib/libadalog.a lib/cmake/adalog/adalogConfig.cmake \
         lib/cmake/adalog/adalogConfigVersion.cmake bin/adalog; do
  [ -e "$PREFIX/$f" ] || { echo "check_install: $f not installed" >&2; exit 1; }
done
ls "$PREFIX"/lib/libadalog.so.0 >/dev/null
"$PREFIX/bin/adalog" --version >/dev/null

MODEL="$SRC/models/int_test/digits_w4a4.adq"
for kind in shared static; do
  static=OFF
  [ "$kind" = static ] && static=ON
  cmake -S "$WORK/src" -B "$WORK/build-$kind" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$PREFIX" -DADALOG_EXAMPLE_STATIC=$static >/dev/null
  cmake --build "$WORK/build-$kind" >/dev/null
  if [ "$kind" = shared ]; then
    # The app must load the installed library (found through the imported target's RPATH).
    ldd "$WORK/build-$kind/app" | grep -q "$PREFIX/lib/libadalog.so.0" || {
      echo "check_install: app does not load $PREFIX/lib/libadalog.so.0" >&2; exit 1; }
  fi
  "$WORK/build-$kind/app" "$MODEL" 4
  "$WORK/build-$kind/app" "$SRC/models/digits/digits_vit.onnx" 4
done
echo "check_install: OK (shared and static consumers of $PREFIX)"
