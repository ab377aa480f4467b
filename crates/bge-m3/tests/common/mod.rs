//! Fixture paths and golden records shared by the integration tests.
//!
//! The fixtures are made by `python/make_test_model.py` (see tests/fixtures/README.md).
#![allow(dead_code)]

pub mod mock_hub;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

/// Returns `tests/fixtures` of the workspace.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// Returns the tiny random-weight model folder.
pub fn tiny_model_dir() -> PathBuf {
    let dir = fixtures_dir().join("tiny-bge-m3");
    assert!(
        dir.join("model.onnx").is_file(),
        "{} is missing: run `python python/make_test_model.py`",
        dir.display()
    );
    dir
}

/// Returns the tiny model exported with the standard attention operators.
pub fn tiny_standard_model_dir() -> PathBuf {
    fixtures_dir().join("tiny-bge-m3-standard")
}

/// Returns the tiny model in the layout of the `BAAI/bge-m3` repository.
pub fn official_model_dir() -> PathBuf {
    let dir = fixtures_dir().join("tiny-bge-m3-official");
    assert!(
        dir.join("onnx/model.onnx").is_file(),
        "{} is missing: run `python python/make_official_layout.py`",
        dir.display()
    );
    dir
}

/// Copies files into `target`, each given as (path under `from`, path under `target`).
pub fn copy_files(from: &Path, target: &Path, files: &[(&str, &str)]) {
    for (source, name) in files {
        let destination = target.join(name);
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::copy(from.join(source), &destination)
            .unwrap_or_else(|e| panic!("copy {source} to {}: {e}", destination.display()));
    }
}

/// One text's outputs from FlagEmbedding.
#[derive(Debug, Deserialize)]
pub struct Golden {
    pub index: usize,
    pub input_ids: Vec<u32>,
    pub truncated: bool,
    dense: String,
    pub sparse: BTreeMap<String, f32>,
    pub colbert_rows: usize,
    colbert: String,
}

impl Golden {
    pub fn dense(&self) -> Vec<f32> {
        decode_floats(&self.dense)
    }

    pub fn colbert(&self) -> Vec<f32> {
        decode_floats(&self.colbert)
    }
}

fn decode_floats(text: &str) -> Vec<f32> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("golden float array is valid base64");
    bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap()))
        .collect()
}

/// Returns the golden corpus texts, in order.
pub fn corpus() -> Vec<String> {
    #[derive(Deserialize)]
    struct Record {
        text: String,
    }
    read_jsonl::<Record>("corpus.jsonl")
        .into_iter()
        .map(|r| r.text)
        .collect()
}

/// Returns the goldens recorded at a max length (8192 or 16).
pub fn goldens(max_length: usize) -> Vec<Golden> {
    read_jsonl(&format!("max_length_{max_length}.jsonl"))
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    let path = fixtures_dir().join("goldens").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `python python/make_test_model.py`",
            path.display()
        )
    });
    text.split('\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_str(line).expect("golden line is valid JSON"))
        .collect()
}

/// Returns the largest absolute difference of two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
