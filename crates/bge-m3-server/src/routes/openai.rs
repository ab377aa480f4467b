//! `POST /v1/embeddings`: the OpenAI embeddings API, dense vectors only.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use bge_m3::Outputs;
use serde::{Deserialize, Serialize};

use super::{required, Usage};
use crate::body::{null_as_default, parse_json};
use crate::error::ApiError;
use crate::input::Inputs;
use crate::state::AppState;
use crate::vector::{EncodingFormat, Vector};

/// The request body. Other fields of the OpenAI API, such as `user`, are ignored.
#[derive(Debug, Deserialize)]
pub(super) struct EmbeddingsRequest {
    input: Inputs,
    model: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    encoding_format: EncodingFormat,
    dimensions: Option<usize>,
}

#[derive(Debug, Serialize)]
pub(super) struct EmbeddingsResponse {
    object: &'static str,
    data: Vec<EmbeddingObject>,
    model: String,
    usage: Usage,
}

#[derive(Debug, Serialize)]
pub(super) struct EmbeddingObject {
    object: &'static str,
    embedding: Vector,
    index: usize,
}

/// Embeds the inputs and returns their dense vectors. There is no truncation field,
/// so an input over the max input tokens gets 413 unless the server runs with
/// `--auto-truncate`.
pub(super) async fn embeddings(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EmbeddingsResponse>, ApiError> {
    let request: EmbeddingsRequest = parse_json(body, state.limits().max_payload_bytes)?;
    check_dimensions(request.dimensions, state.info().dimensions)?;
    let outputs = Outputs {
        dense: true,
        sparse: false,
        colbert: false,
    };
    let truncation = state.truncation_without_field();
    let embeddings = state
        .embed(request.input, "input", outputs, truncation)
        .await?;

    let usage = Usage::of(&embeddings);
    let mut data = Vec::with_capacity(embeddings.len());
    for (index, embedding) in embeddings.into_iter().enumerate() {
        let dense = required(embedding.dense, "dense")?;
        data.push(EmbeddingObject {
            object: "embedding",
            embedding: request.encoding_format.encode(dense),
            index,
        });
    }
    Ok(Json(EmbeddingsResponse {
        object: "list",
        data,
        model: request.model.unwrap_or_else(|| state.info().name.clone()),
        usage,
    }))
}

/// Accepts only the model's own dense size: BGE-M3 was not trained for shortened
/// (Matryoshka) vectors, so cutting them would lose accuracy without any warning.
fn check_dimensions(requested: Option<usize>, dimensions: usize) -> Result<(), ApiError> {
    match requested {
        Some(requested) if requested != dimensions => Err(ApiError::InvalidField {
            field: "dimensions",
            reason: format!(
                "{requested} is not supported: the model gives {dimensions} dimensions and was \
                 not trained for shorter vectors; omit the field or send {dimensions}"
            ),
        }),
        _ => Ok(()),
    }
}
