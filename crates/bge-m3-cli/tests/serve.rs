//! Runs `bge-m3 serve` as a process: start, a request, and shutdown on SIGTERM with
//! a request in flight. Traffic goes to 127.0.0.1 only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

fn tiny_model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny-bge-m3")
}

/// Starts the server on a free loopback port and returns it with its address, read
/// from the "server listening" log line, and the lines logged after it.
fn start_server() -> (Child, SocketAddr, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bge-m3"))
        .args(["serve", "--port", "0", "--model"])
        .arg(tiny_model_dir())
        .env("RUST_LOG", "info,ort=warn")
        .env_remove("BGE_M3_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bge-m3 serve starts");
    let lines = read_lines(child.stderr.take().unwrap());
    let address = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs its address within 60 s");
        if line.contains("server listening") {
            break parse_address(&line);
        }
    };
    (child, address, lines)
}

fn read_lines(stderr: ChildStderr) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

fn parse_address(line: &str) -> SocketAddr {
    let start = line.find("address=").expect("the line has an address") + "address=".len();
    let address = line[start..].split_whitespace().next().unwrap();
    address
        .parse()
        .unwrap_or_else(|_| panic!("invalid address in {line:?}"))
}

/// Sends one HTTP/1.1 request and returns the status code and body.
fn request(address: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("the server accepts the connection");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().expect("a status code");
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

fn post(address: SocketAddr, path: &str, body: &str) -> (u16, String) {
    request(address, "POST", path, body)
}

/// Waits until the server has admitted a request and not yet sent its response.
fn wait_until_busy(address: SocketAddr) {
    for _ in 0..1000 {
        let (_, metrics) = request(address, "GET", "/metrics", "");
        if !metrics.contains("bge_m3_queued_tokens 0\n") {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!("the request never reached the queue");
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM failed");
}

#[test]
fn serve_answers_and_stops_on_sigterm() {
    let (mut child, address, lines) = start_server();
    let (status, body) = post(address, "/v1/embeddings", r#"{"input": "hello"}"#);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"embedding\""), "{body}");

    terminate(&child);
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit}");
    let logged: Vec<String> = lines.try_iter().collect();
    assert!(
        logged.iter().any(|line| line.contains("SIGTERM")),
        "{logged:#?}"
    );
    assert!(
        logged.iter().any(|line| line.contains("server stopped")),
        "{logged:#?}"
    );
}

#[test]
fn sigterm_finishes_request_in_flight() {
    let (mut child, address, _lines) = start_server();
    // 64 texts of about 1000 tokens keep the tiny model busy for a while: about 6 s
    // in a debug build on 2 cores.
    let long = "word ".repeat(500);
    let texts: Vec<&str> = vec![long.as_str(); 64];
    let body = serde_json::json!({ "input": texts, "truncate": true, "outputs": ["dense"] });
    let in_flight = thread::spawn(move || post(address, "/v1/encode", &body.to_string()));
    wait_until_busy(address);

    terminate(&child);
    thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(address).is_err(),
        "the server stops accepting connections after SIGTERM"
    );
    let (status, response) = in_flight.join().unwrap();
    assert_eq!(status, 200, "the request in flight completes: {response}");
    let json: serde_json::Value = serde_json::from_str(&response).unwrap();
    assert_eq!(json["data"].as_array().unwrap().len(), 64);
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit}");
}

/// Waits up to 60 s for the process to exit, and kills it if it has not.
fn wait_with_deadline(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    panic!("the server was still running 60 s after the signal");
}

/// Waits until a logged line contains `text`, and returns every line read.
fn wait_for_line(lines: &mpsc::Receiver<String>, text: &str) -> Vec<String> {
    let mut read = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) {
        let found = line.contains(text);
        read.push(line);
        if found {
            return read;
        }
    }
    panic!("no line contains {text:?}: {read:#?}");
}

#[test]
fn second_sigterm_ends_stuck_request() {
    let (mut child, address, lines) = start_server();
    // A request whose body never arrives in full keeps its connection open.
    let mut stuck = TcpStream::connect(address).unwrap();
    let head = "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"input\":";
    stuck.write_all(head.as_bytes()).unwrap();
    thread::sleep(Duration::from_millis(300));

    terminate(&child);
    wait_for_line(&lines, "shutting down");
    thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "one signal waits for the request in flight"
    );

    terminate(&child);
    let exit = wait_with_deadline(&mut child);
    assert!(exit.success(), "exit status {exit}");
    wait_for_line(&lines, "second signal");
}

#[test]
fn taken_port_fails_before_model_load() {
    let occupant = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = occupant.local_addr().unwrap().port().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_bge-m3"))
        .args(["serve", "--port", &port, "--model"])
        .arg(tiny_model_dir())
        .env("RUST_LOG", "info,ort=warn")
        .env_remove("BGE_M3_API_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("failed to listen on 127.0.0.1"), "{stderr}");
    assert!(!stderr.contains("loading the model"), "{stderr}");
}
