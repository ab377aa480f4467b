//! BGE-M3 embeddings on ONNX Runtime: dense, sparse (lexical weights) and ColBERT
//! multi-vectors from one forward pass, computed as FlagEmbedding 1.4.2's
//! `BGEM3FlagModel` computes them on CPU in fp32.
//!
//! ```no_run
//! use bge_m3::{Embedder, EmbedderOptions};
//!
//! let embedder = Embedder::try_new("models/bge-m3", EmbedderOptions::new())?;
//! let embeddings = embedder.embed(&["What is BGE-M3?", "BGE-M3 is an embedding model."])?;
//! let dense = embeddings[0].dense.as_ref().unwrap();
//! assert_eq!(dense.len(), 1024);
//! # Ok::<(), bge_m3::Error>(())
//! ```
//!
//! The model folder contains a three-output ONNX export (`python/export_onnx.py`), or
//! the files of the `BAAI/bge-m3` repository: its backbone-only `onnx/model.onnx` and
//! FlagEmbedding's heads `colbert_linear.pt` and `sparse_linear.pt`, which the engine
//! reads and applies itself (see [`ModelFiles`]). With the `hub` feature (on by
//! default), [`hub::fetch_model`] downloads such a folder from the Hugging Face Hub.
//! ONNX Runtime is loaded at run time; see [`runtime`] for where it is looked up.

#![deny(missing_docs)]

mod batching;
mod compute_score;
mod cpus;
mod embedder;
mod embedding_table;
mod error;
mod head_weights;
mod heads;
#[cfg(feature = "hub")]
pub mod hub;
mod linear_heads;
mod model;
mod model_files;
mod onnx_proto;
mod pickle;
pub mod runtime;
pub mod scoring;
mod session;
mod state_dict;
mod tokenizer;

pub use batching::{attention_bytes, plan_batches, Batch, BatchLimits};
pub use compute_score::{ScoreOptions, DEFAULT_PASSAGE_MAX_LENGTH, DEFAULT_QUERY_MAX_LENGTH};
pub use cpus::default_threads;
pub use embedder::{
    EmbedRequest, Embedder, EmbedderOptions, Embedding, DEFAULT_ATTENTION_BUDGET,
    DEFAULT_MAX_LENGTH, DEFAULT_TOKEN_BUDGET,
};
pub use error::{Error, Result};
pub use heads::{MultiVector, SparseEmbedding};
pub use model_files::ModelFiles;
pub use scoring::{PairScores, ScoreWeights};
pub use session::{Attention, Outputs};
pub use tokenizer::{SpecialIds, TokenizedText, Tokenizer};
