//! `compute_score` for query/passage pairs and score matrices, on an [`Embedder`].
//!
//! Follows FlagEmbedding 1.4.2's `M3Embedder.compute_score`: queries are cut to the
//! query max length and passages to the passage max length (512 each by default),
//! all three outputs are computed, and the five scores are combined with the weights.
//!
//! NOTE: the reference computes a whole batch of pairs at once and pads passages to
//! the longest passage of the batch. Its padding rows are zero vectors that take part
//! in the ColBERT max, so a query row whose best real match is negative scores 0
//! there. This engine never counts padding, which equals the reference for each pair
//! computed alone; docs/parity.md shows the measured difference.

use crate::embedder::{EmbedRequest, Embedder, Embedding};
use crate::error::Result;
use crate::scoring::{
    colbert_score, dense_score, lexical_matching_score, PairScores, ScoreWeights,
};
use crate::session::Outputs;

/// FlagEmbedding's default max length of queries in `compute_score`, in tokens.
pub const DEFAULT_QUERY_MAX_LENGTH: usize = 512;
/// FlagEmbedding's default max length of passages in `compute_score`, in tokens.
pub const DEFAULT_PASSAGE_MAX_LENGTH: usize = 512;

/// Options of [`Embedder::compute_score`] and [`Embedder::score_matrix`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ScoreOptions {
    /// Max length of queries in tokens. Default [`DEFAULT_QUERY_MAX_LENGTH`].
    pub max_query_length: usize,
    /// Max length of passages in tokens. Default [`DEFAULT_PASSAGE_MAX_LENGTH`].
    pub max_passage_length: usize,
    /// Weights of the combined scores. Default `[1.0, 1.0, 1.0]`.
    pub weights: ScoreWeights,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        Self {
            max_query_length: DEFAULT_QUERY_MAX_LENGTH,
            max_passage_length: DEFAULT_PASSAGE_MAX_LENGTH,
            weights: ScoreWeights::default(),
        }
    }
}

impl ScoreOptions {
    /// Returns the default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the max length of queries.
    pub fn with_max_query_length(mut self, max_length: usize) -> Self {
        self.max_query_length = max_length;
        self
    }

    /// Sets the max length of passages.
    pub fn with_max_passage_length(mut self, max_length: usize) -> Self {
        self.max_passage_length = max_length;
        self
    }

    /// Sets the weights of the combined scores.
    pub fn with_weights(mut self, weights: ScoreWeights) -> Self {
        self.weights = weights;
        self
    }
}

impl Embedder {
    /// Scores each query against its passage; one [`PairScores`] per pair, in order.
    pub fn compute_score<Q: AsRef<str>, P: AsRef<str>>(
        &self,
        pairs: &[(Q, P)],
        options: &ScoreOptions,
    ) -> Result<Vec<PairScores>> {
        options.weights.validate()?;
        let queries: Vec<&str> = pairs.iter().map(|(query, _)| query.as_ref()).collect();
        let passages: Vec<&str> = pairs.iter().map(|(_, passage)| passage.as_ref()).collect();
        let (queries, passages) = self.embed_for_scores(&queries, &passages, options)?;
        Ok(queries
            .iter()
            .zip(&passages)
            .map(|(query, passage)| score_pair(query, passage, options.weights))
            .collect())
    }

    /// Scores every query against every passage: row `i`, column `j` is query `i`
    /// against passage `j`.
    pub fn score_matrix<Q: AsRef<str>, P: AsRef<str>>(
        &self,
        queries: &[Q],
        passages: &[P],
        options: &ScoreOptions,
    ) -> Result<Vec<Vec<PairScores>>> {
        options.weights.validate()?;
        let (queries, passages) = self.embed_for_scores(queries, passages, options)?;
        Ok(queries
            .iter()
            .map(|query| {
                passages
                    .iter()
                    .map(|passage| score_pair(query, passage, options.weights))
                    .collect()
            })
            .collect())
    }

    fn embed_for_scores<Q: AsRef<str>, P: AsRef<str>>(
        &self,
        queries: &[Q],
        passages: &[P],
        options: &ScoreOptions,
    ) -> Result<(Vec<Embedding>, Vec<Embedding>)> {
        let query_request = EmbedRequest::new(Outputs::ALL, options.max_query_length);
        let passage_request = EmbedRequest::new(Outputs::ALL, options.max_passage_length);
        let queries = self.embed_request(queries, query_request, &mut |_| {})?;
        let passages = self.embed_request(passages, passage_request, &mut |_| {})?;
        Ok((queries, passages))
    }
}

/// Scores two embeddings that have all three outputs.
fn score_pair(query: &Embedding, passage: &Embedding, weights: ScoreWeights) -> PairScores {
    PairScores::from_embeddings(query, passage, weights)
        .expect("scores are computed from embeddings with all three outputs")
}

impl PairScores {
    /// Scores a query embedding against a passage embedding, or returns `None` when
    /// either lacks one of the three outputs.
    pub fn from_embeddings(
        query: &Embedding,
        passage: &Embedding,
        weights: ScoreWeights,
    ) -> Option<Self> {
        let dense = dense_score(query.dense.as_ref()?, passage.dense.as_ref()?);
        let sparse = lexical_matching_score(query.sparse.as_ref()?, passage.sparse.as_ref()?);
        let colbert = colbert_score(query.colbert.as_ref()?, passage.colbert.as_ref()?);
        Some(Self::combine(dense, sparse, colbert, weights))
    }
}
