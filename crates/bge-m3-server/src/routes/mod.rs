//! The router: every route, the API key check and the request metrics.
//!
//! | route | format |
//! |---|---|
//! | `POST /v1/embeddings` | OpenAI embeddings API, dense vectors |
//! | `POST /embed`, `POST /embed_sparse` | text-embeddings-inference |
//! | `POST /v1/encode` | native: dense, sparse and ColBERT from one forward pass |
//! | `POST /tokenize` | native: token ids and texts |
//! | `GET /health`, `/info`, `/metrics`, `/openapi.json` | service information |

mod encode;
mod info;
mod openai;
mod tei;
mod tokenize;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bge_m3::Embedding;
use serde::Serialize;

use crate::auth::require_api_key;
use crate::error::ApiError;
use crate::state::AppState;

/// Every route, with its method, as the router and the OpenAPI document list them.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/embeddings"),
    ("post", "/embed"),
    ("post", "/embed_sparse"),
    ("post", "/v1/encode"),
    ("post", "/tokenize"),
    ("get", "/health"),
    ("get", "/info"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

/// Builds the router of the server. Every route but `/health` requires the API key
/// when the server has one.
pub fn app(state: AppState) -> Router {
    let protected = Router::new()
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/embed", post(tei::embed))
        .route("/embed_sparse", post(tei::embed_sparse))
        .route("/v1/encode", post(encode::encode))
        .route("/tokenize", post(tokenize::tokenize))
        .route("/info", get(info::info))
        .route("/metrics", get(info::metrics))
        .route("/openapi.json", get(info::openapi))
        .route_layer(from_fn_with_state(state.clone(), require_api_key));
    Router::new()
        .route("/health", get(info::health))
        .merge(protected)
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(state.clone(), record_request))
        .layer(DefaultBodyLimit::max(state.limits().max_payload_bytes))
        .with_state(state)
}

async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound {
        path: uri.path().to_owned(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let error = ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    };
    error.into_response_for(uri.path())
}

/// Records the route, status and duration of every request.
async fn record_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state
        .metrics()
        .record_request(&route, status, started.elapsed());
    response
}

/// Token counts of a request, as the OpenAI API reports them.
#[derive(Debug, Clone, Copy, Serialize)]
struct Usage {
    /// Tokens given to the model, `<s>` and `</s>` included, after truncation.
    prompt_tokens: usize,
    /// The same as `prompt_tokens`: embedding generates no tokens.
    total_tokens: usize,
}

impl Usage {
    fn of(embeddings: &[Embedding]) -> Self {
        let tokens = embeddings.iter().map(|embedding| embedding.tokens).sum();
        Self {
            prompt_tokens: tokens,
            total_tokens: tokens,
        }
    }
}

/// Returns an output the request asked for. The library computes every requested
/// output, so a missing one is a bug, reported as a model failure.
fn required<T>(output: Option<T>, name: &str) -> Result<T, ApiError> {
    output.ok_or_else(|| ApiError::ModelFailed {
        message: format!("the model returned no {name} output"),
    })
}
