//! `POST /embed` and `POST /embed_sparse` with the request and response bodies of
//! text-embeddings-inference (`router/src/http/types.rs`), so its clients work
//! unchanged. Errors use its body shape, through [`TeiError`].

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use bge_m3::Outputs;
use serde::{Deserialize, Serialize};

use super::required;
use crate::body::{null_as_default, parse_json};
use crate::error::{ApiError, TeiError};
use crate::input::Inputs;
use crate::state::AppState;

/// The request body of both routes; `normalize` applies to `/embed` only.
#[derive(Debug, Deserialize)]
pub(super) struct EmbedRequest {
    inputs: Inputs,
    truncate: Option<bool>,
    #[serde(default, deserialize_with = "null_as_default")]
    truncation_direction: TruncationDirection,
    prompt_name: Option<String>,
    #[serde(default = "default_normalize")]
    normalize: bool,
}

fn default_normalize() -> bool {
    true
}

/// The end of a long input that truncation cuts. text-embeddings-inference accepts
/// both, but FlagEmbedding cuts BGE-M3 inputs at the end, so only `right` is accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(super) enum TruncationDirection {
    #[default]
    #[serde(rename = "right", alias = "Right")]
    Right,
    #[serde(rename = "left", alias = "Left")]
    Left,
}

/// One sparse weight, as text-embeddings-inference writes it.
#[derive(Debug, Serialize)]
pub(super) struct SparseValue {
    index: u32,
    value: f32,
}

/// Returns the dense vector of each input.
pub(super) async fn embed(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<Vec<f32>>>, TeiError> {
    let request: EmbedRequest = parse_json(body, state.limits().max_payload_bytes)?;
    if !request.normalize {
        return Err(ApiError::InvalidField {
            field: "normalize",
            reason: "false is not supported: the model returns L2-normalised dense vectors only"
                .to_owned(),
        }
        .into());
    }
    let outputs = Outputs {
        dense: true,
        sparse: false,
        colbert: false,
    };
    let embeddings = run(&state, request, outputs).await?;
    let vectors = embeddings
        .into_iter()
        .map(|embedding| required(embedding.dense, "dense"))
        .collect::<Result<_, _>>()?;
    Ok(Json(vectors))
}

/// Returns the sparse weights of each input, token ids ascending.
pub(super) async fn embed_sparse(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Vec<Vec<SparseValue>>>, TeiError> {
    let request: EmbedRequest = parse_json(body, state.limits().max_payload_bytes)?;
    let outputs = Outputs {
        dense: false,
        sparse: true,
        colbert: false,
    };
    let embeddings = run(&state, request, outputs).await?;
    let mut weights = Vec::with_capacity(embeddings.len());
    for embedding in embeddings {
        let sparse = required(embedding.sparse, "sparse")?;
        let values = sparse
            .entries
            .into_iter()
            .map(|(index, value)| SparseValue { index, value });
        weights.push(values.collect());
    }
    Ok(Json(weights))
}

async fn run(
    state: &AppState,
    request: EmbedRequest,
    outputs: Outputs,
) -> Result<Vec<bge_m3::Embedding>, ApiError> {
    if request.truncation_direction == TruncationDirection::Left {
        return Err(ApiError::InvalidField {
            field: "truncation_direction",
            reason: "left is not supported: BGE-M3 inputs are truncated at the end (right)"
                .to_owned(),
        });
    }
    if let Some(name) = request.prompt_name {
        return Err(ApiError::InvalidField {
            field: "prompt_name",
            reason: format!("{name:?} is not supported: BGE-M3 defines no prompts"),
        });
    }
    let truncation = state.truncation(request.truncate);
    state
        .embed(request.inputs, "inputs", outputs, truncation)
        .await
}
