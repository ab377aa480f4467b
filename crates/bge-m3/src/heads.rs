//! The three outputs of one text, cut from the batch tensors.
//!
//! These follow FlagEmbedding 1.4.2, `inference/embedder/encoder_only/m3.py`:
//! `_process_token_weights` for sparse and `_process_colbert_vecs` for ColBERT. The
//! functions are pure and take the rows of one text, so they do not depend on what
//! else was in the batch.

use crate::error::{Error, Result};
use crate::tokenizer::SpecialIds;

/// Sparse (lexical) weights: token id and weight, ids ascending, weights > 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseEmbedding {
    /// `(token id, weight)` pairs, sorted by id, each id once.
    pub entries: Vec<(u32, f32)>,
}

impl SparseEmbedding {
    /// Returns the weight of a token id, if it has one.
    pub fn weight(&self, id: u32) -> Option<f32> {
        self.entries
            .binary_search_by_key(&id, |&(entry_id, _)| entry_id)
            .ok()
            .map(|index| self.entries[index].1)
    }

    /// Returns the number of token ids with a weight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns whether no token has a weight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// ColBERT multi-vector: one normalised row per token except `<s>`, `</s>` included.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MultiVector {
    /// Length of each row (1024 for BGE-M3).
    pub dim: usize,
    /// The rows, concatenated: `rows() * dim` values.
    pub data: Vec<f32>,
}

impl MultiVector {
    /// Returns the number of rows.
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Returns the rows as slices of `dim` values.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[f32]> + '_ {
        self.data.chunks_exact(self.dim.max(1))
    }
}

/// Builds the sparse weights of one text from its token ids and per-token weights.
///
/// As in FlagEmbedding: the special ids are dropped, only weights > 0 are kept, and
/// an id that occurs several times keeps its maximum weight. A NaN or infinite
/// weight at any of the text's positions is an error, not a silent drop.
pub fn sparse_from_token_weights(
    ids: &[u32],
    weights: &[f32],
    special_ids: &SpecialIds,
    input_index: usize,
) -> Result<SparseEmbedding> {
    if weights.iter().any(|weight| !weight.is_finite()) {
        return Err(Error::NonFinite {
            input_index,
            output: "sparse",
        });
    }
    let mut entries: Vec<(u32, f32)> = ids
        .iter()
        .zip(weights)
        .filter(|&(&id, &weight)| weight > 0.0 && !special_ids.contains(id))
        .map(|(&id, &weight)| (id, weight))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    // After the sort the first entry of each id has its maximum weight.
    entries.dedup_by_key(|entry| entry.0);
    Ok(SparseEmbedding { entries })
}

/// Copies the dense vector of one text, checking that it is finite.
pub fn dense_from_row(row: &[f32], input_index: usize) -> Result<Vec<f32>> {
    ensure_finite(row, input_index, "dense")?;
    Ok(row.to_vec())
}

/// Keeps the first `tokens - 1` ColBERT rows of one text: every token but `<s>`,
/// `</s>` included, no padding.
pub fn colbert_from_rows(
    rows: &[f32],
    dim: usize,
    tokens: usize,
    input_index: usize,
) -> Result<MultiVector> {
    let kept = &rows[..tokens.saturating_sub(1) * dim];
    ensure_finite(kept, input_index, "colbert")?;
    Ok(MultiVector {
        dim,
        data: kept.to_vec(),
    })
}

fn ensure_finite(values: &[f32], input_index: usize, output: &'static str) -> Result<()> {
    if values.iter().all(|value| value.is_finite()) {
        Ok(())
    } else {
        Err(Error::NonFinite {
            input_index,
            output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECIAL: SpecialIds = SpecialIds {
        cls: 0,
        pad: 1,
        eos: 2,
        unk: 3,
    };

    #[test]
    fn sparse_drops_special_ids() {
        let ids = [0, 10, 3, 11, 2, 1];
        let weights = [0.9, 0.5, 0.8, 0.4, 0.7, 0.6];
        let sparse = sparse_from_token_weights(&ids, &weights, &SPECIAL, 0).unwrap();
        assert_eq!(sparse.entries, vec![(10, 0.5), (11, 0.4)]);
    }

    #[test]
    fn sparse_keeps_only_positive_weights() {
        let ids = [0, 10, 11, 12, 2];
        let weights = [0.0, 0.0, -0.0, 0.25, 0.0];
        let sparse = sparse_from_token_weights(&ids, &weights, &SPECIAL, 0).unwrap();
        assert_eq!(sparse.entries, vec![(12, 0.25)]);
    }

    #[test]
    fn sparse_repeated_id_keeps_maximum() {
        let ids = [0, 20, 10, 20, 20, 2];
        let weights = [0.1, 0.2, 0.3, 0.9, 0.4, 0.1];
        let sparse = sparse_from_token_weights(&ids, &weights, &SPECIAL, 0).unwrap();
        assert_eq!(sparse.entries, vec![(10, 0.3), (20, 0.9)]);
        assert_eq!(sparse.weight(20), Some(0.9));
        assert_eq!(sparse.weight(21), None);
    }

    #[test]
    fn sparse_nan_is_an_error() {
        let ids = [0, 10, 2];
        let weights = [0.1, f32::NAN, 0.1];
        let error = sparse_from_token_weights(&ids, &weights, &SPECIAL, 7).unwrap_err();
        assert!(matches!(
            error,
            Error::NonFinite {
                input_index: 7,
                output: "sparse"
            }
        ));
    }

    #[test]
    fn colbert_drops_padding_rows() {
        let rows = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let vectors = colbert_from_rows(&rows, 2, 3, 0).unwrap();
        assert_eq!(vectors.rows(), 2);
        assert_eq!(vectors.data, vec![1.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn colbert_infinity_is_an_error() {
        let rows = [1.0, f32::INFINITY, 0.0, 0.0];
        let error = colbert_from_rows(&rows, 2, 2, 3).unwrap_err();
        assert!(matches!(
            error,
            Error::NonFinite {
                input_index: 3,
                output: "colbert"
            }
        ));
    }

    #[test]
    fn dense_nan_is_an_error() {
        let error = dense_from_row(&[0.5, f32::NAN], 1).unwrap_err();
        assert!(matches!(
            error,
            Error::NonFinite {
                input_index: 1,
                output: "dense"
            }
        ));
    }
}
