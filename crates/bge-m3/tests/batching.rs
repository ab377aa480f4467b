//! Results do not depend on batching, order or the token budget.

mod common;

use bge_m3::{Embedder, EmbedderOptions, Embedding};
use common::{corpus, max_abs_diff, tiny_model_dir};
use rand::seq::SliceRandom;
use rand::SeedableRng;

const TOLERANCE: f32 = 1e-6;

fn assert_close(batched: &Embedding, alone: &Embedding, text: &str) {
    assert_eq!(batched.tokens, alone.tokens, "tokens of {text:?}");
    assert_eq!(batched.truncated, alone.truncated, "truncation of {text:?}");
    let dense = max_abs_diff(
        batched.dense.as_ref().unwrap(),
        alone.dense.as_ref().unwrap(),
    );
    assert!(dense <= TOLERANCE, "dense of {text:?} differs by {dense}");

    let batched_sparse = &batched.sparse.as_ref().unwrap().entries;
    let alone_sparse = &alone.sparse.as_ref().unwrap().entries;
    let batched_ids: Vec<u32> = batched_sparse.iter().map(|e| e.0).collect();
    let alone_ids: Vec<u32> = alone_sparse.iter().map(|e| e.0).collect();
    assert_eq!(batched_ids, alone_ids, "sparse ids of {text:?}");
    for (a, b) in batched_sparse.iter().zip(alone_sparse) {
        assert!(
            (a.1 - b.1).abs() <= TOLERANCE,
            "sparse weight of id {} in {text:?}",
            a.0
        );
    }

    let batched_colbert = batched.colbert.as_ref().unwrap();
    let alone_colbert = alone.colbert.as_ref().unwrap();
    assert_eq!(
        batched_colbert.rows(),
        alone_colbert.rows(),
        "ColBERT rows of {text:?}"
    );
    let colbert = max_abs_diff(&batched_colbert.data, &alone_colbert.data);
    assert!(
        colbert <= TOLERANCE,
        "ColBERT of {text:?} differs by {colbert}"
    );
}

#[test]
fn shuffled_corpus_equals_texts_alone() {
    let texts = corpus();
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    let shuffled: Vec<&str> = order.iter().map(|&i| texts[i].as_str()).collect();

    // A budget of 64 tokens gives batches of several short texts, and the long ones
    // each alone.
    let options = EmbedderOptions::new().with_token_budget(64);
    let embedder = Embedder::try_new(tiny_model_dir(), options).unwrap();
    let batched = embedder.embed(&shuffled).unwrap();
    assert_eq!(batched.len(), texts.len());

    for (position, &index) in order.iter().enumerate() {
        let alone = embedder.embed(&[texts[index].as_str()]).unwrap();
        assert_close(&batched[position], &alone[0], &texts[index]);
    }
}

#[test]
fn empty_input_gives_empty_output() {
    let embedder = Embedder::try_new(tiny_model_dir(), EmbedderOptions::new()).unwrap();
    let none: [&str; 0] = [];
    assert!(embedder.embed(&none).unwrap().is_empty());
}

#[test]
fn long_text_is_truncated_and_flagged() {
    let texts = corpus();
    let long = texts.last().unwrap();
    let options = EmbedderOptions::new().with_max_length(512);
    let embedder = Embedder::try_new(tiny_model_dir(), options).unwrap();
    let embeddings = embedder.embed(&["short", long.as_str(), "short"]).unwrap();
    assert_eq!(embeddings.len(), 3, "no text is dropped");
    assert!(embeddings[1].truncated);
    assert_eq!(embeddings[1].tokens, 512);
    assert_eq!(embeddings[1].colbert.as_ref().unwrap().rows(), 511);
    assert!(!embeddings[0].truncated);
    assert!(!embeddings[2].truncated);
}

#[test]
fn selected_outputs_only() {
    let outputs = bge_m3::Outputs {
        dense: false,
        sparse: true,
        colbert: false,
    };
    let options = EmbedderOptions::new().with_outputs(outputs);
    let embedder = Embedder::try_new(tiny_model_dir(), options).unwrap();
    let embedding = &embedder.embed(&["A test text!"]).unwrap()[0];
    assert!(embedding.dense.is_none());
    assert!(embedding.colbert.is_none());
    assert!(embedding.sparse.is_some());
}
