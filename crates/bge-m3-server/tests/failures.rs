//! A failing model call fails only its own requests, and the server keeps serving.
//!
//! `tests/fixtures/nan-outputs` returns NaN for every text that contains the token
//! `▁a` (id 85) and finite values otherwise.

mod common;

use std::time::Duration;

use axum::http::Method;
use bge_m3_server::{app, AppState, ServeArgs};
use common::{fixture, post, send};
use serde_json::json;

fn nan_args() -> ServeArgs {
    ServeArgs::for_model(fixture("nan-outputs"))
}

async fn wait_for_queued_tokens(app: &axum::Router, at_least: usize) {
    for _ in 0..500 {
        let metrics = send(app, Method::GET, "/metrics", None).await.text();
        let queued = metrics
            .lines()
            .find_map(|line| line.strip_prefix("bge_m3_queued_tokens "))
            .and_then(|value| value.parse::<usize>().ok())
            .unwrap_or(0);
        if queued >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the requests never reached the queue");
}

/// The requests are queued while the worker is paused, so they share one batch.
#[tokio::test]
async fn failed_batch_fails_only_its_requests() {
    let (state, worker) = AppState::try_new_paused(&nan_args()).unwrap();
    let app = app(state);
    let bodies = [
        json!({ "input": ["dog", "bird"] }),
        json!({ "input": ["dog", "a cat"] }),
        json!({ "input": "fish" }),
    ];
    let mut tasks = Vec::new();
    for body in &bodies {
        let app = app.clone();
        let body = body.to_string();
        tasks.push(tokio::spawn(async move {
            post(&app, "/v1/embeddings", &body).await
        }));
    }
    let tokenizer = common::library(&nan_args());
    let all_tokens: usize = ["dog", "bird", "dog", "a cat", "fish"]
        .iter()
        .map(|text| {
            tokenizer
                .tokenizer()
                .encode(text, 8192, 0)
                .unwrap()
                .ids
                .len()
        })
        .sum();
    wait_for_queued_tokens(&app, all_tokens).await;
    let worker = worker.spawn().unwrap();

    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    assert_eq!(replies[0].status, 200, "{}", replies[0].text());
    assert_eq!(replies[2].status, 200, "{}", replies[2].text());
    for reply in [&replies[0], &replies[2]] {
        assert!(
            !reply.text().contains("null"),
            "no null in vectors: {}",
            reply.text()
        );
    }
    assert_eq!(replies[1].status, 500);
    let message = replies[1].json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("non-finite value in the dense output of input 1"),
        "{message}"
    );

    let reply = post(&app, "/v1/embeddings", r#"{"input": "dog"}"#).await;
    assert_eq!(
        reply.status,
        200,
        "the server keeps serving: {}",
        reply.text()
    );
    let reply = send(&app, Method::GET, "/health", None).await;
    assert_eq!(reply.status, 200);
    let metrics = send(&app, Method::GET, "/metrics", None).await.text();
    assert!(
        metrics.contains("bge_m3_batch_failures_total 1\n"),
        "{metrics}"
    );
    drop(app);
    worker.join().unwrap();
}

#[tokio::test]
async fn non_finite_output_is_500_on_every_route() {
    let app = bge_m3_server::app(AppState::try_new(&nan_args()).unwrap());
    let cases = [
        ("/v1/embeddings", json!({ "input": "a dog" })),
        (
            "/v1/encode",
            json!({ "input": ["dog", "a dog"], "outputs": ["colbert"] }),
        ),
        ("/embed", json!({ "inputs": "a dog" })),
        ("/embed_sparse", json!({ "inputs": ["a dog"] })),
    ];
    for (path, body) in cases {
        let reply = post(&app, path, &body.to_string()).await;
        assert_eq!(reply.status, 500, "{path}: {}", reply.text());
        assert!(
            reply.text().contains("non-finite"),
            "{path}: {}",
            reply.text()
        );
        assert!(!reply.text().contains("null"), "{path}: {}", reply.text());
    }
    let reply = post(&app, "/embed", r#"{"inputs": "a dog"}"#).await;
    assert_eq!(reply.json()["error_type"], "Backend");
}
