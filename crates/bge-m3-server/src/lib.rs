//! HTTP server for BGE-M3 embeddings: `bge-m3 serve`.
//!
//! axum on tokio. Handlers parse and check a request, tokenize it on the blocking
//! pool and hand the tokens to a queue whose worker thread runs the model
//! ([`bge_m3::Embedder`]) on batches merged across requests under the token budget.
//! Routes: the OpenAI embeddings API, text-embeddings-inference's `/embed` and
//! `/embed_sparse`, the native `/v1/encode` and `/tokenize`, and `/health`, `/info`,
//! `/metrics`, `/openapi.json`. See `docs/server.md`.
//!
//! ```no_run
//! use bge_m3_server::{app, AppState, ServeArgs};
//!
//! let state = AppState::try_new(&ServeArgs::for_model("models/bge-m3"))?;
//! let router = app(state);
//! # Ok::<(), bge_m3_server::StartError>(())
//! ```

#![deny(missing_docs)]

mod admission;
mod args;
mod auth;
mod body;
mod error;
pub mod flags;
mod input;
mod metrics;
mod openapi;
mod queue;
mod routes;
mod serve;
mod shutdown;
mod state;
mod tokenize;
mod vector;

pub use args::{
    ServeArgs, DEFAULT_MAX_INPUTS, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_MAX_QUEUED_TOKENS,
    DEFAULT_SHUTDOWN_TIMEOUT,
};
pub use auth::ApiKey;
pub use error::{ApiError, RETRY_AFTER_SECONDS};
pub use input::TOKEN_IDS_REJECTED;
pub use metrics::PREFIX as METRICS_PREFIX;
pub use queue::Worker;
pub use routes::{app, ROUTES};
pub use serve::{run, serve, Stopped};
pub use state::{AppState, Limits, ModelInfo, StartError};
