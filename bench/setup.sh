#!/usr/bin/env bash
# Create bench/.venv with the pinned packages of bench/requirements.txt.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
if [[ ! -x "$HERE/.venv/bin/python" ]]; then
    "$PYTHON" -m venv "$HERE/.venv"
fi
"$HERE/.venv/bin/python" -m pip install --quiet --upgrade pip
"$HERE/.venv/bin/python" -m pip install --quiet -r "$HERE/requirements.txt"
echo "bench/.venv is ready: $HERE/.venv/bin/python" >&2
