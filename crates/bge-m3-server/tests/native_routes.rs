//! `/v1/encode`, `/tokenize`, `/health`, `/info`, `/metrics` and `/openapi.json`.

mod common;

use axum::http::Method;
use bge_m3::Outputs;
use common::{
    app_for, assert_close, assert_sparse_close, base64_floats, floats, library, library_embed,
    post, send, tiny_args,
};
use serde_json::{json, Value};

const TEXTS: [&str; 3] = ["BGE-M3 gives three outputs.", "", "Ein kurzer Satz."];

fn read_sparse_ids(sparse: &Value) -> Vec<(u32, f32)> {
    let indices = sparse["indices"].as_array().unwrap();
    let values = sparse["values"].as_array().unwrap();
    assert_eq!(
        indices.len(),
        values.len(),
        "indices and values differ in length"
    );
    indices
        .iter()
        .zip(values)
        .map(|(id, value)| (id.as_u64().unwrap() as u32, value.as_f64().unwrap() as f32))
        .collect()
}

#[tokio::test]
async fn encode_all_outputs_equal_library() {
    let args = tiny_args();
    let body = json!({ "input": TEXTS }).to_string();
    let reply = post(&app_for(&args), "/v1/encode", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let expected = library_embed(&library(&args), &TEXTS, Outputs::ALL);
    let json = reply.json();
    let data = json["data"].as_array().unwrap();
    assert_eq!(data.len(), TEXTS.len());
    for (index, item) in data.iter().enumerate() {
        let library = &expected[index];
        let what = format!("input {index}");
        assert_eq!(item["index"], index);
        assert_eq!(item["tokens"], library.tokens);
        assert_eq!(item["truncated"], false);
        assert_close(
            &floats(&item["dense"]),
            library.dense.as_ref().unwrap(),
            &what,
        );

        let sparse = read_sparse_ids(&item["sparse"]);
        let ids: Vec<u32> = sparse.iter().map(|entry| entry.0).collect();
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "ids ascending: {ids:?}"
        );
        assert_sparse_close(&sparse, &library.sparse.as_ref().unwrap().entries, &what);

        let colbert = library.colbert.as_ref().unwrap();
        let rows = item["colbert"].as_array().unwrap();
        assert_eq!(rows.len(), colbert.rows(), "{what}: ColBERT rows");
        assert_eq!(
            rows.len(),
            library.tokens - 1,
            "{what}: one row per token but <s>"
        );
        for (row, expected_row) in rows.iter().zip(colbert.iter()) {
            assert_close(&floats(row), expected_row, &what);
        }
    }
    let tokens: usize = expected.iter().map(|embedding| embedding.tokens).sum();
    assert_eq!(json["usage"]["prompt_tokens"], tokens);
}

