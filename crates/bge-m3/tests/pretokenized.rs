//! Embedding pre-tokenized texts and counting tokens before truncation.

mod common;

use bge_m3::{Embedder, EmbedderOptions, Error, Outputs, TokenizedText};
use common::{corpus, tiny_model_dir};

fn embedder(max_length: usize) -> Embedder {
    let options = EmbedderOptions::new().with_max_length(max_length);
    Embedder::try_new(tiny_model_dir(), options).unwrap()
}

#[test]
fn tokenized_texts_equal_plain_texts() {
    let embedder = embedder(512);
    let texts = corpus();
    let tokenized: Vec<TokenizedText> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| embedder.tokenizer().encode(text, 512, index).unwrap())
        .collect();
    let from_tokens = embedder.embed_tokenized(&tokenized, Outputs::ALL).unwrap();
    let from_texts = embedder.embed(&texts).unwrap();
    assert_eq!(from_tokens.len(), texts.len());
    for (index, (a, b)) in from_tokens.iter().zip(&from_texts).enumerate() {
        assert_eq!(a, b, "text {index}: {:?}", texts[index]);
    }
}

#[test]
fn tokenized_empty_ids_are_rejected() {
    let embedder = embedder(512);
    let good = embedder.tokenizer().encode("fine", 512, 0).unwrap();
    let empty = TokenizedText {
        ids: Vec::new(),
        truncated: false,
    };
    let error = embedder
        .embed_tokenized(&[good, empty], Outputs::ALL)
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidOption {
                name: "tokenized text",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("index 1"), "{error}");
}

#[test]
fn tokenized_over_model_limit_is_rejected() {
    let embedder = embedder(16);
    let long = TokenizedText {
        ids: vec![5; 8193],
        truncated: false,
    };
    let error = embedder.embed_tokenized(&[long], Outputs::ALL).unwrap_err();
    assert!(error.to_string().contains("8193 tokens"), "{error}");
}

#[test]
fn count_equals_length_of_untruncated_text() {
    let embedder = embedder(8192);
    for (index, text) in corpus().iter().enumerate() {
        let encoded = embedder.tokenizer().encode(text, 8192, index).unwrap();
        if encoded.truncated {
            continue;
        }
        let count = embedder.tokenizer().count_tokens(text, index).unwrap();
        assert_eq!(count, encoded.ids.len(), "text {index}");
    }
}

#[test]
fn count_ignores_max_length() {
    let long = corpus().last().unwrap().clone();
    let short = embedder(16);
    let full = embedder(8192);
    let truncated = short.tokenizer().encode(&long, 16, 0).unwrap();
    assert!(truncated.truncated);
    assert_eq!(truncated.ids.len(), 16);
    // The corpus' longest text has 14560 tokens (tests/fixtures/README.md).
    assert_eq!(short.tokenizer().count_tokens(&long, 0).unwrap(), 14560);
    assert_eq!(full.tokenizer().count_tokens(&long, 0).unwrap(), 14560);
}
