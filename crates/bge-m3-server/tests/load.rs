//! Load test over loopback: 64 concurrent clients send requests of mixed lengths to
//! all embedding routes with mixed outputs. Every request must succeed and every
//! response must equal the library's output for that request alone, within 1e-6.
//!
//! Throughput and latency are printed (`-- --nocapture`) and never asserted, because
//! timing depends on the machine. `BGE_M3_LOAD_REQUESTS` sets the requests per client
//! (default 4, at most 64) and `BGE_M3_LOAD_THREADS` the server's `--threads`;
//! `docs/benchmarks.md` gives the command of the published figures.

mod common;

use std::time::{Duration, Instant};

use axum::body::Bytes;
use bge_m3::{Embedder, Embedding, Outputs};
use common::{
    assert_close, assert_sparse_close, floats, library, tiny_args, LocalServer, DENSE, SPARSE,
};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::task::JoinSet;

const CLIENTS: usize = 64;
const TIME_LIMIT: Duration = Duration::from_secs(600);

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// The route and outputs of one request.
#[derive(Debug, Clone, Copy)]
enum Route {
    OpenAi,
    TeiEmbed,
    TeiSparse,
    Encode(Outputs),
}

impl Route {
    fn outputs(self) -> Outputs {
        match self {
            Self::OpenAi | Self::TeiEmbed => DENSE,
            Self::TeiSparse => SPARSE,
            Self::Encode(outputs) => outputs,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::OpenAi => "/v1/embeddings",
            Self::TeiEmbed => "/embed",
            Self::TeiSparse => "/embed_sparse",
            Self::Encode(_) => "/v1/encode",
        }
    }

    fn body(self, texts: &[String]) -> String {
        let body = match self {
            Self::OpenAi => json!({ "input": texts, "model": "load" }),
            Self::TeiEmbed | Self::TeiSparse => json!({ "inputs": texts }),
            Self::Encode(outputs) => {
                let mut names = Vec::new();
                for (selected, name) in [
                    (outputs.dense, "dense"),
                    (outputs.sparse, "sparse"),
                    (outputs.colbert, "colbert"),
                ] {
                    if selected {
                        names.push(name);
                    }
                }
                json!({ "input": texts, "outputs": names })
            }
        };
        body.to_string()
    }
}

#[derive(Debug, Clone)]
struct PlannedRequest {
    route: Route,
    texts: Vec<String>,
}

struct Served {
    request: PlannedRequest,
    status: u16,
    /// The raw body, parsed after the timed part so that the client's parsing does
    /// not take CPU from the server.
    body: Bytes,
    latency: Duration,
}

impl Served {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// Plans the requests of every client from a fixed seed: 1 to 4 texts each, from
/// 1 to about 500 tokens, on a random route with random outputs.
fn plan(requests_per_client: usize) -> Vec<Vec<PlannedRequest>> {
    let mut rng = StdRng::seed_from_u64(20261204);
    let words = [
        "embedding",
        "modèle",
        "Vektor",
        "検索",
        "sparse",
        "слово",
        "ColBERT",
        "token",
    ];
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut requests = Vec::with_capacity(requests_per_client);
        for _ in 0..requests_per_client {
            let count = rng.random_range(1..=4);
            let texts = (0..count)
                .map(|_| {
                    let length = rng.random_range(0..=160);
                    let chosen: Vec<&str> = (0..length)
                        .map(|_| words[rng.random_range(0..words.len())])
                        .collect();
                    chosen.join(" ")
                })
                .collect();
            requests.push(PlannedRequest {
                route: random_route(&mut rng),
                texts,
            });
        }
        clients.push(requests);
    }
    clients
}

fn random_route(rng: &mut StdRng) -> Route {
    match rng.random_range(0..4) {
        0 => Route::OpenAi,
        1 => Route::TeiEmbed,
        2 => Route::TeiSparse,
        _ => loop {
            let outputs = Outputs {
                dense: rng.random_bool(0.5),
                sparse: rng.random_bool(0.5),
                colbert: rng.random_bool(0.5),
            };
            if !outputs.is_empty() {
                break Route::Encode(outputs);
            }
        },
    }
}

async fn send(client: &HttpClient, url: &str, request: PlannedRequest) -> Served {
    let http = hyper::Request::post(format!("{url}{}", request.route.path()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(request.route.body(&request.texts))))
        .unwrap();
    let started = Instant::now();
    let response = client.request(http).await.expect("the server answers");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let latency = started.elapsed();
    Served {
        request,
        status,
        body,
        latency,
    }
}

async fn run_clients(url: String, plans: Vec<Vec<PlannedRequest>>) -> Vec<Served> {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let mut tasks = JoinSet::new();
    for requests in plans {
        let client = client.clone();
        let url = url.clone();
        tasks.spawn(async move {
            let mut served = Vec::with_capacity(requests.len());
            for request in requests {
                served.push(send(&client, &url, request).await);
            }
            served
        });
    }
    let mut all = Vec::new();
    while let Some(result) = tasks.join_next().await {
        all.extend(result.unwrap());
    }
    all
}

