//! The state the routes share: the model, the queue, the limits and the metrics.

use std::sync::Arc;

use bge_m3::{Embedder, EmbedderOptions, Embedding, Outputs};

use crate::admission::QueuedTokens;
use crate::args::ServeArgs;
use crate::auth::ApiKey;
use crate::error::ApiError;
use crate::input::Inputs;
use crate::metrics::Metrics;
use crate::queue::{queue, QueueHandle, Worker};
use crate::tokenize::{tokenize, Truncation};

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A flag has a value the server cannot use.
    #[error("invalid --{flag} {value}: {reason}")]
    InvalidFlag {
        /// The flag name, without dashes.
        flag: &'static str,
        /// The value given.
        value: String,
        /// The reason it is invalid.
        reason: String,
    },

    /// The model did not load.
    #[error("failed to load the model in {}", path.display())]
    LoadModel {
        /// The model folder.
        path: std::path::PathBuf,
        /// The library's error.
        #[source]
        source: Box<bge_m3::Error>,
    },

    /// The model failed on the empty text, before the server accepted requests.
    #[error("the model failed its warm-up call on the empty text")]
    WarmUp {
        /// The library's error.
        #[source]
        source: Box<bge_m3::Error>,
    },

    /// The queue worker thread could not be started.
    #[error("failed to start the queue worker thread")]
    SpawnWorker {
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Model facts that `GET /info` reports.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The name returned in responses.
    pub name: String,
    /// Length of the dense vector and of each ColBERT vector.
    pub dimensions: usize,
    /// Max tokens of one input, `<s>` and `</s>` included.
    pub max_input_tokens: usize,
    /// Max padded tokens of one model call.
    pub token_budget: usize,
}

/// The request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Max inputs in one request.
    pub max_inputs: usize,
    /// Max request body in bytes.
    pub max_payload_bytes: usize,
    /// Max tokens queued or running.
    pub max_queued_tokens: usize,
    /// Whether inputs over the max input tokens are truncated when a request has no
    /// `truncate` field.
    pub auto_truncate: bool,
}

/// The shared state of the routes; clones share it.
#[derive(Debug, Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    embedder: Arc<Embedder>,
    queue: QueueHandle,
    metrics: Arc<Metrics>,
    info: ModelInfo,
    limits: Limits,
    api_key: Option<ApiKey>,
}

impl AppState {
    /// Loads the model, checks it on the empty text and starts the queue worker.
    ///
    /// The worker thread stops by itself once every clone of the state is dropped and
    /// the texts already queued are embedded.
    pub fn try_new(args: &ServeArgs) -> Result<Self, StartError> {
        let (state, worker) = Self::try_new_paused(args)?;
        worker
            .spawn()
            .map_err(|source| StartError::SpawnWorker { source })?;
        Ok(state)
    }

    /// Loads the model like [`AppState::try_new`] but returns the queue worker
    /// without running it. Requests wait in the queue, holding their tokens, until
    /// the caller runs the worker, so tests can fill the queue or make requests share
    /// one batch.
    pub fn try_new_paused(args: &ServeArgs) -> Result<(Self, Worker), StartError> {
        validate(args)?;
        let embedder = Arc::new(load(args)?);
        let dimensions = warm_up(&embedder)?;
        let metrics = Arc::new(Metrics::default());
        let queued = QueuedTokens::new(args.max_queued_tokens);
        let (queue, worker) = queue(Arc::clone(&embedder), Arc::clone(&metrics), queued);

        let info = ModelInfo {
            name: args.model_name(),
            dimensions,
            max_input_tokens: args.max_input_tokens,
            token_budget: args.token_budget,
        };
        let limits = Limits {
            max_inputs: args.max_inputs,
            max_payload_bytes: args.max_payload_bytes,
            max_queued_tokens: args.max_queued_tokens,
            auto_truncate: args.auto_truncate,
        };
        let shared = Shared {
            embedder,
            queue,
            metrics,
            info,
            limits,
            api_key: args.api_key.clone(),
        };
        let state = Self {
            shared: Arc::new(shared),
        };
        Ok((state, worker))
    }

