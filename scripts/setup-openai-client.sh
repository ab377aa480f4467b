#!/usr/bin/env bash
# Create .venv-openai/ with the official `openai` Python client, which the server
# test `openai_client` drives against a local server. Only `openai` and its own
# dependencies are installed; no PyTorch.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-openai"
OPENAI_VERSION="${OPENAI_VERSION:-3.60.0}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION')" 2>/dev/null; then
    echo "openai $OPENAI_VERSION is already in $VENV"
    exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "openai==$OPENAI_VERSION"
echo "installed openai $OPENAI_VERSION into $VENV"
