//! Tokenizing the inputs of a request and applying the per-input token limit.
//!
//! Tokenizing runs on tokio's blocking thread pool: a long text takes milliseconds of
//! CPU, which must not stall the async runtime.

use std::sync::Arc;

use bge_m3::{Embedder, TokenizedText};

use crate::error::ApiError;

/// The handling of an input longer than the max input tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Cut it to the max input tokens and embed it.
    Truncate,
    /// Reject the request with 413 and the input's token count.
    Reject,
    /// Reject it as `Reject` does, on a route whose requests have no truncate field.
    RejectWithoutField,
}

impl Truncation {
    /// Returns the truncation a request asked for, else the server's default.
    pub fn from_request(requested: Option<bool>, auto_truncate: bool) -> Self {
        if requested.unwrap_or(auto_truncate) {
            Self::Truncate
        } else {
            Self::Reject
        }
    }

    /// Returns the server's default, for a route whose requests have no truncate field.
    pub fn without_field(auto_truncate: bool) -> Self {
        if auto_truncate {
            Self::Truncate
        } else {
            Self::RejectWithoutField
        }
    }

    /// Returns the advice for an input over the limit.
    fn advice(self) -> &'static str {
        match self {
            Self::RejectWithoutField => {
                "shorten it, start the server with --auto-truncate, or send it to /v1/encode \
                 with \"truncate\": true"
            }
            Self::Truncate | Self::Reject => "shorten it or set \"truncate\": true",
        }
    }
}

/// Tokenizes `texts` in request order.
pub async fn tokenize(
    embedder: Arc<Embedder>,
    texts: Vec<String>,
    truncation: Truncation,
) -> Result<Vec<TokenizedText>, ApiError> {
    tokio::task::spawn_blocking(move || tokenize_all(&embedder, &texts, truncation))
        .await
        .map_err(|error| ApiError::ModelFailed {
            message: format!("the tokenizer task failed: {error}"),
        })?
}

fn tokenize_all(
    embedder: &Embedder,
    texts: &[String],
    truncation: Truncation,
) -> Result<Vec<TokenizedText>, ApiError> {
    let tokenizer = embedder.tokenizer();
    let max_length = embedder.options().max_length;
    let mut tokenized = Vec::with_capacity(texts.len());
    for (index, text) in texts.iter().enumerate() {
        let encoded = tokenizer
            .encode(text, max_length, index)
            .map_err(|error| tokenize_error(index, &error))?;
        if encoded.truncated && truncation != Truncation::Truncate {
            let tokens = tokenizer
                .count_tokens(text, index)
                .map_err(|error| tokenize_error(index, &error))?;
            return Err(ApiError::InputTooLong {
                input_index: index,
                tokens,
                max: max_length,
                advice: truncation.advice(),
            });
        }
        tokenized.push(encoded);
    }
    Ok(tokenized)
}

fn tokenize_error(input_index: usize, error: &bge_m3::Error) -> ApiError {
    let reason =
        std::error::Error::source(error).map_or_else(|| error.to_string(), ToString::to_string);
    ApiError::Tokenize {
        input_index,
        reason,
    }
}
