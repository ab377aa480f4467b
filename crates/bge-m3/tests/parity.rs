//! Parity with FlagEmbedding 1.4.2 on the golden corpus of the tiny test model.

mod common;

use bge_m3::{Embedder, EmbedderOptions, Embedding};
use std::path::Path;

use bge_m3::Attention;
use common::{corpus, goldens, max_abs_diff, tiny_model_dir, tiny_standard_model_dir, Golden};

const TOLERANCE: f32 = 1e-5;

fn embed_corpus(model_dir: &Path, max_length: usize) -> Vec<Embedding> {
    let options = EmbedderOptions::new().with_max_length(max_length);
    let embedder = Embedder::try_new(model_dir, options).unwrap();
    let texts = corpus();
    let tokenizer = embedder.tokenizer();
    for (index, (text, golden)) in texts.iter().zip(goldens(max_length)).enumerate() {
        let ids = tokenizer.encode(text, max_length, index).unwrap().ids;
        assert_eq!(ids, golden.input_ids, "token ids of text {index} {text:?}");
    }
    embedder.embed(&texts).unwrap()
}

/// Largest differences over the corpus, printed for docs/parity.md.
#[derive(Debug, Default)]
struct MaxDiffs {
    dense: f32,
    sparse: f32,
    colbert: f32,
}

fn check_text(embedding: &Embedding, golden: &Golden, text: &str, diffs: &mut MaxDiffs) {
    let index = golden.index;
    assert_eq!(
        embedding.tokens,
        golden.input_ids.len(),
        "token count of text {index}"
    );
    assert_eq!(
        embedding.truncated, golden.truncated,
        "truncation flag of text {index}"
    );

    let dense = embedding.dense.as_ref().unwrap();
    let dense_diff = max_abs_diff(dense, &golden.dense());
    assert!(
        dense_diff <= TOLERANCE,
        "dense of text {index} {text:?} differs by {dense_diff}"
    );
    diffs.dense = diffs.dense.max(dense_diff);

    let sparse = embedding.sparse.as_ref().unwrap();
    let ids: Vec<String> = sparse
        .entries
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    let golden_ids: Vec<String> = golden.sparse.keys().cloned().collect();
    let mut ids_sorted = ids.clone();
    ids_sorted.sort();
    assert_eq!(
        ids_sorted, golden_ids,
        "sparse token ids of text {index} {text:?}"
    );
    for (id, weight) in &sparse.entries {
        let expected = golden.sparse[&id.to_string()];
        let diff = (weight - expected).abs();
        assert!(
            diff <= TOLERANCE,
            "sparse weight of id {id} in text {index} differs by {diff}"
        );
        diffs.sparse = diffs.sparse.max(diff);
    }

    let colbert = embedding.colbert.as_ref().unwrap();
    assert_eq!(
        colbert.rows(),
        golden.colbert_rows,
        "ColBERT rows of text {index}"
    );
    let colbert_diff = max_abs_diff(&colbert.data, &golden.colbert());
    assert!(
        colbert_diff <= TOLERANCE,
        "ColBERT of text {index} {text:?} differs by {colbert_diff}"
    );
    diffs.colbert = diffs.colbert.max(colbert_diff);
}

fn check_corpus(model_dir: &Path, max_length: usize) {
    let texts = corpus();
    let golden = goldens(max_length);
    assert_eq!(
        texts.len(),
        golden.len(),
        "corpus and goldens have the same length"
    );
    assert!(texts.len() >= 40, "the corpus has at least 40 texts");
    let embeddings = embed_corpus(model_dir, max_length);
    assert_eq!(embeddings.len(), texts.len());
    let mut diffs = MaxDiffs::default();
    for ((embedding, golden), text) in embeddings.iter().zip(&golden).zip(&texts) {
        check_text(embedding, golden, text, &mut diffs);
    }
    eprintln!(
        "max length {max_length}: {} texts, max abs difference {diffs:?}",
        texts.len()
    );
}

#[test]
fn parity_at_max_length_8192() {
    check_corpus(&tiny_model_dir(), 8192);
}

#[test]
fn parity_at_max_length_16() {
    check_corpus(&tiny_model_dir(), 16);
}

#[test]
fn standard_attention_parity_at_8192() {
    check_corpus(&tiny_standard_model_dir(), 8192);
}

#[test]
fn standard_attention_parity_at_16() {
    check_corpus(&tiny_standard_model_dir(), 16);
}

#[test]
fn attention_kind_is_read_from_metadata() {
    let fused = Embedder::try_new(tiny_model_dir(), EmbedderOptions::new()).unwrap();
    assert_eq!(fused.attention(), Attention::FusedSplitOnPadding);
    let standard = Embedder::try_new(tiny_standard_model_dir(), EmbedderOptions::new()).unwrap();
    assert_eq!(standard.attention(), Attention::Standard);
}
