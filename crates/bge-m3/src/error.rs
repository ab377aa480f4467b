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
    #[error(
        "model folder {} not found: pass a folder that contains model.onnx or onnx/model.onnx, \
         and tokenizer.json",
        path.display()
    )]
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

    /// An initializer's external data reference does not fit its data file.
    #[error(
        "tensor {tensor:?} of {} cannot be read from its external data: {problem}; \
         export or download the model again",
        graph.display()
    )]
    ExternalData {
        /// The ONNX graph that references the data.
        graph: PathBuf,
        /// The initializer's name.
        tensor: String,
        /// The problem, naming the data file and the offsets.
        problem: String,
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

    /// The model folder matches neither supported layout.
    #[error(
        "model folder {} has neither model.onnx nor onnx/model.onnx: expected a three-output \
         export (model.onnx, made by python/export_onnx.py) or the BAAI/bge-m3 layout \
         (onnx/model.onnx with colbert_linear.pt and sparse_linear.pt in the folder)",
        dir.display()
    )]
    UnknownLayout {
        /// The model folder.
        dir: PathBuf,
    },

    /// The model's outputs are neither the three BGE-M3 outputs nor `token_embeddings`
    /// with the two head files.
    #[error(
        "model {} has outputs [{}], expected [dense_embeddings, sparse_weights, colbert_vectors], \
         or token_embeddings with colbert_linear.pt and sparse_linear.pt in the model folder \
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

    /// A `.pt` file is not a PyTorch zip archive.
    #[error(
        "failed to read {} as a PyTorch zip archive (the torch.save format of PyTorch 1.6 \
         and later)",
        path.display()
    )]
    TorchArchive {
        /// The `.pt` file.
        path: PathBuf,
        /// The zip reader's error.
        #[source]
        source: zip::result::ZipError,
    },

    /// A PyTorch archive lacks an entry that its pickle or its format requires.
    #[error("PyTorch archive {} has no entry {entry}", path.display())]
    TorchArchiveEntry {
        /// The `.pt` file.
        path: PathBuf,
        /// The entry name inside the archive, such as `archive/data.pkl`.
        entry: String,
    },

    /// The pickle of a `.pt` file contains something other than a state dict of float16,
    /// bfloat16 or float32 tensors.
    #[error(
        "unsupported content in {} at pickle byte {offset}: {found}; only state dicts of \
         float16, bfloat16 and float32 tensors can be read",
        path.display()
    )]
    TorchUnsupported {
        /// The `.pt` file.
        path: PathBuf,
        /// Byte offset in the archive's `data.pkl`.
        offset: usize,
        /// The unsupported content, such as `global numpy.core.multiarray._reconstruct`.
        found: String,
    },

    /// The pickle or the tensor data of a `.pt` file is invalid.
    #[error("invalid PyTorch file {} at pickle byte {offset}: {problem}", path.display())]
    TorchInvalid {
        /// The `.pt` file.
        path: PathBuf,
        /// Byte offset in the archive's `data.pkl`.
        offset: usize,
        /// The problem, such as `truncated pickle`.
        problem: String,
    },

    /// A state dict has no tensor under a key that the model needs.
    #[error("{} has no tensor {key:?} (its keys: {})", path.display(), found.join(", "))]
    TensorMissing {
        /// The `.pt` file.
        path: PathBuf,
        /// The missing key, such as `weight`.
        key: String,
        /// The keys the state dict has.
        found: Vec<String>,
    },

    /// A head tensor has a shape that does not fit the model.
    #[error("tensor {key:?} of {} has shape {found:?}, expected {expected}", path.display())]
    TensorShape {
        /// The `.pt` file.
        path: PathBuf,
        /// The tensor's key, such as `weight`.
        key: String,
        /// The expected shape, in words.
        expected: String,
        /// The tensor's shape.
        found: Vec<usize>,
    },

    /// A `--model` value is neither an existing folder nor a Hub repository id.
    #[error(
        "{value:?} is neither an existing model folder nor a Hugging Face Hub repository id \
         such as BAAI/bge-m3"
    )]
    InvalidModelSource {
        /// The value given.
        value: String,
    },

    /// The Hub has no repository with this id, or hides a private one from this caller.
    #[error(
        "repository {repo} not found on {endpoint}; check the id, set HF_TOKEN for a private \
         or gated repository, or pass an existing folder"
    )]
    HubRepoNotFound {
        /// The repository id.
        repo: String,
        /// The Hub endpoint that was asked.
        endpoint: String,
    },

    /// The repository has no such branch, tag or commit.
    #[error("repository {repo} has no revision {revision}")]
    HubRevisionNotFound {
        /// The repository id.
        repo: String,
        /// The requested revision.
        revision: String,
    },

    /// A file that the model needs is not in the repository.
    #[error("repository {repo} at revision {revision} has no file {file}")]
    HubFileNotFound {
        /// The repository id.
        repo: String,
        /// The revision, a commit hash once it is resolved.
        revision: String,
        /// The file's path inside the repository.
        file: String,
    },

    /// The repository contains neither model layout.
    #[error(
        "repository {repo} at revision {revision} has neither model.onnx nor onnx/model.onnx, \
         so it is not a BGE-M3 model this engine can run"
    )]
    HubUnknownLayout {
        /// The repository id.
        repo: String,
        /// The resolved commit.
        revision: String,
    },

    /// The Hub denied access, for example to a gated repository.
    #[error("access to {url} was denied (HTTP {status}{}); set HF_TOKEN to a token with access",
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    HubAccessDenied {
        /// The requested URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The Hub's `X-Error-Message`, when present.
        message: Option<String>,
    },

    /// The Hub returned an unexpected HTTP status.
    #[error("request to {url} failed with HTTP {status}")]
    HubStatus {
        /// The requested URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },

    /// An HTTP request to the Hub failed before a response arrived.
    #[cfg(feature = "hub")]
    #[error("request to {url} failed")]
    HubRequest {
        /// The requested URL.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: Box<ureq::Error>,
    },

    /// A Hub response lacks a header or field that the download needs.
    #[error("invalid response from {url}: {problem}")]
    HubResponse {
        /// The requested URL.
        url: String,
        /// The missing or invalid part, such as `no X-Repo-Commit header`.
        problem: String,
    },

    /// Reading a file's bytes from the Hub failed midway.
    #[error("download of {file} failed after {received} bytes")]
    HubTransfer {
        /// The file's path inside the repository.
        file: String,
        /// Bytes of the file on disk when the transfer stopped.
        received: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A downloaded file does not match the size or hash that the Hub reported.
    #[error("downloaded {file} has {check} {found}, expected {expected}; it was deleted, run again to download it anew")]
    DownloadMismatch {
        /// The file's path inside the repository.
        file: String,
        /// `size` or `SHA-256` or `git SHA-1`.
        check: &'static str,
        /// The value the Hub reported.
        expected: String,
        /// The value of the downloaded bytes.
        found: String,
    },

    /// The model is not in the cache and the Hub cannot be used.
    #[error(
        "{repo} at revision {revision} is not in the cache {}: {reason}",
        cache_dir.display()
    )]
    NotInCache {
        /// The repository id.
        repo: String,
        /// The requested revision.
        revision: String,
        /// The Hub cache folder.
        cache_dir: PathBuf,
        /// The reason the Hub was not contacted, such as `HF_HUB_OFFLINE is set`.
        reason: String,
    },

    /// A file or folder of the cache could not be written.
    #[error("failed to write {}", path.display())]
    WriteFile {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
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
