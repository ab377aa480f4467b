//! Relevance scores between a query and a passage, as FlagEmbedding 1.4.2 computes
//! them (`inference/embedder/encoder_only/m3.py`, `M3Embedder`).
//!
//! - dense: inner product of the two normalised vectors;
//! - lexical matching (sparse): the sum, over the token ids present in both texts, of
//!   the product of their weights. It is not normalised, so a text scored against
//!   itself does not give 1;
//! - ColBERT: for each query row, the max dot product over the passage rows, summed
//!   and divided by the number of query rows. Padding rows never count.
//!
//! All sums run in `f32`, as the reference does on CPU in fp32.

use crate::error::{Error, Result};
use crate::heads::{MultiVector, SparseEmbedding};

/// Weights of the dense, sparse and ColBERT scores in the combined scores.
///
/// FlagEmbedding's `compute_score` uses `[1.0, 1.0, 1.0]` when none are given; its
/// README shows `[0.4, 0.2, 0.4]` as an example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreWeights {
    /// Weight of the dense score.
    pub dense: f32,
    /// Weight of the sparse (lexical matching) score.
    pub sparse: f32,
    /// Weight of the ColBERT score.
    pub colbert: f32,
}

impl ScoreWeights {
    /// The example weights `[0.4, 0.2, 0.4]` of FlagEmbedding's README.
    pub const README_EXAMPLE: Self = Self {
        dense: 0.4,
        sparse: 0.2,
        colbert: 0.4,
    };
}

impl ScoreWeights {
    /// Checks that the weights give finite combined scores: each is finite, and the
    /// sums `dense + sparse` and `dense + sparse + colbert` are positive.
    pub fn validate(&self) -> Result<()> {
        let all_finite = [self.dense, self.sparse, self.colbert]
            .iter()
            .all(|w| w.is_finite());
        let pair_sum = f64::from(self.dense) + f64::from(self.sparse);
        let total = pair_sum + f64::from(self.colbert);
        if all_finite && pair_sum > 0.0 && total > 0.0 {
            return Ok(());
        }
        Err(Error::InvalidOption {
            name: "score weights",
            value: format!("{},{},{}", self.dense, self.sparse, self.colbert),
            reason: "each must be finite, and both dense + sparse and dense + sparse + colbert \
                     must be positive"
                .to_owned(),
        })
    }
}

impl Default for ScoreWeights {
    fn default() -> Self {
        Self {
            dense: 1.0,
            sparse: 1.0,
            colbert: 1.0,
        }
    }
}

/// The five scores of `compute_score` for one query/passage pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairScores {
    /// Dense score.
    pub dense: f32,
    /// Sparse (lexical matching) score.
    pub sparse: f32,
    /// ColBERT score.
    pub colbert: f32,
    /// `(sparse × w_sparse + dense × w_dense) / (w_sparse + w_dense)`.
    pub sparse_dense: f32,
    /// `(colbert × w_colbert + sparse × w_sparse + dense × w_dense) / (w_dense + w_sparse + w_colbert)`.
    pub colbert_sparse_dense: f32,
}

impl PairScores {
    /// Combines the three scores with the weights, as `compute_score` does.
    ///
    /// The weighted means are computed in `f64`, so that extreme weights cannot
    /// overflow; with weights that pass [`ScoreWeights::validate`] they are finite.
    pub fn combine(dense: f32, sparse: f32, colbert: f32, weights: ScoreWeights) -> Self {
        let (d, s, c) = (f64::from(dense), f64::from(sparse), f64::from(colbert));
        let w_d = f64::from(weights.dense);
        let w_s = f64::from(weights.sparse);
        let w_c = f64::from(weights.colbert);
        let sparse_dense = (s * w_s + d * w_d) / (w_s + w_d);
        let colbert_sparse_dense = (c * w_c + s * w_s + d * w_d) / (w_d + w_s + w_c);
        Self {
            dense,
            sparse,
            colbert,
            sparse_dense: sparse_dense as f32,
            colbert_sparse_dense: colbert_sparse_dense as f32,
        }
    }
}

/// Returns the inner product of two dense vectors of equal length.
pub fn dense_score(query: &[f32], passage: &[f32]) -> f32 {
    debug_assert_eq!(query.len(), passage.len());
    query.iter().zip(passage).map(|(q, p)| q * p).sum()
}

/// Returns the lexical matching score: the sum of weight products over shared ids.
///
/// Both sides keep their ids in ascending order, so one merge pass finds the shared
/// ids. Empty weights on either side score 0.
pub fn lexical_matching_score(query: &SparseEmbedding, passage: &SparseEmbedding) -> f32 {
    let (mut q, mut p) = (
        query.entries.iter().peekable(),
        passage.entries.iter().peekable(),
    );
    let mut score = 0.0f32;
    while let (Some(&&(q_id, q_weight)), Some(&&(p_id, p_weight))) = (q.peek(), p.peek()) {
        match q_id.cmp(&p_id) {
            std::cmp::Ordering::Less => {
                q.next();
            }
            std::cmp::Ordering::Greater => {
                p.next();
            }
            std::cmp::Ordering::Equal => {
                score += q_weight * p_weight;
                q.next();
                p.next();
            }
        }
    }
    score
}