#[tokio::test]
async fn encode_selected_outputs_only() {
    let app = app_for(&tiny_args());
    let body = r#"{"input": "x", "outputs": ["sparse"]}"#;
    let reply = post(&app, "/v1/encode", body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let item = &reply.json()["data"][0];
    assert!(item.get("dense").is_none(), "{item}");
    assert!(item.get("colbert").is_none(), "{item}");
    assert!(item.get("sparse").is_some(), "{item}");
}

#[tokio::test]
async fn encode_sparse_keyed_by_token_text() {
    let args = tiny_args();
    let body = r#"{"input": "hello world", "outputs": ["sparse"], "sparse_format": "tokens"}"#;
    let reply = post(&app_for(&args), "/v1/encode", body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let embedder = library(&args);
    let expected = library_embed(&embedder, &["hello world"], Outputs::ALL);
    let entries = &expected[0].sparse.as_ref().unwrap().entries;
    let served = reply.json()["data"][0]["sparse"]
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(served.len(), entries.len());
    // Keys are decoded token texts, as FlagEmbedding's convert_id_to_token and
    // `bge-m3 embed --tokens` write them, not the raw pieces such as `▁w`.
    assert!(served.keys().all(|key| !key.contains('▁')), "{served:?}");
    for (id, weight) in entries {
        let text = embedder.tokenizer().token_text(*id).unwrap();
        let token = if served.contains_key(&text) {
            text
        } else {
            format!("{text} [{id}]")
        };
        let value = served[&token].as_f64().unwrap() as f32;
        assert!(
            (value - weight).abs() <= common::TOLERANCE,
            "{token}: {value} vs {weight}"
        );
    }
}

#[tokio::test]
async fn encode_base64_vectors_equal_library() {
    let args = tiny_args();
    let body =
        r#"{"input": ["two words"], "outputs": ["dense", "colbert"], "encoding_format": "base64"}"#;
    let reply = post(&app_for(&args), "/v1/encode", body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let expected = &library_embed(&library(&args), &["two words"], Outputs::ALL)[0];
    let item = &reply.json()["data"][0];
    assert_close(
        &base64_floats(&item["dense"]),
        expected.dense.as_ref().unwrap(),
        "dense",
    );
    let rows = item["colbert"].as_array().unwrap();
    for (row, expected_row) in rows.iter().zip(expected.colbert.as_ref().unwrap().iter()) {
        assert_close(&base64_floats(row), expected_row, "ColBERT row");
    }
}

#[tokio::test]
async fn encode_empty_outputs_are_rejected() {
    let reply = post(
        &app_for(&tiny_args()),
        "/v1/encode",
        r#"{"input": "x", "outputs": []}"#,
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["param"], "outputs");
}

#[tokio::test]
async fn encode_unknown_output_is_rejected() {
    let body = r#"{"input": "x", "outputs": ["dense", "late"]}"#;
    let reply = post(&app_for(&tiny_args()), "/v1/encode", body).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["param"], "outputs[1]");
}

#[tokio::test]
async fn encode_truncate_flags_the_input() {
    let mut args = tiny_args();
    args.max_input_tokens = 8;
    let body = json!({ "input": "one two three four five six seven eight nine", "truncate": true });
    let reply = post(&app_for(&args), "/v1/encode", &body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let item = &reply.json()["data"][0];
    assert_eq!(item["truncated"], true);
    assert_eq!(item["tokens"], 8);
    assert_eq!(item["colbert"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn tokenize_returns_ids_and_texts() {
    let args = tiny_args();
    let reply = post(
        &app_for(&args),
        "/tokenize",
        r#"{"inputs": ["hello world", ""]}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let embedder = library(&args);
    let json = reply.json();
    for (index, text) in ["hello world", ""].iter().enumerate() {
        let item = &json["data"][index];
        let expected = embedder.tokenizer().encode(text, 8192, index).unwrap();
        let ids: Vec<u32> = item["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(ids, expected.ids);
        let tokens: Vec<&str> = item["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(tokens.first(), Some(&"<s>"));
        assert_eq!(tokens.last(), Some(&"</s>"));
        assert_eq!(tokens.len(), ids.len());
        assert_eq!(item["truncated"], false);
    }
}

#[tokio::test]
async fn tokenize_flags_truncation() {
    let mut args = tiny_args();
    args.max_input_tokens = 4;
    let reply = post(
        &app_for(&args),
        "/tokenize",
        r#"{"input": "one two three four"}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let item = &reply.json()["data"][0];
    assert_eq!(item["truncated"], true);
    assert_eq!(item["ids"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn health_is_ok() {
    let reply = send(&app_for(&tiny_args()), Method::GET, "/health", None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "ok");
}

#[tokio::test]
async fn info_reports_model_and_limits() {
    let mut args = tiny_args();
    args.max_inputs = 7;
    let reply = send(&app_for(&args), Method::GET, "/info", None).await;
    assert_eq!(reply.status, 200);
    let json = reply.json();
    assert_eq!(json["model"], "tiny-bge-m3");
    assert_eq!(json["dimensions"], 32);
    assert_eq!(json["max_input_tokens"], 8192);
    assert_eq!(json["token_budget"], bge_m3::DEFAULT_TOKEN_BUDGET);
    assert_eq!(json["limits"]["max_inputs"], 7);
    assert_eq!(
        json["limits"]["max_payload_bytes"],
        bge_m3_server::DEFAULT_MAX_PAYLOAD_BYTES
    );
    assert_eq!(
        json["limits"]["max_queued_tokens"],
        bge_m3_server::DEFAULT_MAX_QUEUED_TOKENS
    );
    assert_eq!(json["limits"]["auto_truncate"], false);
}

#[tokio::test]
async fn metrics_count_requests_and_batches() {
    let app = app_for(&tiny_args());
    post(&app, "/v1/embeddings", r#"{"input": ["a b", "c"]}"#).await;
    post(&app, "/v1/embeddings", r#"{"input": 5}"#).await;
    let reply = send(&app, Method::GET, "/metrics", None).await;
    assert_eq!(reply.status, 200);
    let content_type = reply.headers["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");

    let text = reply.text();
    assert!(
        text.contains("bge_m3_requests_total{route=\"/v1/embeddings\",status=\"200\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("bge_m3_requests_total{route=\"/v1/embeddings\",status=\"400\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("bge_m3_embedded_texts_total 2\n"), "{text}");
    assert!(text.contains("bge_m3_queued_tokens 0\n"), "{text}");
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        assert!(line.starts_with(bge_m3_server::METRICS_PREFIX), "{line}");
    }
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let reply = send(&app_for(&tiny_args()), Method::GET, "/openapi.json", None).await;
    assert_eq!(reply.status, 200);
    let document = reply.json();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert_eq!(paths.len(), bge_m3_server::ROUTES.len());
    for (method, path) in bge_m3_server::ROUTES {
        assert!(
            paths[*path].get(*method).is_some(),
            "{method} {path} is not documented"
        );
    }
}

#[tokio::test]
async fn every_listed_route_exists() {
    let app = app_for(&tiny_args());
    for (method, path) in bge_m3_server::ROUTES {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = (method == Method::POST).then_some(r#"{"input": "x", "inputs": "x"}"#);
        let reply = send(&app, method.clone(), path, body).await;
        assert_ne!(reply.status, 404, "{method} {path}");
        assert_ne!(reply.status, 405, "{method} {path}");
    }
}

#[tokio::test]
async fn tokenize_without_special_tokens() {
    let args = tiny_args();
    let body = r#"{"inputs": ["hello world", ""], "add_special_tokens": false}"#;
    let reply = post(&app_for(&args), "/tokenize", body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let embedder = library(&args);
    let json = reply.json();
    for (index, text) in ["hello world", ""].iter().enumerate() {
        let expected = embedder.tokenizer().encode(text, 8192, index).unwrap();
        let inner = &expected.ids[1..expected.ids.len() - 1];
        let ids: Vec<u32> = json["data"][index]["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(ids, inner, "input {index}");
        let tokens = json["data"][index]["tokens"].as_array().unwrap();
        assert_eq!(tokens.len(), ids.len(), "input {index}");
    }
}

#[tokio::test]
async fn null_formats_mean_defaults() {
    let app = app_for(&tiny_args());
    let requests = [
        (
            "/v1/embeddings",
            r#"{"input": "x", "encoding_format": null}"#,
        ),
        (
            "/v1/encode",
            r#"{"input": "x", "sparse_format": null, "encoding_format": null}"#,
        ),
        ("/embed", r#"{"inputs": "x", "truncation_direction": null}"#),
    ];
    for (path, body) in requests {
        let reply = post(&app, path, body).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
    let reply = post(
        &app,
        "/v1/embeddings",
        r#"{"input": "x", "encoding_format": null}"#,
    )
    .await;
    assert!(reply.json()["data"][0]["embedding"].is_array());
}

#[tokio::test]
async fn tokenize_truncate_false_rejects_long_input() {
    let mut args = tiny_args();
    args.max_input_tokens = 8;
    let long = "many words in this text ".repeat(4);
    let app = app_for(&args);

    let body = serde_json::json!({ "input": long, "truncate": false }).to_string();
    let reply = post(&app, "/tokenize", &body).await;
    assert_eq!(reply.status, 413, "{}", reply.text());

    let body = serde_json::json!({ "input": long }).to_string();
    let reply = post(&app, "/tokenize", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["data"][0]["truncated"], true);
}

#[tokio::test]
async fn tokenize_needs_one_input_field() {
    let app = app_for(&tiny_args());
    let cases = [
        (r#"{"input": "a", "inputs": "b"}"#, "both input and inputs"),
        (r#"{"truncate": true}"#, "missing field"),
    ];
    for (body, expected) in cases {
        let reply = post(&app, "/tokenize", body).await;
        assert_eq!(reply.status, 400, "{body}");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(expected), "{body}: {message}");
    }
}
