//! The library's one error type.
//!
//! Every variant names the value that failed (a path, an input index, an output name)
//! and keeps the underlying cause as its `source`, so callers can print the whole
//! chain with `{:#}` (anyhow) or walk it.

use std::path::PathBuf;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors from loading a model or embedding texts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model folder does not exist or is not a folder.
    #[error("model folder {} not found: pass a folder that contains model.onnx and tokenizer.json", path.display())]
    ModelDirNotFound {
        /// The folder that was given.
        path: PathBuf,
    },

    /// A file the model needs is missing from the model folder.
    #[error("model folder {} has no {file}: {hint}", dir.display())]
    ModelFileMissing {
        /// The model folder.
        dir: PathBuf,
        /// The missing file's name, relative to `dir`.
        file: String,
        /// The source of the file.
        hint: &'static str,
    },

    /// A file of the model folder could not be read.
    #[error("failed to read {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file of the model folder (config, special tokens) is invalid.
    #[error("invalid JSON in {}", path.display())]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },

    /// `tokenizer.json` could not be loaded.
    #[error("failed to load the tokenizer from {}", path.display())]
    TokenizerLoad {
        /// The tokenizer file.
        path: PathBuf,
        /// The tokenizers library's error.
        #[source]
        source: tokenizers::Error,
    },

    /// A special token that the sparse output drops is not in the tokenizer's vocabulary.
    #[error("special token {token:?} ({role}) is not in the vocabulary of {}", path.display())]
    SpecialTokenMissing {
        /// The token text, such as `<s>`.
        token: String,
        /// Its role: `cls_token`, `eos_token`, `pad_token` or `unk_token`.
        role: &'static str,
        /// The tokenizer file.
        path: PathBuf,
    },

    /// The ONNX Runtime shared library was not found.
    #[error(
        "ONNX Runtime shared library not found (looked at: {}); \
         install it with `bash scripts/setup-onnxruntime.sh`, \
         or set ORT_DYLIB_PATH to the path of libonnxruntime.so",
        list_paths(searched)
    )]
    RuntimeNotFound {
        /// The paths that were tried, in order.
        searched: Vec<PathBuf>,
    },

    /// The ONNX Runtime shared library exists but could not be loaded.
    #[error(
        "failed to load ONNX Runtime from {}; \
         reinstall it with `bash scripts/setup-onnxruntime.sh`",
        path.display()
    )]
    RuntimeLoad {
        /// The library file.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: ort::LoadDynamicError,
    },

    /// An ONNX Runtime call failed.
    #[error("ONNX Runtime failed to {action}")]
    Onnx {
        /// The action that failed, such as "load model.onnx".
        action: String,
        /// The ONNX Runtime error.
        #[source]
        source: ort::Error,
    },

    /// The model's inputs are not `input_ids` and `attention_mask`.
    #[error(
        "model {} has inputs [{}], expected [input_ids, attention_mask]",
        path.display(),
        found.join(", ")
    )]
    UnexpectedInputs {
        /// The ONNX model file.
        path: PathBuf,
        /// The input names the model has.
        found: Vec<String>,
    },

    /// The model's outputs are not the three BGE-M3 outputs.
    #[error(
        "model {} has outputs [{}], expected [dense_embeddings, sparse_weights, colbert_vectors] \
         (export the model with python/export_onnx.py)",
        path.display(),
        found.join(", ")
    )]
    UnexpectedOutputs {
        /// The ONNX model file.
        path: PathBuf,
        /// The output names the model has.
        found: Vec<String>,
    },

    /// An output tensor has a shape that does not fit the batch.
    #[error("output {output} has shape {found:?}, expected {expected}")]
    OutputShape {
        /// The output name.
        output: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape the model returned.
        found: Vec<i64>,
    },

    /// A text could not be tokenized.
    #[error("failed to tokenize the text at index {input_index} of the call")]
    Tokenize {
        /// The position of the text in the call's input.
        input_index: usize,
        /// The tokenizers library's error.
        #[source]
        source: tokenizers::Error,
    },

    /// A token id could not be decoded to text.
    #[error("failed to decode token id {id}")]
    Decode {
        /// The token id.
        id: u32,
        /// The tokenizers library's error.
        #[source]
        source: tokenizers::Error,
    },

    /// The model produced NaN or infinity for a text.
    #[error("the model produced a non-finite value in the {output} output of the text at index {input_index} of the call")]
    NonFinite {
        /// The position of the text in the call's input.
        input_index: usize,
        /// The output: `dense`, `sparse` or `colbert`.
        output: &'static str,
    },

    /// An option has a value the engine cannot use.
    #[error("invalid {name} {value}: {reason}")]
    InvalidOption {
        /// The option name.
        name: &'static str,
        /// The value given.
        value: String,
        /// The reason it is invalid and the valid range.
        reason: String,
    },
}

impl Error {
    /// Returns the index of the text that failed, for errors about one text.
    pub fn input_index(&self) -> Option<usize> {
        match self {
            Self::Tokenize { input_index, .. } | Self::NonFinite { input_index, .. } => {
                Some(*input_index)
            }
            _ => None,
        }
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    shown.join(", ")
}