/// Returns the outputs of one response in the library's types, whatever the route.
fn read_response(route: Route, body: &Value) -> Vec<Embedding> {
    let items: Vec<Value> = match route {
        Route::OpenAi | Route::Encode(_) => body["data"].as_array().unwrap().clone(),
        Route::TeiEmbed | Route::TeiSparse => body.as_array().unwrap().clone(),
    };
    items.iter().map(|item| read_item(route, item)).collect()
}

fn read_item(route: Route, item: &Value) -> Embedding {
    let mut embedding = Embedding {
        dense: None,
        sparse: None,
        colbert: None,
        tokens: 0,
        truncated: false,
    };
    match route {
        Route::OpenAi => embedding.dense = Some(floats(&item["embedding"])),
        Route::TeiEmbed => embedding.dense = Some(floats(item)),
        Route::TeiSparse => {
            let entries = item.as_array().unwrap().iter().map(|entry| {
                (
                    entry["index"].as_u64().unwrap() as u32,
                    entry["value"].as_f64().unwrap() as f32,
                )
            });
            embedding.sparse = Some(bge_m3::SparseEmbedding {
                entries: entries.collect(),
            });
        }
        Route::Encode(_) => {
            embedding.tokens = item["tokens"].as_u64().unwrap() as usize;
            embedding.dense = item.get("dense").map(floats);
            embedding.sparse = item.get("sparse").map(|sparse| {
                let ids = sparse["indices"].as_array().unwrap().iter();
                let values = sparse["values"].as_array().unwrap().iter();
                let entries = ids.zip(values).map(|(id, value)| {
                    (id.as_u64().unwrap() as u32, value.as_f64().unwrap() as f32)
                });
                bge_m3::SparseEmbedding {
                    entries: entries.collect(),
                }
            });
            embedding.colbert = item.get("colbert").map(|rows| {
                let data: Vec<f32> = rows.as_array().unwrap().iter().flat_map(floats).collect();
                let dim = rows[0].as_array().map_or(0, Vec::len);
                bge_m3::MultiVector { dim, data }
            });
        }
    }
    embedding
}

fn check(served: &Served, embedder: &Embedder, number: usize) {
    let request = &served.request;
    let body = served.json();
    assert_eq!(served.status, 200, "request {number}: {body}");
    let texts: Vec<&str> = request.texts.iter().map(String::as_str).collect();
    let outputs = request.route.outputs();
    let expected = embedder.embed_with(&texts, outputs, &mut |_| {}).unwrap();
    let got = read_response(request.route, &body);
    assert_eq!(
        got.len(),
        expected.len(),
        "request {number}: number of results"
    );
    for (index, (got, expected)) in got.iter().zip(&expected).enumerate() {
        let what = format!("request {number} ({:?}) input {index}", request.route);
        assert_eq!(got.dense.is_some(), outputs.dense, "{what}: dense present");
        assert_eq!(
            got.sparse.is_some(),
            outputs.sparse,
            "{what}: sparse present"
        );
        assert_eq!(
            got.colbert.is_some(),
            outputs.colbert,
            "{what}: ColBERT present"
        );
        if let (Some(got), Some(expected)) = (&got.dense, &expected.dense) {
            assert_close(got, expected, &format!("{what} dense"));
        }
        if let (Some(got), Some(expected)) = (&got.sparse, &expected.sparse) {
            assert_sparse_close(&got.entries, &expected.entries, &format!("{what} sparse"));
        }
        if let (Some(got), Some(expected)) = (&got.colbert, &expected.colbert) {
            assert_eq!(got.rows(), expected.rows(), "{what}: ColBERT rows");
            assert_close(&got.data, &expected.data, &format!("{what} ColBERT"));
        }
        if matches!(request.route, Route::Encode(_)) {
            assert_eq!(got.tokens, expected.tokens, "{what}: tokens");
        }
    }
}

/// The library's run over the same texts.
struct LibraryRun {
    tokens: usize,
    padded_tokens: usize,
    duration: Duration,
}

