//! The `Embedder`: tokenize, batch, run the model, cut out each text's outputs.

use std::path::Path;

use crate::batching::{plan_batches, Batch, BatchLimits};
use crate::error::{Error, Result};
use crate::heads::{
    colbert_from_rows, dense_from_row, sparse_from_token_weights, MultiVector, SparseEmbedding,
};
use crate::model::Model;
use crate::model_files::ModelFiles;
use crate::session::{Attention, BatchInput, BatchOutput, Outputs, SessionSettings};
use crate::tokenizer::{read_json, TokenizedText, Tokenizer};

/// BGE-M3's max length in tokens, `<s>` and `</s>` included: its 8194 position
/// embeddings minus the two that XLM-R skips (positions start at pad id + 1).
pub const DEFAULT_MAX_LENGTH: usize = 8192;

/// Default token budget of one batch, padding included. Batches of 4096 tokens need a
/// quarter of the activation memory of batches of 16384. On a 2-core Xeon they were
/// 12 % faster on 128-token passages and as fast on 1024-token documents
/// (docs/benchmarks.md, "Token budget").
pub const DEFAULT_TOKEN_BUDGET: usize = 4096;

/// Default budget of one layer's attention scores in a batch, in bytes (512 MiB).
pub const DEFAULT_ATTENTION_BUDGET: usize = 512 << 20;

/// Attention heads assumed when `config.json` does not give them (BGE-M3 has 16).
const DEFAULT_HEADS: usize = 16;

/// Options of an [`Embedder`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmbedderOptions {
    /// Max length in tokens, `<s>` and `</s>` included; longer texts are truncated and
    /// flagged. Default [`DEFAULT_MAX_LENGTH`]; at most the model's position limit.
    pub max_length: usize,
    /// Max padded tokens (texts × longest text) in one model call. A text longer
    /// than the budget runs alone. Default [`DEFAULT_TOKEN_BUDGET`].
    pub token_budget: usize,
    /// Max bytes of one layer's attention scores in a batch (texts × heads ×
    /// sequence² × 4). With a fused-attention export this binds only padded batches,
    /// since unpadded ones run flash attention; a text over the budget runs alone.
    /// Default [`DEFAULT_ATTENTION_BUDGET`].
    pub attention_budget: usize,
    /// ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose. Default:
    /// [`default_threads`](crate::default_threads), one per physical core this process
    /// may use.
    pub threads: usize,
    /// Whether ONNX Runtime's intra-op threads spin while they wait for work, which
    /// saves the wake-up between operators but keeps the cores busy. Default: on,
    /// as in ONNX Runtime.
    pub spinning: bool,
    /// The outputs to compute. Default: all three.
    pub outputs: Outputs,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        Self {
            max_length: DEFAULT_MAX_LENGTH,
            token_budget: DEFAULT_TOKEN_BUDGET,
            attention_budget: DEFAULT_ATTENTION_BUDGET,
            threads: crate::cpus::default_threads(),
            spinning: true,
            outputs: Outputs::ALL,
        }
    }
}

impl EmbedderOptions {
    /// Returns the default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the max length in tokens.
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// Sets the token budget of one batch.
    pub fn with_token_budget(mut self, token_budget: usize) -> Self {
        self.token_budget = token_budget;
        self
    }

    /// Sets the attention budget of one batch, in bytes.
    pub fn with_attention_budget(mut self, bytes: usize) -> Self {
        self.attention_budget = bytes;
        self
    }

    /// Sets the ONNX Runtime intra-op thread count (0: ONNX Runtime's default).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Sets whether ONNX Runtime's intra-op threads spin while they wait for work.
    pub fn with_spinning(mut self, spinning: bool) -> Self {
        self.spinning = spinning;
        self
    }

    /// Sets which outputs to compute.
    pub fn with_outputs(mut self, outputs: Outputs) -> Self {
        self.outputs = outputs;
        self
    }
}

