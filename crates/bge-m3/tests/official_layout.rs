//! The `BAAI/bge-m3` layout: a backbone-only `onnx/model.onnx` and float16 `.pt` heads.
//!
//! `tiny-bge-m3-official/onnx/three_outputs.onnx` is FlagEmbedding's own three-output
//! forward with the same float16-rounded heads (see `python/make_official_layout.py`),
//! so both layouts must give the same outputs.

mod common;

use std::path::Path;

use bge_m3::{Embedder, EmbedderOptions, Embedding, Error};
use common::{copy_files, corpus, goldens, max_abs_diff, official_model_dir};

const TOLERANCE: f32 = 1e-5;

/// The official fixture's files, as `(path in the fixture, name in a flat folder)`.
const TOKENIZER_FILES: [(&str, &str); 3] = [
    ("tokenizer.json", "tokenizer.json"),
    ("special_tokens_map.json", "special_tokens_map.json"),
    ("config.json", "config.json"),
];
const HEAD_FILES: [(&str, &str); 2] = [
    ("colbert_linear.pt", "colbert_linear.pt"),
    ("sparse_linear.pt", "sparse_linear.pt"),
];
const EXTERNAL_DATA: [(&str, &str); 2] = [
    ("onnx/model.onnx_data", "model.onnx_data"),
    ("onnx/Constant_95_attr__value", "Constant_95_attr__value"),
];

fn load(dir: &Path, max_length: usize) -> Result<Embedder, Error> {
    Embedder::try_new(dir, EmbedderOptions::new().with_max_length(max_length))
}

/// A flat folder with the three-output comparison graph as `model.onnx`.
fn three_output_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let official = official_model_dir();
    copy_files(
        &official,
        dir.path(),
        &[("onnx/three_outputs.onnx", "model.onnx")],
    );
    copy_files(&official, dir.path(), &EXTERNAL_DATA);
    copy_files(&official, dir.path(), &TOKENIZER_FILES);
    dir
}

/// Largest differences over the corpus, printed for docs/parity.md.
#[derive(Debug, Default)]
struct MaxDiffs {
    dense: f32,
    sparse: f32,
    colbert: f32,
}

fn compare(official: &Embedding, reference: &Embedding, index: usize, diffs: &mut MaxDiffs) {
    assert_eq!(official.tokens, reference.tokens, "tokens of text {index}");
    assert_eq!(
        official.truncated, reference.truncated,
        "truncation of text {index}"
    );

    let dense = max_abs_diff(
        official.dense.as_ref().unwrap(),
        reference.dense.as_ref().unwrap(),
    );
    assert!(
        dense <= TOLERANCE,
        "dense of text {index} differs by {dense}"
    );
    diffs.dense = diffs.dense.max(dense);

    let official_sparse = &official.sparse.as_ref().unwrap().entries;
    let reference_sparse = &reference.sparse.as_ref().unwrap().entries;
    let official_ids: Vec<u32> = official_sparse.iter().map(|entry| entry.0).collect();
    let reference_ids: Vec<u32> = reference_sparse.iter().map(|entry| entry.0).collect();
    assert_eq!(
        official_ids, reference_ids,
        "sparse token ids of text {index}"
    );
    for (a, b) in official_sparse.iter().zip(reference_sparse) {
        let diff = (a.1 - b.1).abs();
        assert!(
            diff <= TOLERANCE,
            "sparse weight of id {} in text {index} differs by {diff}",
            a.0
        );
        diffs.sparse = diffs.sparse.max(diff);
    }

    let official_colbert = official.colbert.as_ref().unwrap();
    let reference_colbert = reference.colbert.as_ref().unwrap();
    assert_eq!(
        official_colbert.dim, reference_colbert.dim,
        "ColBERT size of text {index}"
    );
    assert_eq!(
        official_colbert.rows(),
        reference_colbert.rows(),
        "ColBERT rows of text {index}"
    );
    let colbert = max_abs_diff(&official_colbert.data, &reference_colbert.data);
    assert!(
        colbert <= TOLERANCE,
        "ColBERT of text {index} differs by {colbert}"
    );
    diffs.colbert = diffs.colbert.max(colbert);
}

fn check_layouts_agree(max_length: usize) {
    let texts = corpus();
    assert!(texts.len() >= 40, "the corpus has at least 40 texts");
    let official = load(&official_model_dir(), max_length)
        .unwrap()
        .embed(&texts)
        .unwrap();
    let reference_dir = three_output_folder();
    let reference = load(reference_dir.path(), max_length)
        .unwrap()
        .embed(&texts)
        .unwrap();
    assert_eq!(official.len(), texts.len());
    assert_eq!(reference.len(), texts.len());

    let mut diffs = MaxDiffs::default();
    for (index, (official, reference)) in official.iter().zip(&reference).enumerate() {
        compare(official, reference, index, &mut diffs);
    }
    eprintln!(
        "max length {max_length}: {} texts, official vs three-output layout {diffs:?}",
        texts.len()
    );
}

#[test]
fn layouts_agree_at_max_length_8192() {
    check_layouts_agree(8192);
}

