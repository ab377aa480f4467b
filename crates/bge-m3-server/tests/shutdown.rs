//! Shutdown with a client that never finishes its request: the server waits for the
//! shutdown timeout, or stops at once on a second signal. Traffic goes to 127.0.0.1.

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::time::Duration;

use bge_m3_server::Stopped;
use common::{tiny_args, LocalServer};

/// Sends a request head and part of its body, and keeps the connection open.
async fn half_sent_request(server: &LocalServer) -> TcpStream {
    let mut stream = TcpStream::connect(server.address).unwrap();
    let head = "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"input\":";
    stream.write_all(head.as_bytes()).unwrap();
    // Gives the server time to read the head and wait for the rest of the body.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream
}

#[tokio::test]
async fn stuck_request_ends_at_timeout() {
    let mut args = tiny_args();
    args.shutdown_timeout = 1;
    let server = LocalServer::start(&args).await;
    let _stream = half_sent_request(&server).await;

    server.signal(1);
    let stopped = tokio::time::timeout(Duration::from_secs(60), server.stopped())
        .await
        .expect("the server stops after its 1 s shutdown timeout");
    assert_eq!(stopped, Stopped::TimedOut);
}

#[tokio::test]
async fn second_signal_stops_at_once() {
    let mut args = tiny_args();
    args.shutdown_timeout = 3600;
    let server = LocalServer::start(&args).await;
    let _stream = half_sent_request(&server).await;

    server.signal(1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !server.is_stopped(),
        "the server waits for the request in flight after one signal"
    );

    server.signal(2);
    let stopped = tokio::time::timeout(Duration::from_secs(60), server.stopped())
        .await
        .expect("the server stops on the second signal");
    assert_eq!(stopped, Stopped::Forced);
}

#[tokio::test]
async fn idle_server_stops_drained() {
    let server = LocalServer::start(&tiny_args()).await;
    server.signal(1);
    assert_eq!(server.stopped().await, Stopped::Drained);
}
