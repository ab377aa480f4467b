#!/usr/bin/env bash
# Set up ONNX Runtime, build the CLI and embed the multilingual sample texts with the
# bundled tiny test model (random weights: the numbers show the format, not meaning).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup-onnxruntime.sh
cargo build --release --locked -p bge-m3-cli
./target/release/bge-m3 embed --model tests/fixtures/tiny-bge-m3 --input examples/multilingual.txt "$@"
