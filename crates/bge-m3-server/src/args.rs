//! Flags of `bge-m3 serve`; each can also be set by an environment variable.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::builder::TypedValueParser as _;

use crate::auth::ApiKey;

/// Default max inputs in one request.
pub const DEFAULT_MAX_INPUTS: usize = 256;

/// Default max request body: 2 MiB, text-embeddings-inference's `--payload-limit`.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;

/// Default seconds to wait for the requests in flight after a shutdown signal, the
/// grace period that Kubernetes gives a pod by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: u64 = 30;

/// Default max tokens queued or running: 64 full batches of the default token budget.
pub const DEFAULT_MAX_QUEUED_TOKENS: usize = 64 * bge_m3::DEFAULT_TOKEN_BUDGET;

/// Flags of `bge-m3 serve`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "bge-m3 serve")]
pub struct ServeArgs {
    /// Model folder: model.onnx, its external data and tokenizer.json. It is not a
    /// flag of its own: `bge-m3 serve` resolves its `--model` (a folder or a Hub
    /// repository id) and sets it.
    #[arg(skip)]
    pub model: PathBuf,

    /// Model name returned in responses when a request names none (default: the Hub
    /// repository id, or the model folder's name).
    #[arg(long, env = "BGE_M3_MODEL_NAME")]
    pub model_name: Option<String>,

    /// IP address to listen on. The default accepts connections from this machine only.
    #[arg(long, env = "BGE_M3_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// TCP port to listen on; 0 picks a free port.
    #[arg(long, env = "BGE_M3_PORT", default_value_t = 8080)]
    pub port: u16,

    /// API key that clients must send as `Authorization: Bearer <key>` (every route
    /// but /health). Without it, the server needs no key.
    #[arg(long, env = "BGE_M3_API_KEY", hide_env_values = true)]
    pub api_key: Option<ApiKey>,

    /// Max tokens of one input, <s> and </s> included. A longer input gets 413, or is
    /// truncated when the request sets truncation.
    #[arg(long, env = "BGE_M3_MAX_INPUT_TOKENS", default_value_t = bge_m3::DEFAULT_MAX_LENGTH,
          value_parser = crate::flags::max_length)]
    pub max_input_tokens: usize,

    /// Truncate inputs over --max-input-tokens when a request has no truncate field,
    /// as /v1/embeddings never has.
    #[arg(long, env = "BGE_M3_AUTO_TRUNCATE")]
    pub auto_truncate: bool,

    /// Max inputs (texts) in one request; more get 413.
    #[arg(long, env = "BGE_M3_MAX_INPUTS", default_value_t = DEFAULT_MAX_INPUTS,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub max_inputs: usize,

    /// Max request body in bytes; a larger body gets 413.
    #[arg(long, env = "BGE_M3_MAX_PAYLOAD_BYTES", default_value_t = DEFAULT_MAX_PAYLOAD_BYTES,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub max_payload_bytes: usize,

    /// Max tokens queued or running at once; a request that does not fit gets 429
    /// with Retry-After. Must be at least --max-input-tokens.
    #[arg(long, env = "BGE_M3_MAX_QUEUED_TOKENS", default_value_t = DEFAULT_MAX_QUEUED_TOKENS)]
    pub max_queued_tokens: usize,

    /// Max padded tokens in one model call (texts × longest text).
    #[arg(long, env = "BGE_M3_TOKEN_BUDGET", default_value_t = bge_m3::DEFAULT_TOKEN_BUDGET,
          value_parser = crate::flags::token_budget)]
    pub token_budget: usize,

    /// ONNX Runtime intra-op threads (default: the physical cores available minus one,
    /// at least one, which leaves a core to HTTP, JSON and tokenization. 0 lets ONNX
    /// Runtime choose).
    #[arg(long, env = "BGE_M3_THREADS")]
    pub threads: Option<usize>,

    /// Seconds to wait for the requests in flight after Ctrl-C or SIGTERM before the
    /// remaining connections are closed. A second signal closes them at once.
    #[arg(long, env = "BGE_M3_SHUTDOWN_TIMEOUT", default_value_t = DEFAULT_SHUTDOWN_TIMEOUT)]
    pub shutdown_timeout: u64,
}

impl ServeArgs {
    /// Returns the flags for serving the model in `model`, every other flag at its
    /// default.
    pub fn for_model(model: impl Into<PathBuf>) -> Self {
        let mut args = <Self as clap::Parser>::parse_from(["bge-m3 serve"]);
        args.model = model.into();
        args
    }

    /// Returns the model name: `--model-name`, else the model folder's name.
    pub fn model_name(&self) -> String {
        if let Some(name) = &self.model_name {
            return name.clone();
        }
        self.model
            .canonicalize()
            .unwrap_or_else(|_| self.model.clone())
            .file_name()
            .map_or_else(
                || "bge-m3".to_owned(),
                |name| name.to_string_lossy().into_owned(),
            )
    }
}
