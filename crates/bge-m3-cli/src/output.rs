//! The JSON object written for each embedded text.
//!
//! `{"dense": [...], "sparse": {"<token id>": weight, ...}, "colbert": [[...], ...],
//! "tokens": n, "truncated": bool}`, with only the requested outputs present. Floats
//! are written in their shortest form that reads back as the same `f32`. Sparse ids
//! are in ascending order.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use bge_m3::{Embedding, MultiVector, SparseEmbedding};

/// The output record of one text, borrowing from its [`Embedding`].
#[derive(Serialize)]
pub struct Record<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    dense: Option<&'a [f32]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sparse: Option<SparseById<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    colbert: Option<Rows<'a>>,
    tokens: usize,
    truncated: bool,
}

impl<'a> Record<'a> {
    /// Borrows the outputs of one text.
    pub fn new(embedding: &'a Embedding) -> Self {
        Self {
            dense: embedding.dense.as_deref(),
            sparse: embedding.sparse.as_ref().map(SparseById),
            colbert: embedding.colbert.as_ref().map(Rows),
            tokens: embedding.tokens,
            truncated: embedding.truncated,
        }
    }
}

struct SparseById<'a>(&'a SparseEmbedding);

impl Serialize for SparseById<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (id, weight) in &self.0.entries {
            map.serialize_entry(&id.to_string(), weight)?;
        }
        map.end()
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
