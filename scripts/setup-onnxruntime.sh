#!/usr/bin/env bash
# Install the ONNX Runtime shared library into .ort/lib/ of this checkout.
#
# The library comes from the PyPI `onnxruntime` wheel (CPU build); only the wheel is
# downloaded, nothing is installed into any Python environment. The engine finds
# .ort/lib/libonnxruntime.so by itself; ORT_DYLIB_PATH overrides it.
set -euo pipefail

VERSION="${ONNXRUNTIME_VERSION:-1.32.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB_DIR="$ROOT/.ort/lib"
STAMP="$LIB_DIR/VERSION"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" && -e "$LIB_DIR/libonnxruntime.so" ]]; then
    echo "ONNX Runtime $VERSION is already in $LIB_DIR" >&2
    exit 0
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    echo "error: $PYTHON -m pip is not available; install Python 3 with pip, or set PYTHON" >&2
    exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "downloading the onnxruntime $VERSION wheel from PyPI" >&2
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$WORK" "onnxruntime==$VERSION"

WHEEL="$(ls "$WORK"/onnxruntime-*.whl)"
"$PYTHON" - "$WHEEL" "$WORK/extract" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in wheel.namelist():
        if name.startswith("onnxruntime/capi/libonnxruntime"):
            wheel.extract(name, sys.argv[2])
PY

mkdir -p "$LIB_DIR"
rm -f "$LIB_DIR"/libonnxruntime*
cp "$WORK"/extract/onnxruntime/capi/libonnxruntime* "$LIB_DIR"/
MAIN_LIB="$(cd "$LIB_DIR" && ls libonnxruntime.so.* | head -n 1)"
ln -sf "$MAIN_LIB" "$LIB_DIR/libonnxruntime.so"
echo "$VERSION" > "$STAMP"
echo "installed ONNX Runtime $VERSION into $LIB_DIR" >&2
