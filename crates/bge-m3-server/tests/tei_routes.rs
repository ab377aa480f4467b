//! `POST /embed` and `POST /embed_sparse` in the text-embeddings-inference format.

mod common;

use common::{
    app_for, assert_close, assert_sparse_close, floats, library, library_embed, post, tiny_args,
    DENSE, SPARSE,
};
use serde_json::{json, Value};

const TEXTS: [&str; 3] = [
    "What is BGE-M3?",
    "Hello hello hello",
    "数据库 und Datenbank",
];

#[tokio::test]
async fn embed_equals_library() {
    let args = tiny_args();
    let body = json!({ "inputs": TEXTS }).to_string();
    let reply = post(&app_for(&args), "/embed", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let vectors = reply.json();
    let vectors = vectors.as_array().unwrap();
    assert_eq!(vectors.len(), TEXTS.len());
    let expected = library_embed(&library(&args), &TEXTS, DENSE);
    for (index, vector) in vectors.iter().enumerate() {
        let dense = expected[index].dense.as_ref().unwrap();
        assert_close(&floats(vector), dense, &format!("input {index}"));
    }
}

#[tokio::test]
async fn embed_single_string_is_a_list_of_one() {
    let reply = post(&app_for(&tiny_args()), "/embed", r#"{"inputs": "hello"}"#).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let vectors = reply.json();
    assert_eq!(vectors.as_array().unwrap().len(), 1);
    assert_eq!(vectors[0].as_array().unwrap().len(), 32);
}

fn read_sparse(weights: &Value) -> Vec<(u32, f32)> {
    weights
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["index"].as_u64().unwrap() as u32,
                entry["value"].as_f64().unwrap() as f32,
            )
        })
        .collect()
}

#[tokio::test]
async fn embed_sparse_equals_library() {
    let args = tiny_args();
    let body = json!({ "inputs": TEXTS, "truncate": false }).to_string();
    let reply = post(&app_for(&args), "/embed_sparse", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let expected = library_embed(&library(&args), &TEXTS, SPARSE);
    let served = reply.json();
    for (index, weights) in served.as_array().unwrap().iter().enumerate() {
        let served = read_sparse(weights);
        let library = &expected[index].sparse.as_ref().unwrap().entries;
        assert!(!library.is_empty(), "input {index} has sparse weights");
        assert_sparse_close(&served, library, &format!("input {index}"));
    }
}

#[tokio::test]
async fn truncate_true_embeds_long_input() {
    let mut args = tiny_args();
    args.max_input_tokens = 16;
    let long = "word ".repeat(100);
    let body = json!({ "inputs": [long], "truncate": true }).to_string();
    let reply = post(&app_for(&args), "/embed", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let expected = library_embed(&library(&args), &[long.as_str()], DENSE);
    assert!(expected[0].truncated);
    assert_close(
        &floats(&reply.json()[0]),
        expected[0].dense.as_ref().unwrap(),
        "truncated",
    );
}

#[tokio::test]
async fn long_input_error_has_tei_shape() {
    let mut args = tiny_args();
    args.max_input_tokens = 16;
    let long = "word ".repeat(100);
    let tokens = library(&args).tokenizer().count_tokens(&long, 0).unwrap();
    assert!(tokens > 16);
    let body = json!({ "inputs": ["short", long] }).to_string();
    let reply = post(&app_for(&args), "/embed", &body).await;
    assert_eq!(reply.status, 413);
    let json = reply.json();
    assert_eq!(json["error_type"], "Validation");
    let message = json["error"].as_str().unwrap();
    assert!(
        message.contains(&format!("input 1 has {tokens} tokens")),
        "{message}"
    );
    assert!(message.contains("limit of 16"), "{message}");
}

#[tokio::test]
async fn normalize_false_is_rejected() {
    let reply = post(
        &app_for(&tiny_args()),
        "/embed",
        r#"{"inputs": "x", "normalize": false}"#,
    )
    .await;
    assert_eq!(reply.status, 400);
    let json = reply.json();
    assert_eq!(json["error_type"], "Validation");
    assert!(
        json["error"].as_str().unwrap().contains("normalize"),
        "{json}"
    );
}

#[tokio::test]
async fn left_truncation_is_rejected() {
    let app = app_for(&tiny_args());
    let body = r#"{"inputs": "x", "truncation_direction": "left"}"#;
    let reply = post(&app, "/embed_sparse", body).await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"]
        .as_str()
        .unwrap()
        .contains("truncation_direction"));

    let body = r#"{"inputs": "x", "truncation_direction": "Right"}"#;
    let reply = post(&app, "/embed_sparse", body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn prompt_name_is_rejected() {
    let body = r#"{"inputs": "x", "prompt_name": "query"}"#;
    let reply = post(&app_for(&tiny_args()), "/embed", body).await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"]
        .as_str()
        .unwrap()
        .contains("prompt_name"));
}

#[tokio::test]
async fn token_ids_are_rejected() {
    let reply = post(
        &app_for(&tiny_args()),
        "/embed",
        r#"{"inputs": [[0, 5, 2]]}"#,
    )
    .await;
    assert_eq!(reply.status, 400);
    let json = reply.json();
    assert_eq!(json["error_type"], "Validation");
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("token ids are not accepted"),
        "{json}"
    );
}

#[tokio::test]
async fn malformed_json_has_tei_shape() {
    let reply = post(&app_for(&tiny_args()), "/embed_sparse", r#"{"input": "x"}"#).await;
    assert_eq!(reply.status, 400);
    let json = reply.json();
    assert_eq!(json["error_type"], "Validation");
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("missing field `inputs`"),
        "{json}"
    );
}
