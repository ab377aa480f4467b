//! `POST /tokenize`: the token ids and token texts the model gets for each input.
//!
//! The body differs from text-embeddings-inference's `/tokenize`, which also returns
//! character offsets; `inputs` is accepted as a name for `input`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::body::parse_json;
use crate::error::ApiError;
use crate::input::Inputs;
use crate::state::AppState;
use crate::tokenize::{tokenize as tokenize_texts, Truncation};

#[derive(Debug, Deserialize)]
pub(super) struct TokenizeRequest {
    /// The texts, under this project's name for them.
    input: Option<Inputs>,
    /// The texts, under text-embeddings-inference's name for them.
    inputs: Option<Inputs>,
    /// Whether `<s>` and `</s>` are listed, as in text-embeddings-inference.
    #[serde(default = "on_by_default")]
    add_special_tokens: bool,
    /// Whether an input over the max input tokens is cut (else 413), as in
    /// text-embeddings-inference.
    #[serde(default = "on_by_default")]
    truncate: bool,
}

fn on_by_default() -> bool {
    true
}

#[derive(Debug, Serialize)]
pub(super) struct TokenizeResponse {
    data: Vec<TokenizedInput>,
}

#[derive(Debug, Serialize)]
pub(super) struct TokenizedInput {
    index: usize,
    /// Token ids, `<s>` first and `</s>` last, cut to the max input tokens.
    ids: Vec<u32>,
    /// The vocabulary text of each id.
    tokens: Vec<String>,
    /// Whether the input was longer than the max input tokens and was cut.
    truncated: bool,
}

/// Tokenizes the inputs as the embedding routes do with truncation on.
pub(super) async fn tokenize(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TokenizeResponse>, ApiError> {
    let request: TokenizeRequest = parse_json(body, state.limits().max_payload_bytes)?;
    let input = match (request.input, request.inputs) {
        (Some(input), None) | (None, Some(input)) => input,
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidField {
                field: "input",
                reason: "the body has both input and inputs; send the texts in one of them"
                    .to_owned(),
            })
        }
        (None, None) => {
            return Err(ApiError::InvalidField {
                field: "input",
                reason: "missing field: send the texts in input (or inputs)".to_owned(),
            })
        }
    };
    let texts = state.check_inputs(input, "input")?;
    let embedder = state.embedder();
    let truncation = Truncation::from_request(Some(request.truncate), true);
    let tokenized = tokenize_texts(embedder.clone(), texts, truncation).await?;
    let tokenizer = embedder.tokenizer();
    let data = tokenized
        .into_iter()
        .enumerate()
        .map(|(index, text)| {
            // The model always gets `<s>` first and `</s>` last.
            let ids = if request.add_special_tokens {
                text.ids
            } else {
                let inner = 1..text.ids.len().saturating_sub(1);
                text.ids.get(inner).unwrap_or_default().to_vec()
            };
            TokenizedInput {
                index,
                tokens: ids
                    .iter()
                    .map(|&id| tokenizer.id_to_token(id).unwrap_or_default())
                    .collect(),
                ids,
                truncated: text.truncated,
            }
        })
        .collect();
    Ok(Json(TokenizeResponse { data }))
}