/// The outputs of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// The L2-normalised `<s>` hidden state (1024 values for BGE-M3), when requested.
    pub dense: Option<Vec<f32>>,
    /// Sparse (lexical) weights, when requested.
    pub sparse: Option<SparseEmbedding>,
    /// ColBERT vectors, `tokens - 1` rows, when requested.
    pub colbert: Option<MultiVector>,
    /// Tokens given to the model, `<s>` and `</s>` included.
    pub tokens: usize,
    /// Whether the text was cut to the max length.
    pub truncated: bool,
}

/// The outputs and max length of one call of [`Embedder::embed_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmbedRequest {
    /// The outputs to compute.
    pub outputs: Outputs,
    /// Max length in tokens, `<s>` and `</s>` included.
    pub max_length: usize,
}

impl EmbedRequest {
    /// Returns a request for the given outputs and max length.
    pub fn new(outputs: Outputs, max_length: usize) -> Self {
        Self {
            outputs,
            max_length,
        }
    }
}

/// A BGE-M3 model ready to embed texts. `Send + Sync`; calls from several threads
/// take turns on the one ONNX Runtime session.
#[derive(Debug)]
pub struct Embedder {
    model: Model,
    tokenizer: Tokenizer,
    options: EmbedderOptions,
    max_length_limit: usize,
    limits: BatchLimits,
}

impl Embedder {
    /// Loads the model in `model_dir`: a three-output `model.onnx`, or the
    /// `BAAI/bge-m3` layout (`onnx/model.onnx` and the `.pt` head files), with
    /// `tokenizer.json`. See [`ModelFiles`] for the layouts.
    pub fn try_new(model_dir: impl AsRef<Path>, options: EmbedderOptions) -> Result<Self> {
        let files = ModelFiles::from_dir(model_dir)?;
        let config = ModelConfig::read(&files)?;
        let max_length_limit = config.max_length_limit;
        validate_options(&options, max_length_limit)?;
        warn_of_oversubscription(options.threads);
        let tokenizer = Tokenizer::from_files(&files)?;
        let settings = SessionSettings {
            intra_threads: options.threads,
            intra_spinning: options.spinning,
        };
        let model = Model::load(&files, settings)?;
        let limits = BatchLimits {
            token_budget: options.token_budget,
            attention_budget: options.attention_budget,
            heads: config.heads,
            flash_without_padding: model.attention() == Attention::FusedSplitOnPadding,
        };
        tracing::info!(
            model = %model.path().display(),
            layout = model.layout(),
            max_length = options.max_length,
            attention = ?model.attention(),
            "model loaded"
        );
        Ok(Self {
            model,
            tokenizer,
            options,
            max_length_limit,
            limits,
        })
    }

    /// Returns the limits that batches of this embedder keep, for callers that plan
    /// their own batches with [`crate::plan_batches`].
    pub fn batch_limits(&self) -> BatchLimits {
        self.limits
    }

    /// Returns how the model's graph computes attention.
    pub fn attention(&self) -> Attention {
        self.model.attention()
    }

    /// Returns the longest max length the model's position embeddings allow.
    pub fn max_length_limit(&self) -> usize {
        self.max_length_limit
    }

    /// Returns the options the embedder was built with.
    pub fn options(&self) -> &EmbedderOptions {
        &self.options
    }

