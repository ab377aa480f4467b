//! Helpers shared by the server tests: fixtures, requests through the router and
//! comparisons with the library.
#![allow(dead_code)]

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use bge_m3::{Embedder, EmbedderOptions, Embedding, Outputs};
use bge_m3_server::{AppState, ServeArgs};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

/// The tolerance of the library's own batching tests: a text's outputs may differ
/// by this much between batches of different shapes.
pub const TOLERANCE: f32 = 1e-6;

/// Returns a folder of `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    assert!(
        dir.join("model.onnx").is_file(),
        "{} is missing: run `python python/make_test_model.py` (see tests/fixtures/README.md)",
        dir.display()
    );
    dir
}

/// Returns the flags for the tiny test model.
pub fn tiny_args() -> ServeArgs {
    ServeArgs::for_model(fixture("tiny-bge-m3"))
}

/// Returns a library embedder with the options the server derives from `args`.
pub fn library(args: &ServeArgs) -> Embedder {
    let options = EmbedderOptions::new()
        .with_max_length(args.max_input_tokens)
        .with_token_budget(args.token_budget);
    Embedder::try_new(&args.model, options).unwrap()
}

/// Returns the library's outputs for `texts` embedded alone, in one call.
pub fn library_embed(embedder: &Embedder, texts: &[&str], outputs: Outputs) -> Vec<Embedding> {
    embedder.embed_with(texts, outputs, &mut |_| {}).unwrap()
}

/// A response read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// Parses the body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Returns the body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request through the router, without a socket.
pub async fn send(app: &Router, method: Method, path: &str, body: Option<&str>) -> Reply {
    send_with(app, method, path, body, &[]).await
}

/// Sends one request with extra headers through the router.
pub async fn send_with(
    app: &Router,
    method: Method,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = match body {
        Some(text) => {
            builder = builder.header("content-type", "application/json");
            Body::from(text.to_owned())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(builder.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// POSTs a JSON body.
pub async fn post(app: &Router, path: &str, body: &str) -> Reply {
    send(app, Method::POST, path, Some(body)).await
}

/// Returns a router over a freshly loaded state.
pub fn app_for(args: &ServeArgs) -> Router {
    bge_m3_server::app(AppState::try_new(args).unwrap())
}

/// Reads a JSON array of numbers as float32.
pub fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array of numbers, got {value}"))
        .iter()
        .map(|number| {
            number
                .as_f64()
                .unwrap_or_else(|| panic!("not a number: {number}")) as f32
        })
        .collect()
}

/// Decodes base64 of little-endian float32.
pub fn base64_floats(value: &Value) -> Vec<f32> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    assert_eq!(
        bytes.len() % 4,
        0,
        "base64 length is not a multiple of 4 bytes"
    );
    bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap()))
        .collect()
}

/// Asserts that two vectors have the same length and differ by at most [`TOLERANCE`].
pub fn assert_close(served: &[f32], expected: &[f32], what: &str) {
    assert_eq!(served.len(), expected.len(), "{what}: lengths differ");
    for (index, (a, b)) in served.iter().zip(expected).enumerate() {
        assert!(
            (a - b).abs() <= TOLERANCE,
            "{what}[{index}]: served {a}, library {b}"
        );
    }
}

/// Asserts that served sparse weights (`[(id, weight)]`) equal the library's.
pub fn assert_sparse_close(served: &[(u32, f32)], expected: &[(u32, f32)], what: &str) {
    let served_ids: Vec<u32> = served.iter().map(|entry| entry.0).collect();
    let expected_ids: Vec<u32> = expected.iter().map(|entry| entry.0).collect();
    assert_eq!(served_ids, expected_ids, "{what}: token ids differ");
    for ((id, a), (_, b)) in served.iter().zip(expected) {
        assert!(
            (a - b).abs() <= TOLERANCE,
            "{what}: weight of id {id}: served {a}, library {b}"
        );
    }
}

/// Outputs with only the dense vector.
pub const DENSE: Outputs = Outputs {
    dense: true,
    sparse: false,
    colbert: false,
};

/// Outputs with only the sparse weights.
pub const SPARSE: Outputs = Outputs {
    dense: false,
    sparse: true,
    colbert: false,
};

/// A server on a loopback port, stopped when [`LocalServer::stop`] is called.
pub struct LocalServer {
    pub address: std::net::SocketAddr,
    signals: tokio::sync::watch::Sender<u32>,
    task: tokio::task::JoinHandle<std::io::Result<bge_m3_server::Stopped>>,
}

impl LocalServer {
    /// Starts a server for `args` on 127.0.0.1 with a free port.
    pub async fn start(args: &ServeArgs) -> Self {
        let state = AppState::try_new(args).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (signals, received) = tokio::sync::watch::channel(0);
        let timeout = std::time::Duration::from_secs(args.shutdown_timeout);
        let task = tokio::spawn(bge_m3_server::serve(listener, state, received, timeout));
        Self {
            address,
            signals,
            task,
        }
    }

    /// Returns the base URL, such as `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops accepting connections and waits for the requests in flight.
    pub async fn stop(self) {
        self.signal(1);
        assert_eq!(self.stopped().await, bge_m3_server::Stopped::Drained);
    }

    /// Sets the count of shutdown signals received, as a signal handler would.
    pub fn signal(&self, count: u32) {
        self.signals.send_replace(count);
    }

    /// Returns whether the server has stopped.
    pub fn is_stopped(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the server to stop and returns how it stopped.
    pub async fn stopped(self) -> bge_m3_server::Stopped {
        self.task.await.unwrap().unwrap()
    }
}
