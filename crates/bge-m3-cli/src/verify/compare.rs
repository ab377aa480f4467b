//! Comparing the engine's outputs for one text with a reference record.

use std::collections::{BTreeMap, BTreeSet};

use bge_m3::{Embedding, SparseEmbedding};
use serde::Deserialize;

/// One line of a reference dump (`python/dump_reference.py`).
#[derive(Debug, Deserialize)]
pub struct ReferenceRecord {
    /// The text.
    pub text: String,
    /// Max length the reference used, in tokens.
    pub max_length: usize,
    /// Token ids of the reference tokenizer.
    pub input_ids: Vec<u32>,
    /// Dense vector.
    pub dense: Vec<f32>,
    /// Sparse weights keyed by token id.
    pub sparse: BTreeMap<String, f32>,
    /// ColBERT rows.
    pub colbert: Vec<Vec<f32>>,
}

/// Max absolute differences a text may have and still pass.
#[derive(Debug, Clone, Copy)]
pub struct Tolerances {
    pub dense: f32,
    pub sparse: f32,
    pub colbert: f32,
}

/// The comparison of one text.
#[derive(Debug)]
pub struct TextComparison {
    pub ids_equal: bool,
    /// Value counts of the dense vectors: engine, reference.
    pub dense_lengths: (usize, usize),
    /// Whether every ColBERT row has as many values on both sides.
    pub colbert_row_lengths_equal: bool,
    pub tokens: usize,
    pub dense_cosine: f32,
    pub dense_max_diff: f32,
    pub sparse: SparseComparison,
    pub colbert_rows: (usize, usize),
    /// `None` when the row counts differ.
    pub colbert_max_diff: Option<f32>,
}

/// The comparison of the sparse weights of one text.
#[derive(Debug)]
pub struct SparseComparison {
    /// Token counts: engine, reference.
    pub counts: (usize, usize),
    pub same_keys: bool,
    /// Over the union of ids, a missing weight counting as 0.
    pub max_diff: f32,
    /// Top ids by weight of the engine.
    pub top_engine: Vec<(u32, f32)>,
    /// Top ids by weight of the reference.
    pub top_reference: Vec<(u32, f32)>,
}

const TOP_TOKENS: usize = 5;

impl TextComparison {
    /// Compares an embedding that has all three outputs with its reference.
    pub fn new(ours: &Embedding, ids: &[u32], reference: &ReferenceRecord) -> Self {
        let dense = ours.dense.as_deref().unwrap_or_default();
        let sparse = ours.sparse.clone().unwrap_or_default();
        let colbert = ours.colbert.clone().unwrap_or_default();
        let reference_rows = reference.colbert.len();
        let colbert_max_diff = (colbert.rows() == reference_rows).then(|| {
            colbert
                .iter()
                .zip(&reference.colbert)
                .map(|(row, expected)| max_abs_diff(row, expected))
                .fold(0.0, nan_max)
        });
        let colbert_row_lengths_equal = colbert
            .iter()
            .zip(&reference.colbert)
            .all(|(row, expected)| row.len() == expected.len());
        Self {
            ids_equal: ids == reference.input_ids,
            dense_lengths: (dense.len(), reference.dense.len()),
            colbert_row_lengths_equal,
            tokens: ours.tokens,
            dense_cosine: cosine(dense, &reference.dense),
            dense_max_diff: max_abs_diff(dense, &reference.dense),
            sparse: SparseComparison::new(&sparse, &reference.sparse),
            colbert_rows: (colbert.rows(), reference_rows),
            colbert_max_diff,
        }
    }

    /// Returns the reasons the text fails, empty when it passes.
    pub fn failures(&self, tolerances: Tolerances) -> Vec<String> {
        let mut reasons = Vec::new();
        if !self.ids_equal {
            reasons.push("token ids differ".to_owned());
        }
        if self.dense_lengths.0 != self.dense_lengths.1 {
            reasons.push(format!(
                "dense has {} values, the reference {}",
                self.dense_lengths.0, self.dense_lengths.1
            ));
        } else if !within(self.dense_max_diff, tolerances.dense) {
            reasons.push(format!("dense differs by {:e}", self.dense_max_diff));
        }
        if !self.sparse.same_keys {
            reasons.push("sparse token ids differ".to_owned());
        }
        if !within(self.sparse.max_diff, tolerances.sparse) {
            reasons.push(format!(
                "a sparse weight differs by {:e}",
                self.sparse.max_diff
            ));
        }
        if !self.colbert_row_lengths_equal {
            reasons.push("ColBERT rows have other lengths than the reference's".to_owned());
        }
        match self.colbert_max_diff {
            None => reasons.push(format!(
                "ColBERT has {} rows, the reference {}",
                self.colbert_rows.0, self.colbert_rows.1
            )),
            Some(diff) if !within(diff, tolerances.colbert) => {
                reasons.push(format!("ColBERT differs by {diff:e}"));
            }
            Some(_) => {}
        }
        reasons
    }
}

