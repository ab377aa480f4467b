//! Loading model folders: missing files, wrong graphs, symlinked caches.

mod common;

use std::path::Path;

use bge_m3::{Embedder, EmbedderOptions, Error};
use common::{fixtures_dir, tiny_model_dir};

const MODEL_FILES: [&str; 4] = [
    "model.onnx",
    "model.onnx_data",
    "tokenizer.json",
    "special_tokens_map.json",
];

fn load(dir: &Path) -> Result<Embedder, Error> {
    Embedder::try_new(dir, EmbedderOptions::new())
}

/// Copies the tiny model into a temporary folder, leaving out one file.
fn copy_without(missing: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in MODEL_FILES.iter().filter(|name| **name != missing) {
        std::fs::copy(tiny_model_dir().join(name), dir.path().join(name)).unwrap();
    }
    dir
}

fn expect_missing_file(missing: &str) {
    let dir = copy_without(missing);
    let error = load(dir.path()).unwrap_err();
    assert!(
        matches!(&error, Error::ModelFileMissing { file, .. } if file == missing),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(missing),
        "message names {missing}: {message}"
    );
}

#[test]
fn missing_folder_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model");
    let error = load(&missing).unwrap_err();
    assert!(matches!(error, Error::ModelDirNotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("no-such-model"));
}

/// Without `model.onnx` the folder matches neither layout; the message names both graphs.
#[test]
fn missing_model_onnx_is_named() {
    let dir = copy_without("model.onnx");
    let error = load(dir.path()).unwrap_err();
    assert!(matches!(error, Error::UnknownLayout { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("neither model.onnx nor onnx/model.onnx"),
        "{message}"
    );
}

#[test]
fn missing_external_data_is_named() {
    expect_missing_file("model.onnx_data");
}

/// The embedding table is read at load, so a data file cut short fails there.
#[test]
fn truncated_external_data_is_named() {
    let dir = copy_without("");
    let data = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("model.onnx_data"))
        .unwrap();
    data.set_len(4096).unwrap();

    let error = load(dir.path()).unwrap_err();
    assert!(matches!(error, Error::ExternalData { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("word_embeddings.weight"), "{message}");
    assert!(
        message.contains("model.onnx_data has 4096 bytes"),
        "{message}"
    );
}

#[test]
fn missing_tokenizer_is_named() {
    expect_missing_file("tokenizer.json");
}

#[test]
fn wrong_outputs_are_listed() {
    let error = load(&fixtures_dir().join("wrong-outputs")).unwrap_err();
    assert!(
        matches!(error, Error::UnexpectedOutputs { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("token_embeddings"), "{message}");
    assert!(message.contains("sentence_embedding"), "{message}");
    assert!(message.contains("dense_embeddings"), "{message}");
}

#[test]
fn max_length_over_model_limit_is_rejected() {
    let options = EmbedderOptions::new().with_max_length(8193);
    let error = Embedder::try_new(tiny_model_dir(), options).unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidOption {
                name: "max length",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("8192"), "{error}");
}

#[test]
fn max_length_below_two_is_rejected() {
    let options = EmbedderOptions::new().with_max_length(1);
    let error = Embedder::try_new(tiny_model_dir(), options).unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidOption {
                name: "max length",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn zero_token_budget_is_rejected() {
    let options = EmbedderOptions::new().with_token_budget(0);
    let error = Embedder::try_new(tiny_model_dir(), options).unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidOption {
                name: "token budget",
                ..
            }
        ),
        "{error:?}"
    );
}

/// The Hugging Face cache layout: `snapshots/<rev>/<file>` links to `blobs/<hash>`.
#[test]
fn symlinked_cache_folder_loads() {
    let cache = tempfile::tempdir().unwrap();
    let blobs = cache.path().join("blobs");
    let snapshot = cache.path().join("snapshots").join("0123abcd");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    for (number, name) in MODEL_FILES.iter().enumerate() {
        let blob = blobs.join(format!("{number:040x}"));
        std::fs::copy(tiny_model_dir().join(name), &blob).unwrap();
        let target = Path::new("../../blobs").join(blob.file_name().unwrap());
        std::os::unix::fs::symlink(target, snapshot.join(name)).unwrap();
    }

    let from_cache = load(&snapshot).unwrap().embed(&["A test text!"]).unwrap();
    let from_fixture = load(&tiny_model_dir())
        .unwrap()
        .embed(&["A test text!"])
        .unwrap();
    assert_eq!(from_cache, from_fixture);
}

#[test]
fn dangling_symlink_counts_as_missing() {
    let dir = copy_without("model.onnx_data");
    std::os::unix::fs::symlink("../gone/blob", dir.path().join("model.onnx_data")).unwrap();
    let error = load(dir.path()).unwrap_err();
    assert!(
        matches!(&error, Error::ModelFileMissing { file, .. } if file == "model.onnx_data"),
        "{error:?}"
    );
}

/// The `nan-outputs` graph returns NaN for texts with the token "▁a" (id 85).
#[test]
fn non_finite_output_names_the_text() {
    let embedder = load(&fixtures_dir().join("nan-outputs")).unwrap();
    let finite = embedder.embed(&["b", "c d"]).unwrap();
    assert_eq!(finite.len(), 2);

    let error = embedder.embed(&["b", "b a c", "c d"]).unwrap_err();
    assert!(
        matches!(error, Error::NonFinite { input_index: 1, .. }),
        "{error:?}"
    );
    assert_eq!(error.input_index(), Some(1));
}

#[test]
fn non_finite_sparse_alone_is_an_error() {
    let embedder = load(&fixtures_dir().join("nan-outputs")).unwrap();
    let sparse_only = bge_m3::Outputs {
        dense: false,
        sparse: true,
        colbert: false,
    };
    let error = embedder
        .embed_with(&["b a c"], sparse_only, &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::NonFinite {
                input_index: 0,
                output: "sparse"
            }
        ),
        "{error:?}"
    );
}
