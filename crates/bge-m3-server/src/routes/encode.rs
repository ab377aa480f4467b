//! `POST /v1/encode`: any of the dense, sparse and ColBERT outputs of each input,
//! from one forward pass.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use bge_m3::{Embedding, MultiVector, Outputs, SparseEmbedding, Tokenizer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::{required, Usage};
use crate::body::{null_as_default, parse_json};
use crate::error::ApiError;
use crate::input::Inputs;
use crate::state::AppState;
use crate::vector::{EncodingFormat, Vector};

#[derive(Debug, Deserialize)]
pub(super) struct EncodeRequest {
    input: Inputs,
    model: Option<String>,
    #[serde(default = "all_outputs")]
    outputs: Vec<OutputName>,
    truncate: Option<bool>,
    #[serde(default, deserialize_with = "null_as_default")]
    sparse_format: SparseFormat,
    #[serde(default, deserialize_with = "null_as_default")]
    encoding_format: EncodingFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum OutputName {
    Dense,
    Sparse,
    Colbert,
}

fn all_outputs() -> Vec<OutputName> {
    vec![OutputName::Dense, OutputName::Sparse, OutputName::Colbert]
}

/// The keys of the sparse weights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum SparseFormat {
    /// `{"indices": [token ids, ascending], "values": [weights]}`.
    #[default]
    Ids,
    /// `{"<token text>": weight, ...}`, in ascending token id order.
    Tokens,
}

#[derive(Debug, Serialize)]
pub(super) struct EncodeResponse {
    model: String,
    data: Vec<EncodedText>,
    usage: Usage,
}

#[derive(Debug, Serialize)]
pub(super) struct EncodedText {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    dense: Option<Vector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sparse: Option<Sparse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    colbert: Option<Vec<Vector>>,
    tokens: usize,
    truncated: bool,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum Sparse {
    Ids { indices: Vec<u32>, values: Vec<f32> },
    Tokens(TokenWeights),
}

/// Weights keyed by token text, written as a JSON object in token id order.
#[derive(Debug)]
pub(super) struct TokenWeights(Vec<(String, f32)>);

impl Serialize for TokenWeights {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (token, weight) in &self.0 {
            map.serialize_entry(token, weight)?;
        }
        map.end()
    }
}

/// Embeds the inputs and returns the requested outputs of each.
pub(super) async fn encode(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EncodeResponse>, ApiError> {
    let request: EncodeRequest = parse_json(body, state.limits().max_payload_bytes)?;
    let outputs = select_outputs(&request.outputs)?;
    let truncation = state.truncation(request.truncate);
    let embeddings = state
        .embed(request.input, "input", outputs, truncation)
        .await?;

    let usage = Usage::of(&embeddings);
    let embedder = state.embedder();
    let format = Format {
        outputs,
        sparse: request.sparse_format,
        vectors: request.encoding_format,
        tokenizer: embedder.tokenizer(),
    };
    let data = embeddings
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| format.text(index, embedding))
        .collect::<Result<_, _>>()?;
    Ok(Json(EncodeResponse {
        model: request.model.unwrap_or_else(|| state.info().name.clone()),
        data,
        usage,
    }))
}

fn select_outputs(names: &[OutputName]) -> Result<Outputs, ApiError> {
    if names.is_empty() {
        return Err(ApiError::InvalidField {
            field: "outputs",
            reason: "the array is empty; request at least one of dense, sparse and colbert"
                .to_owned(),
        });
    }
    Ok(Outputs {
        dense: names.contains(&OutputName::Dense),
        sparse: names.contains(&OutputName::Sparse),
        colbert: names.contains(&OutputName::Colbert),
    })
}

/// The response format of each text's outputs.
pub(super) struct Format<'a> {
    outputs: Outputs,
    sparse: SparseFormat,
    vectors: EncodingFormat,
    tokenizer: &'a Tokenizer,
}

impl Format<'_> {
    fn text(&self, index: usize, embedding: Embedding) -> Result<EncodedText, ApiError> {
        let mut text = EncodedText {
            index,
            dense: None,
            sparse: None,
            colbert: None,
            tokens: embedding.tokens,
            truncated: embedding.truncated,
        };
        if self.outputs.dense {
            text.dense = Some(self.vectors.encode(required(embedding.dense, "dense")?));
        }
        if self.outputs.sparse {
            text.sparse = Some(self.sparse(required(embedding.sparse, "sparse")?, index)?);
        }
        if self.outputs.colbert {
            text.colbert = Some(self.colbert(required(embedding.colbert, "ColBERT")?));
        }
        Ok(text)
    }

    fn sparse(&self, sparse: SparseEmbedding, index: usize) -> Result<Sparse, ApiError> {
        let sparse = match self.sparse {
            SparseFormat::Ids => {
                let (indices, values) = sparse.entries.into_iter().unzip();
                Sparse::Ids { indices, values }
            }
            SparseFormat::Tokens => {
                let weights = self.tokenizer.sparse_by_text(&sparse).map_err(|error| {
                    ApiError::ModelFailed {
                        message: format!("input {index}: {error}"),
                    }
                })?;
                Sparse::Tokens(TokenWeights(weights))
            }
        };
        Ok(sparse)
    }

    fn colbert(&self, colbert: MultiVector) -> Vec<Vector> {
        colbert
            .iter()
            .map(|row| self.vectors.encode(row.to_vec()))
            .collect()
    }
}
