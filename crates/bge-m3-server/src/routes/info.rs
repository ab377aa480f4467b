//! `GET /health`, `GET /info`, `GET /metrics` and `GET /openapi.json`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::openapi;
use crate::state::AppState;

/// Returns 200 while the queue worker runs, else 503. Needs no API key, for load
/// balancer health checks.
pub(super) async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.queue().is_running() {
        Ok(Json(json!({ "status": "ok" })))
    } else {
        Err(ApiError::Unavailable)
    }
}

/// Returns the model, its sizes and the request limits.
pub(super) async fn info(State(state): State<AppState>) -> Json<Value> {
    let info = state.info();
    let limits = state.limits();
    Json(json!({
        "model": info.name,
        "dimensions": info.dimensions,
        "outputs": ["dense", "sparse", "colbert"],
        "max_input_tokens": info.max_input_tokens,
        "token_budget": info.token_budget,
        "limits": {
            "max_inputs": limits.max_inputs,
            "max_payload_bytes": limits.max_payload_bytes,
            "max_queued_tokens": limits.max_queued_tokens,
            "auto_truncate": limits.auto_truncate,
        },
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// Returns the metrics in the Prometheus text format.
pub(super) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.metrics().render(state.queue().queued_tokens());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// Returns the OpenAPI document of the server.
pub(super) async fn openapi() -> Json<Value> {
    Json(openapi::document())
}
