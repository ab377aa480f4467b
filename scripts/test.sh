#!/usr/bin/env bash
# Set up ONNX Runtime and the openai client, then run every test of the workspace.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup-onnxruntime.sh
bash scripts/setup-test-venv.sh
bash scripts/setup-openai-client.sh
cargo test --workspace --locked