    /// Checks the inputs of a request, tokenizes them and embeds them through the
    /// queue. `field` names the inputs in errors (`input` or `inputs`).
    pub async fn embed(
        &self,
        inputs: Inputs,
        field: &'static str,
        outputs: Outputs,
        truncation: Truncation,
    ) -> Result<Vec<Embedding>, ApiError> {
        let texts = self.check_inputs(inputs, field)?;
        let tokenized = tokenize(self.embedder(), texts, truncation).await?;
        self.shared.queue.embed(tokenized, outputs).await
    }

    /// Returns the texts of a request after checking their number.
    pub fn check_inputs(
        &self,
        inputs: Inputs,
        field: &'static str,
    ) -> Result<Vec<String>, ApiError> {
        let texts = inputs.into_texts();
        if texts.is_empty() {
            return Err(ApiError::InvalidField {
                field,
                reason: "the array is empty; send at least one text".to_owned(),
            });
        }
        let max = self.shared.limits.max_inputs;
        if texts.len() > max {
            return Err(ApiError::TooManyInputs {
                count: texts.len(),
                max,
            });
        }
        Ok(texts)
    }

    /// Returns the truncation for a request's `truncate` field.
    pub fn truncation(&self, requested: Option<bool>) -> Truncation {
        Truncation::from_request(requested, self.shared.limits.auto_truncate)
    }

    /// Returns the server's truncation for a route whose requests have no truncate
    /// field.
    pub fn truncation_without_field(&self) -> Truncation {
        Truncation::without_field(self.shared.limits.auto_truncate)
    }

    /// Returns the model.
    pub fn embedder(&self) -> Arc<Embedder> {
        Arc::clone(&self.shared.embedder)
    }

    /// Returns the queue.
    pub fn queue(&self) -> &QueueHandle {
        &self.shared.queue
    }

    /// Returns the metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Returns the model information.
    pub fn info(&self) -> &ModelInfo {
        &self.shared.info
    }

    /// Returns the request limits.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Returns the API key, when the server requires one.
    pub fn api_key(&self) -> Option<&ApiKey> {
        self.shared.api_key.as_ref()
    }
}

fn validate(args: &ServeArgs) -> Result<(), StartError> {
    if args.max_queued_tokens < args.max_input_tokens {
        return Err(StartError::InvalidFlag {
            flag: "max-queued-tokens",
            value: args.max_queued_tokens.to_string(),
            reason: format!(
                "it must be at least --max-input-tokens ({}), else a long input never fits",
                args.max_input_tokens
            ),
        });
    }
    Ok(())
}

fn load(args: &ServeArgs) -> Result<Embedder, StartError> {
    let mut options = EmbedderOptions::new()
        .with_max_length(args.max_input_tokens)
        .with_token_budget(args.token_budget);
    options = options.with_threads(args.threads.unwrap_or_else(default_threads));
    Embedder::try_new(&args.model, options).map_err(|source| StartError::LoadModel {
        path: args.model.clone(),
        source: Box::new(source),
    })
}

/// Returns the library's default thread count (one per physical core) minus one, at
/// least one.
///
/// The model's intra-op threads wait for each other at every operator, so one thread
/// delayed by the async runtime delays them all: in the load test on 2 cores
/// (docs/benchmarks.md), one model thread gave the server more throughput than two.
fn default_threads() -> usize {
    bge_m3::default_threads().saturating_sub(1).max(1)
}

/// Embeds the empty text once, so a broken model fails at start, and returns the
/// dense size.
fn warm_up(embedder: &Embedder) -> Result<usize, StartError> {
    let dense_only = Outputs {
        dense: true,
        sparse: false,
        colbert: false,
    };
    let embeddings = embedder
        .embed_with(&[""], dense_only, &mut |_| {})
        .map_err(|source| StartError::WarmUp {
            source: Box::new(source),
        })?;
    let dense = embeddings
        .first()
        .and_then(|embedding| embedding.dense.as_ref());
    Ok(dense.map_or(0, Vec::len))
}