#[test]
fn layouts_agree_at_max_length_16() {
    check_layouts_agree(16);
}

/// The dense vector does not use the heads, so the float16 heads leave it equal to
/// FlagEmbedding's output for the float32 model.
#[test]
fn official_dense_matches_goldens() {
    let texts = corpus();
    let embeddings = load(&official_model_dir(), 8192)
        .unwrap()
        .embed(&texts)
        .unwrap();
    let mut worst = 0.0f32;
    for (embedding, golden) in embeddings.iter().zip(goldens(8192)) {
        assert_eq!(
            embedding.tokens,
            golden.input_ids.len(),
            "tokens of text {}",
            golden.index
        );
        let diff = max_abs_diff(embedding.dense.as_ref().unwrap(), &golden.dense());
        assert!(
            diff <= TOLERANCE,
            "dense of text {} differs by {diff}",
            golden.index
        );
        worst = worst.max(diff);
    }
    eprintln!("official layout dense vs FlagEmbedding goldens: {worst}");
}

/// `model.onnx` backbone-only in the folder root, with the heads beside it.
#[test]
fn heads_beside_root_graph_load() {
    let dir = tempfile::tempdir().unwrap();
    let official = official_model_dir();
    copy_files(&official, dir.path(), &[("onnx/model.onnx", "model.onnx")]);
    copy_files(&official, dir.path(), &EXTERNAL_DATA);
    copy_files(&official, dir.path(), &HEAD_FILES);
    copy_files(&official, dir.path(), &TOKENIZER_FILES);

    let texts = ["A test text!", "Текст для теста!", ""];
    let flat = load(dir.path(), 8192).unwrap().embed(&texts).unwrap();
    let nested = load(&official, 8192).unwrap().embed(&texts).unwrap();
    assert_eq!(flat, nested);
}

#[test]
fn folder_matching_neither_layout_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let official = official_model_dir();
    copy_files(&official, dir.path(), &HEAD_FILES);
    copy_files(&official, dir.path(), &TOKENIZER_FILES);
    // A graph one level too deep matches neither layout.
    copy_files(
        &official,
        dir.path(),
        &[("onnx/model.onnx", "models/onnx/model.onnx")],
    );

    let error = load(dir.path(), 8192).unwrap_err();
    assert!(matches!(error, Error::UnknownLayout { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("neither model.onnx nor onnx/model.onnx"),
        "{message}"
    );
    assert!(message.contains("colbert_linear.pt"), "{message}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
}

fn copy_official_without(missing: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let official = official_model_dir();
    let all = [
        "onnx/model.onnx",
        "onnx/model.onnx_data",
        "onnx/Constant_95_attr__value",
        "colbert_linear.pt",
        "sparse_linear.pt",
        "tokenizer.json",
        "special_tokens_map.json",
        "config.json",
    ];
    let kept: Vec<(&str, &str)> = all
        .iter()
        .filter(|name| **name != missing)
        .map(|name| (*name, *name))
        .collect();
    copy_files(&official, dir.path(), &kept);
    dir
}

fn expect_missing_file(missing: &str) {
    let dir = copy_official_without(missing);
    let error = load(dir.path(), 8192).unwrap_err();
    assert!(
        matches!(&error, Error::ModelFileMissing { file, .. } if file == missing),
        "{error:?}"
    );
    assert!(error.to_string().contains(missing), "{error}");
}

#[test]
fn missing_sparse_head_is_named() {
    expect_missing_file("sparse_linear.pt");
}

#[test]
fn missing_colbert_head_is_named() {
    expect_missing_file("colbert_linear.pt");
}

#[test]
fn missing_constant_data_is_named() {
    expect_missing_file("onnx/Constant_95_attr__value");
}

#[test]
fn missing_weights_data_is_named() {
    expect_missing_file("onnx/model.onnx_data");
}

/// A root backbone graph with only one head file cannot run.
#[test]
fn root_backbone_with_one_head_lists_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let official = official_model_dir();
    copy_files(&official, dir.path(), &[("onnx/model.onnx", "model.onnx")]);
    copy_files(&official, dir.path(), &EXTERNAL_DATA);
    copy_files(
        &official,
        dir.path(),
        &[("colbert_linear.pt", "colbert_linear.pt")],
    );
    copy_files(&official, dir.path(), &TOKENIZER_FILES);

    let error = load(dir.path(), 8192).unwrap_err();
    assert!(
        matches!(error, Error::UnexpectedOutputs { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("token_embeddings"), "{message}");
    assert!(message.contains("sparse_linear.pt"), "{message}");
}

#[test]
fn corrupt_head_file_is_named() {
    let dir = copy_official_without("sparse_linear.pt");
    std::fs::write(dir.path().join("sparse_linear.pt"), b"not a zip archive").unwrap();
    let error = load(dir.path(), 8192).unwrap_err();
    assert!(matches!(error, Error::TorchArchive { .. }), "{error:?}");
    assert!(error.to_string().contains("sparse_linear.pt"), "{error}");
}
