#!/usr/bin/env bash
# Create python/.venv with the pinned reference environment (PyTorch, FlagEmbedding
# 1.4.2, transformers 4.57, onnx, onnxruntime), and python/.converter with
# transformers 4.36.2 and tokenizers 0.15.2, whose converter writes tokenizer.json in
# the layout of the published BGE-M3 file. Needed only to export models and to
# remake the test fixtures; the Rust build and tests do not use Python.
#
# PyTorch from PyPI pulls the CUDA wheels (several GB), unused on CPU.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"

"$PYTHON" -m venv "$HERE/.venv"
# One resolve for everything: installing transformers 4.57 after a transformers 5
# install leaves huggingface-hub 1.x behind, which breaks `import FlagEmbedding`.
"$HERE/.venv/bin/pip" install --quiet -r "$HERE/requirements.txt"
"$HERE/.venv/bin/pip" uninstall --quiet --yes kernels 2>/dev/null || true
"$HERE/.venv/bin/pip" check

"$HERE/.venv/bin/pip" install --quiet --no-deps --target "$HERE/.converter" \
    transformers==4.36.2 tokenizers==0.15.2
echo "ready: $HERE/.venv/bin/python python/make_test_model.py" >&2
