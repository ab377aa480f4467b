//! Limits, malformed requests and the API key, through the router.

mod common;

use std::time::Duration;

use axum::http::Method;
use bge_m3_server::{app, ApiKey, AppState};
use common::{app_for, post, send, send_with, tiny_args};
use serde_json::json;

#[tokio::test]
async fn long_input_gets_413_with_count() {
    let mut args = tiny_args();
    args.max_input_tokens = 16;
    let long = "many words in this text ".repeat(10);
    let tokens = common::library(&args)
        .tokenizer()
        .count_tokens(&long, 0)
        .unwrap();
    let body = json!({ "input": ["fine", long] }).to_string();
    let reply = post(&app_for(&args), "/v1/embeddings", &body).await;
    assert_eq!(reply.status, 413);
    let error = &reply.json()["error"];
    assert_eq!(error["param"], "input[1]");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(&format!("{tokens} tokens")), "{message}");
    assert!(message.contains("limit of 16"), "{message}");
    // The OpenAI request has no truncate field, so the advice is the server flag.
    assert!(message.contains("--auto-truncate"), "{message}");
    assert!(!message.contains("  "), "{message}");
}

#[tokio::test]
async fn long_input_413_names_truncate_field() {
    let mut args = tiny_args();
    args.max_input_tokens = 16;
    let long = "many words in this text ".repeat(10);
    let requests = [
        ("/v1/encode", json!({ "input": long })),
        ("/embed", json!({ "inputs": long })),
    ];
    for (path, body) in requests {
        let reply = post(&app_for(&args), path, &body.to_string()).await;
        assert_eq!(reply.status, 413, "{path}: {}", reply.text());
        let text = reply.text();
        assert!(text.contains(r#"set \"truncate\": true"#), "{path}: {text}");
        assert!(!text.contains("--auto-truncate"), "{path}: {text}");
    }
}

#[tokio::test]
async fn auto_truncate_embeds_long_input() {
    let mut args = tiny_args();
    args.max_input_tokens = 16;
    args.auto_truncate = true;
    let body = json!({ "input": "many words in this text ".repeat(10) }).to_string();
    let reply = post(&app_for(&args), "/v1/embeddings", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["usage"]["prompt_tokens"], 16);
}

#[tokio::test]
async fn truncate_false_overrides_auto_truncate() {
    let mut args = tiny_args();
    args.max_input_tokens = 16;
    args.auto_truncate = true;
    let body = json!({ "input": "many words in this text ".repeat(10), "truncate": false });
    let reply = post(&app_for(&args), "/v1/encode", &body.to_string()).await;
    assert_eq!(reply.status, 413, "{}", reply.text());
}

#[tokio::test]
async fn too_many_inputs_get_413() {
    let mut args = tiny_args();
    args.max_inputs = 3;
    let app = app_for(&args);
    let reply = post(&app, "/v1/embeddings", r#"{"input": ["a", "b", "c", "d"]}"#).await;
    assert_eq!(reply.status, 413);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("4 inputs, more than the limit of 3"),
        "{message}"
    );

    let reply = post(&app, "/embed", r#"{"inputs": ["a", "b", "c", "d"]}"#).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["error_type"], "Validation");

    let reply = post(&app, "/v1/embeddings", r#"{"input": ["a", "b", "c"]}"#).await;
    assert_eq!(reply.status, 200, "three inputs are within the limit");
}

#[tokio::test]
async fn large_body_gets_413_json() {
    let mut args = tiny_args();
    args.max_payload_bytes = 100;
    let app = app_for(&args);
    let body = json!({ "input": "x".repeat(200) }).to_string();
    for path in ["/v1/embeddings", "/v1/encode", "/tokenize"] {
        let reply = post(&app, path, &body).await;
        assert_eq!(reply.status, 413, "{path}");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains("limit of 100 bytes"), "{path}: {message}");
    }
    let body = json!({ "inputs": "x".repeat(200) }).to_string();
    let reply = post(&app, "/embed", &body).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["error_type"], "Validation");
}

#[tokio::test]
async fn empty_input_array_gets_400() {
    let app = app_for(&tiny_args());
    let reply = post(&app, "/v1/embeddings", r#"{"input": []}"#).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["param"], "input");
    let reply = post(&app, "/embed", r#"{"inputs": []}"#).await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn malformed_json_names_the_field() {
    let app = app_for(&tiny_args());
    // Errors about the whole body, not one field, have no `param`.
    let cases = [
        (
            r#"{"input": "x", "encoding_format": 5}"#,
            Some("encoding_format"),
        ),
        (r#"{"input": ["a", null]}"#, Some("input[1]")),
        (
            r#"{"input": "x", "dimensions": "many"}"#,
            Some("dimensions"),
        ),
        (r#"{"model": "m"}"#, None),
        (r#"{"input": "x""#, None),
        (r#"not json"#, None),
        (r#"{bad json"#, None),
        ("", None),
    ];
    for (body, field) in cases {
        let reply = post(&app, "/v1/embeddings", body).await;
        assert_eq!(reply.status, 400, "{body}");
        let error = &reply.json()["error"];
        assert_eq!(error["param"].as_str(), field, "{body}");
        assert_eq!(error["type"], "invalid_request_error", "{body}");
    }
    let reply = post(&app, "/v1/embeddings", r#"{"model": "m"}"#).await;
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("missing field `input`"), "{message}");
    assert!(message.starts_with("invalid request body: "), "{message}");
}

#[tokio::test]
async fn array_body_is_rejected() {
    let app = app_for(&tiny_args());
    for (path, body) in [
        ("/v1/embeddings", r#"["hello", "m", null, null]"#),
        ("/tokenize", r#"["hello"]"#),
    ] {
        let reply = post(&app, path, body).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
        let text = reply.text();
        assert!(text.contains("must be a JSON object"), "{path}: {text}");
    }
}

/// The worker is paused, so the first request keeps its tokens in the queue.
#[tokio::test]
async fn full_queue_gets_429_with_retry_after() {
    let mut args = tiny_args();
    args.max_input_tokens = 16;
    args.max_queued_tokens = 16;
    let (state, worker) = AppState::try_new_paused(&args).unwrap();
    let app = app(state);

    let first = tokio::spawn({
        let app = app.clone();
        async move { post(&app, "/v1/embeddings", r#"{"input": "hello world"}"#).await }
    });
    wait_for_queued_tokens(&app).await;
    let reply = post(&app, "/v1/embeddings", r#"{"input": "hello world"}"#).await;
    assert_eq!(reply.status, 429, "{}", reply.text());
    assert_eq!(reply.headers["retry-after"], "1");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("busy"), "{message}");

    let reply = post(&app, "/embed", r#"{"inputs": "hello world"}"#).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.json()["error_type"], "Overloaded");

    let worker = worker.spawn().unwrap();
    assert_eq!(
        first.await.unwrap().status,
        200,
        "the queued request completes"
    );
    let reply = post(&app, "/v1/embeddings", r#"{"input": "hello world"}"#).await;
    assert_eq!(reply.status, 200, "the queue has room again");
    drop(app);
    worker.join().unwrap();
}

#[tokio::test]
async fn request_over_queue_limit_gets_413() {
    let mut args = tiny_args();
    args.max_input_tokens = 16;
    args.max_queued_tokens = 16;
    let body = r#"{"input": ["hello world", "hello world"]}"#;
    let reply = post(&app_for(&args), "/v1/embeddings", body).await;
    assert_eq!(reply.status, 413, "{}", reply.text());
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("20 tokens, more than the queue limit of 16"),
        "{message}"
    );
}

async fn wait_for_queued_tokens(app: &axum::Router) {
    for _ in 0..500 {
        let metrics = send(app, Method::GET, "/metrics", None).await.text();
        if !metrics.contains("bge_m3_queued_tokens 0\n") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the first request never reached the queue");
}

fn keyed_app() -> axum::Router {
    let mut args = tiny_args();
    args.api_key = Some("s3cret-key".parse::<ApiKey>().unwrap());
    app_for(&args)
}

#[tokio::test]
async fn missing_api_key_gets_401() {
    let app = keyed_app();
    let reply = post(&app, "/v1/embeddings", r#"{"input": "x"}"#).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
    assert_eq!(reply.json()["error"]["type"], "authentication_error");
    for path in ["/info", "/metrics", "/openapi.json"] {
        let reply = send(&app, Method::GET, path, None).await;
        assert_eq!(reply.status, 401, "{path}");
    }
}

#[tokio::test]
async fn wrong_api_key_gets_401() {
    let app = keyed_app();
    for header in [
        "Bearer s3cret-kez",
        "Bearer s3cret-key2",
        "s3cret-key",
        "Basic s3cret-key",
    ] {
        let reply = send_with(
            &app,
            Method::POST,
            "/v1/embeddings",
            Some(r#"{"input": "x"}"#),
            &[("authorization", header)],
        )
        .await;
        assert_eq!(reply.status, 401, "{header}");
        assert!(!reply.text().contains("s3cret"), "the key is not echoed");
    }
}

#[tokio::test]
async fn right_api_key_is_accepted() {
    let app = keyed_app();
    let headers = [("authorization", "Bearer s3cret-key")];
    let reply = send_with(
        &app,
        Method::POST,
        "/v1/embeddings",
        Some(r#"{"input": "x"}"#),
        &headers,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = send_with(&app, Method::GET, "/info", None, &headers).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn health_needs_no_api_key() {
    let reply = send(&keyed_app(), Method::GET, "/health", None).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn unknown_route_gets_404() {
    let reply = send(&app_for(&tiny_args()), Method::GET, "/v2/nothing", None).await;
    assert_eq!(reply.status, 404);
    let error = &reply.json()["error"];
    assert_eq!(error["type"], "not_found_error");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("/v2/nothing"), "{message}");
    assert!(message.contains("/openapi.json"), "{message}");
}

#[tokio::test]
async fn wrong_method_gets_405_json() {
    let reply = send(&app_for(&tiny_args()), Method::GET, "/v1/embeddings", None).await;
    assert_eq!(reply.status, 405);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("/v1/embeddings does not take GET"),
        "{message}"
    );
}

#[tokio::test]
async fn tei_route_405_has_tei_shape() {
    let reply = send(&app_for(&tiny_args()), Method::GET, "/embed", None).await;
    assert_eq!(reply.status, 405);
    let body = reply.json();
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(body["error_type"], "Validation", "{body}");
}

#[tokio::test]
async fn tei_route_401_has_tei_shape() {
    let app = keyed_app();
    for path in ["/embed", "/embed_sparse"] {
        let reply = post(&app, path, r#"{"inputs": "x"}"#).await;
        assert_eq!(reply.status, 401, "{path}");
        let body = reply.json();
        assert!(body["error"].is_string(), "{path}: {body}");
        assert_eq!(body["error_type"], "Validation", "{path}: {body}");
    }
}

#[tokio::test]
async fn lower_case_bearer_is_accepted() {
    let reply = send_with(
        &keyed_app(),
        Method::POST,
        "/v1/embeddings",
        Some(r#"{"input": "x"}"#),
        &[("authorization", "bearer s3cret-key")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn body_with_byte_order_mark_is_read() {
    let body = "\u{feff}{\"input\": \"x\"}";
    let reply = post(&app_for(&tiny_args()), "/v1/embeddings", body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn lone_surrogate_is_explained() {
    let app = app_for(&tiny_args());
    for body in [r#"{"input": "\ud800"}"#, r#"{"input": "\udc00"}"#] {
        let reply = post(&app, "/v1/embeddings", body).await;
        assert_eq!(reply.status, 400, "{body}");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains("surrogate pair"), "{body}: {message}");
        assert!(message.contains(r"\uFFFD"), "{body}: {message}");
    }
}
