//! `POST /v1/embeddings` through the router, compared with the library.

mod common;

use common::{
    app_for, assert_close, base64_floats, floats, library, library_embed, post, tiny_args, DENSE,
};
use serde_json::json;

const TEXTS: [&str; 3] = [
    "What is BGE-M3?",
    "",
    "Un texte en français, avec des accents.",
];

#[tokio::test]
async fn float_vectors_equal_library() {
    let args = tiny_args();
    let app = app_for(&args);
    let body = json!({ "input": TEXTS, "model": "bge-m3" }).to_string();
    let reply = post(&app, "/v1/embeddings", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let json = reply.json();
    let expected = library_embed(&library(&args), &TEXTS, DENSE);
    assert_eq!(json["object"], "list");
    let data = json["data"].as_array().unwrap();
    assert_eq!(data.len(), TEXTS.len());
    for (index, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], index);
        let dense = expected[index].dense.as_ref().unwrap();
        assert_close(
            &floats(&item["embedding"]),
            dense,
            &format!("input {index}"),
        );
    }
}

#[tokio::test]
async fn base64_vectors_equal_library() {
    let args = tiny_args();
    let app = app_for(&args);
    let body = json!({ "input": TEXTS, "encoding_format": "base64" }).to_string();
    let reply = post(&app, "/v1/embeddings", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let expected = library_embed(&library(&args), &TEXTS, DENSE);
    for (index, item) in reply.json()["data"].as_array().unwrap().iter().enumerate() {
        let dense = expected[index].dense.as_ref().unwrap();
        assert_close(
            &base64_floats(&item["embedding"]),
            dense,
            &format!("input {index}"),
        );
    }
}

#[tokio::test]
async fn single_string_gives_one_vector() {
    let args = tiny_args();
    let reply = post(&app_for(&args), "/v1/embeddings", r#"{"input": "hello"}"#).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let data = reply.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1);
    let expected = library_embed(&library(&args), &["hello"], DENSE);
    assert_close(
        &floats(&data[0]["embedding"]),
        expected[0].dense.as_ref().unwrap(),
        "hello",
    );
}

#[tokio::test]
async fn model_is_echoed() {
    let app = app_for(&tiny_args());
    let reply = post(
        &app,
        "/v1/embeddings",
        r#"{"input": "x", "model": "my-name"}"#,
    )
    .await;
    assert_eq!(reply.json()["model"], "my-name");
    let reply = post(&app, "/v1/embeddings", r#"{"input": "x"}"#).await;
    assert_eq!(
        reply.json()["model"],
        "tiny-bge-m3",
        "the folder name without a model field"
    );
}

#[tokio::test]
async fn usage_counts_tokens() {
    let args = tiny_args();
    let body = json!({ "input": TEXTS }).to_string();
    let reply = post(&app_for(&args), "/v1/embeddings", &body).await;
    let expected: usize = library_embed(&library(&args), &TEXTS, DENSE)
        .iter()
        .map(|embedding| embedding.tokens)
        .sum();
    let usage = &reply.json()["usage"];
    assert_eq!(usage["prompt_tokens"], expected);
    assert_eq!(usage["total_tokens"], expected);
}

#[tokio::test]
async fn token_ids_are_rejected() {
    let app = app_for(&tiny_args());
    for body in [r#"{"input": [1, 2, 3]}"#, r#"{"input": [[1, 2], [3]]}"#] {
        let reply = post(&app, "/v1/embeddings", body).await;
        assert_eq!(reply.status, 400, "{body}");
        let error = &reply.json()["error"];
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("token ids are not accepted"), "{message}");
        assert!(message.contains("another tokenizer"), "{message}");
        assert_eq!(error["param"], "input[0]");
    }
}

#[tokio::test]
async fn other_dimensions_are_rejected() {
    let app = app_for(&tiny_args());
    let reply = post(
        &app,
        "/v1/embeddings",
        r#"{"input": "x", "dimensions": 16}"#,
    )
    .await;
    assert_eq!(reply.status, 400);
    let error = &reply.json()["error"];
    assert_eq!(error["param"], "dimensions");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("32 dimensions"), "{message}");
    assert!(message.contains("not trained"), "{message}");
}

#[tokio::test]
async fn model_dimensions_are_accepted() {
    let app = app_for(&tiny_args());
    let reply = post(
        &app,
        "/v1/embeddings",
        r#"{"input": "x", "dimensions": 32}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json()["data"][0]["embedding"]
            .as_array()
            .unwrap()
            .len(),
        32
    );
}

#[tokio::test]
async fn unknown_encoding_format_is_rejected() {
    let app = app_for(&tiny_args());
    let reply = post(
        &app,
        "/v1/embeddings",
        r#"{"input": "x", "encoding_format": "int8"}"#,
    )
    .await;
    assert_eq!(reply.status, 400);
    let error = &reply.json()["error"];
    assert_eq!(error["param"], "encoding_format");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("unknown variant"),
        "{error}"
    );
}