/// Embeds the same texts with the library alone, one call per set of outputs.
fn library_throughput(embedder: &Embedder, plans: &[Vec<PlannedRequest>]) -> LibraryRun {
    let mut groups: Vec<(Outputs, Vec<&str>)> = Vec::new();
    for request in plans.iter().flatten() {
        let outputs = request.route.outputs();
        let position = match groups.iter().position(|(group, _)| *group == outputs) {
            Some(position) => position,
            None => {
                groups.push((outputs, Vec::new()));
                groups.len() - 1
            }
        };
        groups[position]
            .1
            .extend(request.texts.iter().map(String::as_str));
    }
    let started = Instant::now();
    let mut lengths = Vec::new();
    for (outputs, texts) in &groups {
        let embeddings = embedder.embed_with(texts, *outputs, &mut |_| {}).unwrap();
        lengths.push(
            embeddings
                .iter()
                .map(|embedding| embedding.tokens)
                .collect::<Vec<_>>(),
        );
    }
    let duration = started.elapsed();

    let limits = embedder.batch_limits();
    let padded_tokens = lengths
        .iter()
        .flat_map(|group| bge_m3::plan_batches(group, &limits))
        .map(|batch| batch.members.len() * batch.sequence)
        .sum();
    LibraryRun {
        tokens: lengths.iter().flatten().sum(),
        padded_tokens,
        duration,
    }
}

/// Runs the library with the model threads the server used (`--threads`, else the
/// physical cores minus one).
fn library_with_threads(
    args: &bge_m3_server::ServeArgs,
    plans: &[Vec<PlannedRequest>],
) -> LibraryRun {
    let cores = bge_m3::default_threads();
    let threads = args.threads.unwrap_or(cores.saturating_sub(1).max(1));
    let options = bge_m3::EmbedderOptions::new()
        .with_max_length(args.max_input_tokens)
        .with_token_budget(args.token_budget)
        .with_threads(threads);
    let embedder = Embedder::try_new(&args.model, options).unwrap();
    library_throughput(&embedder, plans)
}

async fn fetch_metrics(url: &str) -> String {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let request = hyper::Request::get(format!("{url}/metrics"))
        .body(Full::default())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} is missing from /metrics"))
}

/// Prints how the server batched: model time, texts per call and padding.
fn print_batch_metrics(metrics: &str, wall: Duration) {
    let batches = metric(metrics, "bge_m3_batches_total");
    let model_seconds = metric(metrics, "bge_m3_batch_duration_seconds_sum");
    let texts = metric(metrics, "bge_m3_embedded_texts_total");
    let tokens = metric(metrics, "bge_m3_embedded_tokens_total");
    let padded = metric(metrics, "bge_m3_batch_padded_tokens_sum");
    println!(
        "batches: {batches} model calls, {:.1} texts per call, {:.0}% padding, \
         model busy {:.0}% of the wall time",
        texts / batches,
        100.0 * (padded - tokens) / padded,
        100.0 * model_seconds / wall.as_secs_f64(),
    );
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_clients_get_library_results() {
    let requests_per_client: usize = std::env::var("BGE_M3_LOAD_REQUESTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(4)
        .clamp(1, 64);
    let mut args = tiny_args();
    args.threads = std::env::var("BGE_M3_LOAD_THREADS")
        .ok()
        .and_then(|value| value.parse().ok());
    let plans = plan(requests_per_client);
    let server = LocalServer::start(&args).await;

    let started = Instant::now();
    let served = tokio::time::timeout(TIME_LIMIT, run_clients(server.url(), plans.clone()))
        .await
        .expect("the load test finishes within its time limit");
    let wall = started.elapsed();
    let metrics = fetch_metrics(&server.url()).await;
    server.stop().await;

    assert_eq!(
        served.len(),
        CLIENTS * requests_per_client,
        "every request got a response"
    );
    let embedder = library(&args);
    for (number, served) in served.iter().enumerate() {
        check(served, &embedder, number);
    }

    let library_run = library_throughput(&embedder, &plans);
    let (tokens, library_time) = (library_run.tokens, library_run.duration);
    let mut latencies: Vec<Duration> = served.iter().map(|served| served.latency).collect();
    latencies.sort();
    let server_rate = tokens as f64 / wall.as_secs_f64();
    let library_rate = tokens as f64 / library_time.as_secs_f64();
    println!(
        "load: {} requests, {} texts, {tokens} tokens from {CLIENTS} clients",
        served.len(),
        plans
            .iter()
            .flatten()
            .map(|request| request.texts.len())
            .sum::<usize>(),
    );
    println!("server: {wall:.2?}, {server_rate:.0} tokens/s");
    let library_padding = 1.0 - tokens as f64 / library_run.padded_tokens as f64;
    println!(
        "library alone, default threads: {library_time:.2?}, {library_rate:.0} tokens/s, \
         {:.0}% padding",
        100.0 * library_padding
    );
    println!(
        "server / library throughput: {:.1}%",
        100.0 * server_rate / library_rate
    );
    let same_threads = library_with_threads(&args, &plans);
    let same_rate = tokens as f64 / same_threads.duration.as_secs_f64();
    println!(
        "library alone, the server's threads: {:.2?}, {same_rate:.0} tokens/s",
        same_threads.duration
    );
    println!(
        "server / library throughput at the same threads: {:.1}%",
        100.0 * server_rate / same_rate
    );
    print_batch_metrics(&metrics, wall);
    println!(
        "latency: p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap(),
    );
}
