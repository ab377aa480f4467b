//! `tokenizer.onnx` (onnxruntime-extensions) against the engine's tokenizer.
//!
//! Runs `python/tokenizer_onnx_ids.py` with the test virtual environment that
//! `scripts/setup-test-venv.sh` makes, and compares its ids with the engine's for
//! every text of the golden corpus. The texts where they differ are listed with the
//! reason in docs/parity.md; this test fails if that list goes stale either way.

mod common;

use std::path::PathBuf;
use std::process::Command;

use bge_m3::{Embedder, EmbedderOptions};
use common::{corpus, fixtures_dir, tiny_model_dir};
use serde::Deserialize;

/// Corpus texts whose ids differ, by index, with the reason.
const KNOWN_DIFFERENCES: [(usize, &str); 10] = [
    (
        2,
        "whitespace only: SentencePiece drops it, tokenizer.json keeps one ▁",
    ),
    (3, "whitespace only"),
    (4, "whitespace only (newlines)"),
    (7, "U+0000 ends the text for the custom operator"),
    (
        17,
        "trailing newline: SentencePiece drops trailing whitespace",
    ),
    (21, "trailing space"),
    (
        22,
        "literal <s> </s> <pad> <unk> are plain text for SentencePiece",
    ),
    (23, "literal special tokens"),
    (24, "literal special tokens"),
    (25, "trailing spaces"),
];

#[derive(Deserialize)]
struct Ids {
    index: usize,
    ids: Vec<u32>,
}

fn test_python() -> PathBuf {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../python/.venv-test/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `bash scripts/setup-test-venv.sh`",
        python.display()
    );
    python
}

fn tokenizer_onnx_ids() -> Vec<Ids> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../python/tokenizer_onnx_ids.py");
    let output = Command::new(test_python())
        .arg(script)
        .arg(tiny_model_dir().join("tokenizer.onnx"))
        .arg(fixtures_dir().join("goldens/corpus.jsonl"))
        .output()
        .expect("python starts");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn tokenizer_onnx_ids_equal_engine_ids() {
    let texts = corpus();
    let onnx_ids = tokenizer_onnx_ids();
    assert_eq!(onnx_ids.len(), texts.len());
    let embedder = Embedder::try_new(tiny_model_dir(), EmbedderOptions::new()).unwrap();
    let tokenizer = embedder.tokenizer();

    for (text, onnx) in texts.iter().zip(&onnx_ids) {
        // tokenizer.onnx does not truncate, so compare with untruncated ids.
        let engine = tokenizer.encode(text, usize::MAX, onnx.index).unwrap().ids;
        let known = KNOWN_DIFFERENCES
            .iter()
            .find(|(index, _)| *index == onnx.index);
        match known {
            None => assert_eq!(onnx.ids, engine, "ids of text {} {text:?}", onnx.index),
            Some((index, reason)) => {
                assert_ne!(
                    onnx.ids, engine,
                    "text {index} {text:?} now matches; was: {reason}"
                )
            }
        }
    }
}
