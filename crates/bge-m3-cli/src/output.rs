//! The JSON object written for each embedded text.
//!
//! `{"dense": [...], "sparse": {"<token id>": weight, ...}, "colbert": [[...], ...],
//! "tokens": n, "truncated": bool}`, with only the requested outputs present. Floats
//! are written in their shortest form that reads back as the same `f32`. Sparse ids
//! are in ascending order.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use bge_m3::{Embedding, MultiVector, SparseEmbedding, Tokenizer};

/// The output record of one text, borrowing from its [`Embedding`].
#[derive(Serialize)]
pub struct Record<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    dense: Option<&'a [f32]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sparse: Option<SparseMap<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    colbert: Option<Rows<'a>>,
    tokens: usize,
    truncated: bool,
}

impl<'a> Record<'a> {
    /// Borrows the outputs of one text; sparse weights are keyed by token text when a
    /// tokenizer is given, else by token id.
    pub fn new(embedding: &'a Embedding, token_texts: Option<&Tokenizer>) -> bge_m3::Result<Self> {
        let sparse = match (&embedding.sparse, token_texts) {
            (None, _) => None,
            (Some(sparse), None) => Some(SparseMap::ById(sparse)),
            (Some(sparse), Some(tokenizer)) => {
                Some(SparseMap::ByText(tokenizer.sparse_by_text(sparse)?))
            }
        };
        Ok(Self {
            dense: embedding.dense.as_deref(),
            sparse,
            colbert: embedding.colbert.as_ref().map(Rows),
            tokens: embedding.tokens,
            truncated: embedding.truncated,
        })
    }
}

enum SparseMap<'a> {
    ById(&'a SparseEmbedding),
    ByText(Vec<(String, f32)>),
}

impl Serialize for SparseMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::ById(sparse) => {
                let mut map = serializer.serialize_map(Some(sparse.len()))?;
                for (id, weight) in &sparse.entries {
                    map.serialize_entry(&id.to_string(), weight)?;
                }
                map.end()
            }
            Self::ByText(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (text, weight) in entries {
                    map.serialize_entry(text, weight)?;
                }
                map.end()
            }
        }
    }
}

struct Rows<'a>(&'a MultiVector);

impl Serialize for Rows<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.rows()))?;
        for row in self.0.iter() {
            seq.serialize_element(row)?;
        }
        seq.end()
    }
}
