#!/usr/bin/env bash
# Create python/.venv-test with the packages of python/requirements-test.txt, used by
# the tests that run tokenizer.onnx with the Python onnxruntime.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/python/.venv-test"
REQUIREMENTS="$ROOT/python/requirements-test.txt"
STAMP="$VENV/requirements.stamp"

if [[ -f "$STAMP" ]] && cmp -s "$STAMP" "$REQUIREMENTS"; then
    exit 0
fi
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet -r "$REQUIREMENTS"
cp "$REQUIREMENTS" "$STAMP"
echo "installed the test packages into $VENV" >&2