/// Returns the ColBERT score: the mean over query rows of the max dot product with
/// any passage row. Returns 0 when either side has no rows, which the engine never
/// produces (every text keeps at least the `</s>` row).
pub fn colbert_score(query: &MultiVector, passage: &MultiVector) -> f32 {
    if query.rows() == 0 || passage.rows() == 0 {
        return 0.0;
    }
    let total: f32 = query
        .iter()
        .map(|q_row| {
            passage
                .iter()
                .map(|p_row| dense_score(q_row, p_row))
                .fold(f32::NEG_INFINITY, f32::max)
        })
        .sum();
    total / query.rows() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sparse(entries: &[(u32, f32)]) -> SparseEmbedding {
        SparseEmbedding {
            entries: entries.to_vec(),
        }
    }

    fn rows(dim: usize, data: &[f32]) -> MultiVector {
        MultiVector {
            dim,
            data: data.to_vec(),
        }
    }

    fn assert_near(found: f32, expected: f32) {
        assert!(
            (found - expected).abs() < 1e-6,
            "found {found}, expected {expected}"
        );
    }

    #[test]
    fn lexical_score_with_itself() {
        let a = sparse(&[(100, 0.3), (200, 0.4)]);
        assert_near(lexical_matching_score(&a, &a), 0.25);
    }

    #[test]
    fn lexical_score_partial_overlap() {
        let a = sparse(&[(100, 0.3), (200, 0.4)]);
        let b = sparse(&[(200, 0.5), (300, 0.9)]);
        assert_near(lexical_matching_score(&a, &b), 0.2);
        assert_near(lexical_matching_score(&b, &a), 0.2);
    }

    #[test]
    fn lexical_score_no_overlap_is_zero() {
        let a = sparse(&[(100, 0.3), (200, 0.4)]);
        let b = sparse(&[(400, 1.0)]);
        assert_eq!(lexical_matching_score(&a, &b), 0.0);
        assert_eq!(lexical_matching_score(&a, &sparse(&[])), 0.0);
    }

    #[test]
    fn colbert_score_stays_in_unit_range() {
        let s = std::f32::consts::FRAC_1_SQRT_2;
        let query = rows(2, &[1.0, 0.0, 0.0, -1.0, s, s]);
        let passages = [
            rows(2, &[1.0, 0.0]),
            rows(2, &[-1.0, 0.0, 0.0, 1.0]),
            rows(2, &[0.0, -1.0, 1.0, 0.0, -s, -s]),
        ];
        for passage in &passages {
            let score = colbert_score(&query, passage);
            assert!((-1.0..=1.0).contains(&score), "score {score}");
        }
        assert_near(colbert_score(&query, &query), 1.0);
        // Best matches among the opposite rows: 0 for (1, 0), s for (0, -1) and (s, s).
        let opposite = rows(2, &[-1.0, 0.0, 0.0, 1.0, -s, -s]);
        assert_near(colbert_score(&query, &opposite), 2.0 * s / 3.0);
    }

    #[test]
    fn colbert_score_of_opposite_rows_is_negative() {
        let query = rows(2, &[1.0, 0.0]);
        let passage = rows(2, &[-1.0, 0.0]);
        assert_near(colbert_score(&query, &passage), -1.0);
    }

    #[test]
    fn weights_that_overflow_stay_finite() {
        let huge = ScoreWeights {
            dense: 3e38,
            sparse: 3e38,
            colbert: 3e38,
        };
        assert!(huge.validate().is_ok());
        let scores = PairScores::combine(0.9, 0.3, 0.6, huge);
        assert_near(scores.sparse_dense, 0.6);
        assert_near(scores.colbert_sparse_dense, 0.6);
    }

    #[test]
    fn invalid_weights_are_rejected() {
        let cases = [
            [0.0, 0.0, 0.0],
            [0.0, 0.0, 1.0],
            [f32::NAN, 1.0, 1.0],
            [f32::INFINITY, 1.0, 1.0],
            [1.0, -1.0, 0.5],
        ];
        for [dense, sparse, colbert] in cases {
            let weights = ScoreWeights {
                dense,
                sparse,
                colbert,
            };
            assert!(weights.validate().is_err(), "{weights:?}");
        }
    }

    #[test]
    fn combine_matches_reference_formula() {
        let scores = PairScores::combine(0.8, 0.2, 0.6, ScoreWeights::README_EXAMPLE);
        assert_near(scores.sparse_dense, (0.2 * 0.2 + 0.8 * 0.4) / 0.6);
        assert_near(
            scores.colbert_sparse_dense,
            (0.6 * 0.4 + 0.2 * 0.2 + 0.8 * 0.4) / 1.0,
        );
        let equal = PairScores::combine(0.9, 0.3, 0.6, ScoreWeights::default());
        assert_near(equal.sparse_dense, 0.6);
        assert_near(equal.colbert_sparse_dense, 0.6);
    }
}