impl SparseComparison {
    fn new(ours: &SparseEmbedding, reference: &BTreeMap<String, f32>) -> Self {
        let reference: BTreeMap<u32, f32> = reference
            .iter()
            .map(|(id, weight)| (id.parse().unwrap_or(u32::MAX), *weight))
            .collect();
        let ours_map: BTreeMap<u32, f32> = ours.entries.iter().copied().collect();
        let keys: BTreeSet<u32> = ours_map.keys().chain(reference.keys()).copied().collect();
        let max_diff = keys
            .iter()
            .map(|id| {
                let a = ours_map.get(id).copied().unwrap_or(0.0);
                let b = reference.get(id).copied().unwrap_or(0.0);
                (a - b).abs()
            })
            .fold(0.0, nan_max);
        Self {
            counts: (ours_map.len(), reference.len()),
            same_keys: ours_map.keys().eq(reference.keys()),
            max_diff,
            top_engine: top_weights(&ours_map),
            top_reference: top_weights(&reference),
        }
    }
}

/// Returns whether a difference is within the tolerance; NaN never is.
fn within(diff: f32, tolerance: f32) -> bool {
    diff <= tolerance
}

fn top_weights(weights: &BTreeMap<u32, f32>) -> Vec<(u32, f32)> {
    let mut sorted: Vec<(u32, f32)> = weights.iter().map(|(&id, &w)| (id, w)).collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    sorted.truncate(TOP_TOKENS);
    sorted
}

/// Returns the largest absolute difference, or infinity when the lengths differ.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, nan_max)
}

/// Returns the larger value, or NaN when either is NaN (`f32::max` drops NaN, which
/// would let a NaN in the reference pass).
fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms =
        a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norms > 0.0 {
        dot / norms
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bge_m3::MultiVector;

    fn reference() -> ReferenceRecord {
        ReferenceRecord {
            text: "t".to_owned(),
            max_length: 8192,
            input_ids: vec![0, 5, 2],
            dense: vec![0.6, 0.8],
            sparse: BTreeMap::from([("5".to_owned(), 0.25)]),
            colbert: vec![vec![1.0, 0.0], vec![0.0, 1.0]],
        }
    }

    fn ours() -> Embedding {
        Embedding {
            dense: Some(vec![0.6, 0.8]),
            sparse: Some(SparseEmbedding {
                entries: vec![(5, 0.25)],
            }),
            colbert: Some(MultiVector {
                dim: 2,
                data: vec![1.0, 0.0, 0.0, 1.0],
            }),
            tokens: 3,
            truncated: false,
        }
    }

    const TOLERANCES: Tolerances = Tolerances {
        dense: 1e-5,
        sparse: 1e-5,
        colbert: 1e-5,
    };

    #[test]
    fn equal_outputs_pass() {
        let comparison = TextComparison::new(&ours(), &[0, 5, 2], &reference());
        assert!(comparison.failures(TOLERANCES).is_empty());
        assert!((comparison.dense_cosine - 1.0).abs() < 1e-6);
    }

    #[test]
    fn altered_weight_fails() {
        let mut altered = reference();
        altered.sparse.insert("5".to_owned(), 0.251);
        let comparison = TextComparison::new(&ours(), &[0, 5, 2], &altered);
        let failures = comparison.failures(TOLERANCES);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("sparse weight"));
    }

    #[test]
    fn missing_sparse_key_fails() {
        let mut altered = reference();
        altered.sparse.insert("9".to_owned(), 0.1);
        let comparison = TextComparison::new(&ours(), &[0, 5, 2], &altered);
        assert!(!comparison.sparse.same_keys);
        assert_eq!(comparison.sparse.counts, (1, 2));
        assert!((comparison.sparse.max_diff - 0.1).abs() < 1e-7);
    }

    #[test]
    fn other_ids_and_rows_fail() {
        let mut altered = reference();
        altered.colbert.pop();
        let comparison = TextComparison::new(&ours(), &[0, 6, 2], &altered);
        let failures = comparison.failures(TOLERANCES);
        assert!(
            failures.iter().any(|f| f.contains("token ids")),
            "{failures:?}"
        );
        assert!(failures.iter().any(|f| f.contains("rows")), "{failures:?}");
    }

    #[test]
    fn other_lengths_fail_at_any_tolerance() {
        let mut altered = reference();
        altered.dense.pop();
        altered.colbert[1].pop();
        let comparison = TextComparison::new(&ours(), &[0, 5, 2], &altered);
        let infinite = Tolerances {
            dense: f32::INFINITY,
            sparse: f32::INFINITY,
            colbert: f32::INFINITY,
        };
        let failures = comparison.failures(infinite);
        assert!(
            failures.iter().any(|f| f.contains("dense has 2 values")),
            "{failures:?}"
        );
        assert!(
            failures.iter().any(|f| f.contains("other lengths")),
            "{failures:?}"
        );
    }

    #[test]
    fn nan_difference_fails() {
        let mut altered = reference();
        altered.dense[0] = f32::NAN;
        let comparison = TextComparison::new(&ours(), &[0, 5, 2], &altered);
        assert!(comparison
            .failures(TOLERANCES)
            .iter()
            .any(|f| f.contains("dense")));
    }
}