    /// Returns the tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Embeds texts; results are in input order and do not depend on the batching.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Embedding>> {
        self.embed_with_progress(texts, &mut |_| {})
    }

    /// Embeds texts like [`Embedder::embed`], calling `progress` with the number of
    /// texts finished after each batch.
    pub fn embed_with_progress<S: AsRef<str>>(
        &self,
        texts: &[S],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Embedding>> {
        self.embed_with(texts, self.options.outputs, progress)
    }

    /// Embeds texts computing the given outputs instead of the embedder's default
    /// ones, calling `progress` with the number of texts finished after each batch.
    pub fn embed_with<S: AsRef<str>>(
        &self,
        texts: &[S],
        outputs: Outputs,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Embedding>> {
        let request = EmbedRequest::new(outputs, self.options.max_length);
        self.embed_request(texts, request, progress)
    }

    /// Embeds texts with the outputs and max length of `request`, calling `progress`
    /// with the number of texts finished after each batch.
    pub fn embed_request<S: AsRef<str>>(
        &self,
        texts: &[S],
        request: EmbedRequest,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Embedding>> {
        validate_outputs(request.outputs)?;
        validate_max_length(request.max_length, self.max_length_limit)?;
        let outputs = request.outputs;
        let tokenized = texts
            .iter()
            .enumerate()
            .map(|(index, text)| {
                self.tokenizer
                    .encode(text.as_ref(), request.max_length, index)
            })
            .collect::<Result<Vec<_>>>()?;
        self.run_batches(&tokenized, outputs, progress)
    }

    /// Embeds texts already tokenized by [`Embedder::tokenizer`], computing the given
    /// outputs. Results are in input order and equal those of [`Embedder::embed_with`]
    /// on the original texts.
    ///
    /// A caller that tokenizes first (to count tokens or check lengths) uses this to
    /// avoid tokenizing twice. Each text must have between 1 and the max length
    /// tokens, else the call fails with [`Error::InvalidOption`]; ids from another
    /// tokenizer are not detected and give meaningless outputs.
    pub fn embed_tokenized(
        &self,
        texts: &[TokenizedText],
        outputs: Outputs,
    ) -> Result<Vec<Embedding>> {
        validate_outputs(outputs)?;
        for (index, text) in texts.iter().enumerate() {
            self.validate_length(text, index)?;
        }
        self.run_batches(texts, outputs, &mut |_| {})
    }

    fn validate_length(&self, text: &TokenizedText, index: usize) -> Result<()> {
        let max_length = self.max_length_limit;
        if (1..=max_length).contains(&text.ids.len()) {
            return Ok(());
        }
        Err(Error::InvalidOption {
            name: "tokenized text",
            value: format!("at index {index} with {} tokens", text.ids.len()),
            reason: format!("it must have between 1 and the model's limit of {max_length} tokens"),
        })
    }

    fn run_batches(
        &self,
        tokenized: &[TokenizedText],
        outputs: Outputs,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Embedding>> {
        let lengths: Vec<usize> = tokenized.iter().map(|text| text.ids.len()).collect();

        let mut results: Vec<Option<Embedding>> = vec![None; tokenized.len()];
        for batch in plan_batches(&lengths, &self.limits) {
            tracing::debug!(
                texts = batch.members.len(),
                sequence = batch.sequence,
                "running batch"
            );
            let output = self.model.run(&self.pad(&batch, tokenized), outputs)?;
            for (row, &index) in batch.members.iter().enumerate() {
                let slices = RowSlices::new(&output, row, batch.sequence);
                results[index] = Some(self.cut(&tokenized[index], &slices, index)?);
            }
            progress(batch.members.len());
        }
        Ok(results.into_iter().flatten().collect())
    }

    fn pad(&self, batch: &Batch, tokenized: &[TokenizedText]) -> BatchInput {
        let pad_id = i64::from(self.tokenizer.special_ids().pad);
        let size = batch.members.len() * batch.sequence;
        let mut input_ids = Vec::with_capacity(size);
        let mut attention_mask = Vec::with_capacity(size);
        for &index in &batch.members {
            let ids = &tokenized[index].ids;
            input_ids.extend(ids.iter().map(|&id| i64::from(id)));
            input_ids.resize(input_ids.len() + batch.sequence - ids.len(), pad_id);
            attention_mask.extend(std::iter::repeat_n(1, ids.len()));
            attention_mask.extend(std::iter::repeat_n(0, batch.sequence - ids.len()));
        }
        BatchInput {
            batch: batch.members.len(),
            sequence: batch.sequence,
            input_ids,
            attention_mask,
        }
    }

    fn cut(&self, text: &TokenizedText, slices: &RowSlices<'_>, index: usize) -> Result<Embedding> {
        let tokens = text.ids.len();
        let dense = slices
            .dense
            .map(|row| dense_from_row(row, index))
            .transpose()?;
        let sparse = slices
            .sparse
            .map(|row| {
                let special = self.tokenizer.special_ids();
                sparse_from_token_weights(&text.ids, &row[..tokens], &special, index)
            })
            .transpose()?;
        let colbert = slices
            .colbert
            .map(|rows| colbert_from_rows(rows, slices.colbert_dim, tokens, index))
            .transpose()?;
        Ok(Embedding {
            dense,
            sparse,
            colbert,
            tokens,
            truncated: text.truncated,
        })
    }
}

/// The rows of one text inside the batch output tensors.
struct RowSlices<'a> {
    colbert_dim: usize,
    dense: Option<&'a [f32]>,
    sparse: Option<&'a [f32]>,
    colbert: Option<&'a [f32]>,
}

impl<'a> RowSlices<'a> {
    fn new(output: &'a BatchOutput, row: usize, sequence: usize) -> Self {
        let dense_dim = output.dense_dim;
        let colbert_size = (sequence - 1) * output.colbert_dim;
        Self {
            colbert_dim: output.colbert_dim,
            dense: output
                .dense
                .as_deref()
                .map(|d| &d[row * dense_dim..(row + 1) * dense_dim]),
            sparse: output
                .sparse
                .as_deref()
                .map(|s| &s[row * sequence..(row + 1) * sequence]),
            colbert: output
                .colbert
                .as_deref()
                .map(|c| &c[row * colbert_size..(row + 1) * colbert_size]),
        }
    }
}

/// The values the engine reads from `config.json`.
struct ModelConfig {
    /// The max input length the position embeddings allow, in tokens.
    max_length_limit: usize,
    /// Attention heads.
    heads: usize,
}

impl ModelConfig {
    /// Reads `config.json`, or assumes BGE-M3's values without one.
    ///
    /// XLM-R numbers positions from `pad_token_id + 1`, so `max_position_embeddings`
    /// of 8194 with pad id 1 allows 8192 tokens.
    fn read(files: &ModelFiles) -> Result<Self> {
        let Some(path) = &files.config else {
            return Ok(Self {
                max_length_limit: DEFAULT_MAX_LENGTH,
                heads: DEFAULT_HEADS,
            });
        };
        let config = read_json(path)?;
        let number = |key: &str| config.get(key).and_then(|value| value.as_u64());
        let pad_id = number("pad_token_id").unwrap_or(1);
        let limit = number("max_position_embeddings")
            .map_or(DEFAULT_MAX_LENGTH as u64, |positions| {
                positions.saturating_sub(pad_id + 1)
            });
        let heads = number("num_attention_heads").unwrap_or(DEFAULT_HEADS as u64);
        Ok(Self {
            max_length_limit: usize::try_from(limit).unwrap_or(usize::MAX),
            heads: usize::try_from(heads).unwrap_or(DEFAULT_HEADS).max(1),
        })
    }
}

fn validate_max_length(max_length: usize, limit: usize) -> Result<()> {
    if max_length < 2 || max_length > limit {
        return Err(Error::InvalidOption {
            name: "max length",
            value: max_length.to_string(),
            reason: format!("it must be between 2 (room for <s> and </s>) and the model's limit of {limit} tokens"),
        });
    }
    Ok(())
}

/// Logs a warning when the threads outnumber the CPUs the process may use: ONNX
/// Runtime's threads wait for each other at every operator, so extra threads that
/// share a CPU slow every call down.
fn warn_of_oversubscription(threads: usize) {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if threads > cpus {
        tracing::warn!(
            threads,
            cpus,
            "more intra-op threads than CPUs slows the model down; set at most one per CPU"
        );
    }
}

fn validate_options(options: &EmbedderOptions, limit: usize) -> Result<()> {
    validate_max_length(options.max_length, limit)?;
    if options.attention_budget == 0 {
        return Err(Error::InvalidOption {
            name: "attention budget",
            value: "0".to_owned(),
            reason: "it must be at least 1 byte".to_owned(),
        });
    }
    if options.token_budget == 0 {
        return Err(Error::InvalidOption {
            name: "token budget",
            value: "0".to_owned(),
            reason: "it must be at least 1 token".to_owned(),
        });
    }
    validate_outputs(options.outputs)
}

fn validate_outputs(outputs: Outputs) -> Result<()> {
    if outputs.is_empty() {
        return Err(Error::InvalidOption {
            name: "outputs",
            value: "none".to_owned(),
            reason: "select at least one of dense, sparse and ColBERT".to_owned(),
        });
    }
    Ok(())
}
