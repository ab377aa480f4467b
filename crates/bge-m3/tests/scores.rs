//! Scores against FlagEmbedding 1.4.2 goldens on the tiny test model.

mod common;

use bge_m3::scoring::colbert_score;
use bge_m3::{Embedder, EmbedderOptions, PairScores, ScoreOptions, ScoreWeights};
use common::{fixtures_dir, tiny_model_dir};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-5;

#[derive(Deserialize)]
struct ScoreGoldens {
    pairs: Vec<(String, String)>,
    max_query_length: usize,
    max_passage_length: usize,
    compute_score_alone: AloneScores,
    matrices: Matrices,
    token_texts: Vec<String>,
}

#[derive(Deserialize)]
struct AloneScores {
    default_weights: ScoreLists,
    readme_weights: ScoreLists,
}

#[derive(Deserialize)]
struct ScoreLists {
    dense: Vec<f32>,
    sparse: Vec<f32>,
    colbert: Vec<f32>,
    #[serde(rename = "sparse+dense")]
    sparse_dense: Vec<f32>,
    #[serde(rename = "colbert+sparse+dense")]
    colbert_sparse_dense: Vec<f32>,
}

#[derive(Deserialize)]
struct Matrices {
    dense: Vec<Vec<f32>>,
    lexical: Vec<Vec<f32>>,
    colbert: Vec<Vec<f32>>,
}

fn goldens() -> ScoreGoldens {
    let path = fixtures_dir().join("goldens/scores.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `python python/make_score_goldens.py`",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn embedder() -> Embedder {
    Embedder::try_new(tiny_model_dir(), EmbedderOptions::new()).unwrap()
}

fn assert_close(found: f32, expected: f32, what: &str) {
    let diff = (found - expected).abs();
    assert!(
        diff <= TOLERANCE,
        "{what}: found {found}, expected {expected}, diff {diff}"
    );
}

fn check_scores(found: &[PairScores], expected: &ScoreLists, weights: &str) {
    assert_eq!(found.len(), expected.dense.len());
    for (index, scores) in found.iter().enumerate() {
        let what = |kind: &str| format!("{kind} score of pair {index} with {weights} weights");
        assert_close(scores.dense, expected.dense[index], &what("dense"));
        assert_close(scores.sparse, expected.sparse[index], &what("sparse"));
        assert_close(scores.colbert, expected.colbert[index], &what("colbert"));
        assert_close(
            scores.sparse_dense,
            expected.sparse_dense[index],
            &what("sparse+dense"),
        );
        assert_close(
            scores.colbert_sparse_dense,
            expected.colbert_sparse_dense[index],
            &what("colbert+sparse+dense"),
        );
    }
}

#[test]
fn compute_score_matches_reference() {
    let goldens = goldens();
    assert!(goldens.pairs.len() >= 8);
    assert_eq!(goldens.max_query_length, bge_m3::DEFAULT_QUERY_MAX_LENGTH);
    assert_eq!(
        goldens.max_passage_length,
        bge_m3::DEFAULT_PASSAGE_MAX_LENGTH
    );
    let scores = embedder()
        .compute_score(&goldens.pairs, &ScoreOptions::new())
        .unwrap();
    check_scores(
        &scores,
        &goldens.compute_score_alone.default_weights,
        "default",
    );
}

#[test]
fn compute_score_with_readme_weights() {
    let goldens = goldens();
    let options = ScoreOptions::new().with_weights(ScoreWeights::README_EXAMPLE);
    let scores = embedder().compute_score(&goldens.pairs, &options).unwrap();
    check_scores(
        &scores,
        &goldens.compute_score_alone.readme_weights,
        "README",
    );
}

#[test]
fn score_matrix_matches_separate_functions() {
    let goldens = goldens();
    let queries: Vec<&str> = goldens.pairs.iter().map(|(q, _)| q.as_str()).collect();
    let passages: Vec<&str> = goldens.pairs.iter().map(|(_, p)| p.as_str()).collect();
    let matrix = embedder()
        .score_matrix(&queries, &passages, &ScoreOptions::new())
        .unwrap();
    assert_eq!(matrix.len(), queries.len());
    for (i, row) in matrix.iter().enumerate() {
        assert_eq!(row.len(), passages.len());
        for (j, scores) in row.iter().enumerate() {
            let what = |kind: &str| format!("{kind} score of query {i} and passage {j}");
            assert_close(scores.dense, goldens.matrices.dense[i][j], &what("dense"));
            assert_close(
                scores.sparse,
                goldens.matrices.lexical[i][j],
                &what("lexical"),
            );
            assert_close(
                scores.colbert,
                goldens.matrices.colbert[i][j],
                &what("colbert"),
            );
        }
    }
}

#[test]
fn lexical_score_with_itself_is_not_one() {
    let embedder = embedder();
    let text = "A test text! Texto de prueba!";
    let scores = embedder
        .compute_score(&[(text, text)], &ScoreOptions::new())
        .unwrap();
    let sparse = embedder.embed(&[text]).unwrap()[0].sparse.clone().unwrap();
    let squared: f32 = sparse.entries.iter().map(|(_, w)| w * w).sum();
    assert_close(scores[0].sparse, squared, "self lexical score");
    assert!(
        (scores[0].sparse - 1.0).abs() > 1e-3,
        "not normalised: {}",
        scores[0].sparse
    );
    assert_close(scores[0].dense, 1.0, "self dense score");
    assert_close(scores[0].colbert, 1.0, "self ColBERT score");
}

/// A passage padded inside a batch with a longer text scores as it does alone.
#[test]
fn colbert_score_ignores_batch_padding() {
    let embedder = embedder();
    let query = "Kiểm tra văn bản!";
    let passage = "";
    let longer = "A much longer passage that forces the empty one to be padded in its batch.";
    let alone = embedder.embed(&[query, passage]).unwrap();
    let padded = embedder.embed(&[longer, passage, query]).unwrap();
    let score_alone = colbert_score(
        alone[0].colbert.as_ref().unwrap(),
        alone[1].colbert.as_ref().unwrap(),
    );
    let score_padded = colbert_score(
        padded[2].colbert.as_ref().unwrap(),
        padded[1].colbert.as_ref().unwrap(),
    );
    assert!((-1.0..=1.0).contains(&score_alone));
    assert_close(
        score_padded,
        score_alone,
        "ColBERT score with and without padding",
    );
}

#[test]
fn token_text_matches_convert_id_to_token() {
    let goldens = goldens();
    let embedder = embedder();
    let tokenizer = embedder.tokenizer();
    for (id, expected) in goldens.token_texts.iter().enumerate() {
        let id = u32::try_from(id).unwrap();
        assert_eq!(
            &tokenizer.token_text(id).unwrap(),
            expected,
            "text of token id {id}"
        );
    }
}
