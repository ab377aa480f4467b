//! A Hugging Face Hub stand-in on 127.0.0.1, serving fixture folders as repositories.
//!
//! It responds like the Hub (observed through `huggingface_hub` 0.36): `GET
//! /api/models/{repo}/revision/{revision}` returns `sha` and `siblings`; `HEAD` and
//! `GET /{repo}/resolve/{revision}/{path}` redirect an LFS file with 302 to an absolute
//! storage URL, carrying `X-Linked-Etag` (SHA-256), `X-Linked-Size` and
//! `X-Repo-Commit`, and a regular file with a relative 307 to
//! `/api/resolve-cache/models/{repo}/{commit}/{path}`, which answers with `ETag` (git
//! blob SHA-1) and `Content-Length`. Storage URLs honour `Range: bytes=N-`. Errors carry
//! `X-Error-Code`. The storage URLs are served on a second port, so that they have
//! another origin than the endpoint, as the Hub's storage hosts do. Every request is
//! recorded, and a transfer can be cut short or corrupted on purpose.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Files at least this large are served as LFS files, like model weights on the Hub.
const LFS_MIN_BYTES: usize = 100_000;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A repository: its commit and files.
#[derive(Debug, Clone)]
pub struct Repo {
    pub commit: String,
    pub files: BTreeMap<String, Vec<u8>>,
    /// Token required to see the repository; without it the Hub returns 401.
    pub token: Option<String>,
    /// Files listed in `siblings` whose resolve URL returns 404 `EntryNotFound`.
    pub unresolvable: Vec<String>,
}

impl Repo {
    /// Reads every file under `dir`, with `/`-separated relative paths.
    pub fn from_dir(dir: &Path, commit: &str) -> Self {
        let mut files = BTreeMap::new();
        collect(dir, dir, &mut files);
        Self {
            commit: commit.to_owned(),
            files,
            token: None,
            unresolvable: Vec::new(),
        }
    }
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            files.insert(relative, std::fs::read(&path).unwrap());
        }
    }
}

/// A planned fault in the storage responses of one file.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Send this many body bytes, then close the connection.
    CutAfter(usize),
    /// Flip the first byte of the body.
    Corrupt,
}

#[derive(Default)]
struct State {
    repos: HashMap<String, Repo>,
    requests: Vec<Request>,
    /// Faults by file path, each used once.
    faults: HashMap<String, Vec<Fault>>,
}

/// The running server; it stops when dropped.
pub struct MockHub {
    /// The endpoint's address.
    address: SocketAddr,
    /// The storage host's address.
    storage: SocketAddr,
    state: Arc<Mutex<State>>,
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl MockHub {
    pub fn start() -> Self {
        let endpoint = TcpListener::bind("127.0.0.1:0").unwrap();
        let storage = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = endpoint.local_addr().unwrap();
        let storage_address = storage.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let threads = [endpoint, storage]
            .into_iter()
            .map(|listener| {
                let state = Arc::clone(&state);
                let stopping = Arc::clone(&stopping);
                std::thread::spawn(move || serve(listener, storage_address, state, stopping))
            })
            .collect();
        Self {
            address,
            storage: storage_address,
            state,
            stopping,
            threads,
        }
    }

    /// Returns the endpoint URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn add_repo(&self, id: &str, repo: Repo) {
        self.state.lock().unwrap().repos.insert(id.to_owned(), repo);
    }

    /// Cuts the next storage response of `file` after `bytes` bytes of body.
    pub fn cut_next_transfer(&self, file: &str, bytes: usize) {
        self.add_fault(file, Fault::CutAfter(bytes));
    }

    /// Corrupts the first byte of the next storage response of `file`.
    pub fn corrupt_next_transfer(&self, file: &str) {
        self.add_fault(file, Fault::Corrupt);
    }

    fn add_fault(&self, file: &str, fault: Fault) {
        let mut state = self.state.lock().unwrap();
        state.faults.entry(file.to_owned()).or_default().push(fault);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    /// Stops the server; connections to its port are refused afterwards.
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the blocking `accept` of each listener.
        let _ = TcpStream::connect(self.address);
        let _ = TcpStream::connect(self.storage);
        for thread in self.threads.drain(..) {
            thread.join().unwrap();
        }
    }
}

impl Drop for MockHub {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(
    listener: TcpListener,
    storage: SocketAddr,
    state: Arc<Mutex<State>>,
    stopping: Arc<AtomicBool>,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        // A client that drops the connection early is not a server failure.
        let _ = handle(stream, storage, &state);
    }
}

fn handle(mut stream: TcpStream, storage: SocketAddr, state: &Mutex<State>) -> std::io::Result<()> {
    let Some(request) = read_request(&stream)? else {
        return Ok(());
    };
    state.lock().unwrap().requests.push(request.clone());
    let response = route(&request, storage, state);
    response.write(&mut stream, request.method == "HEAD")
}

fn read_request(stream: &TcpStream) -> std::io::Result<Option<Request>> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    Ok(Some(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
    }))
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Body bytes actually sent; fewer than `body.len()` cuts the transfer.
    send_only: Option<usize>,
}

impl Response {
    fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            send_only: None,
        }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    fn error(status: u16, code: &str, message: &str) -> Self {
        Self::new(status)
            .header("X-Error-Code", code)
            .header("X-Error-Message", message)
            .body(message.as_bytes().to_vec())
    }

    fn write(&self, stream: &mut TcpStream, head_only: bool) -> std::io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        let has_length = self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
        if !has_length {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        stream.write_all(head.as_bytes())?;
        if !head_only {
            let sent = self
                .send_only
                .unwrap_or(self.body.len())
                .min(self.body.len());
            stream.write_all(&self.body[..sent])?;
        }
        stream.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Status",
    }
}

fn route(request: &Request, storage_address: SocketAddr, state: &Mutex<State>) -> Response {
    let path = request.path.split('?').next().unwrap_or("");
    if let Some(rest) = path.strip_prefix("/api/models/") {
        return repo_info(request, rest, state);
    }
    if let Some(rest) = path.strip_prefix("/api/resolve-cache/models/") {
        return resolve_cache(request, rest, state);
    }
    if let Some(sha256) = path.strip_prefix("/storage/") {
        return storage(request, sha256, state);
    }
    if let Some((repo, rest)) = path.split_once("/resolve/") {
        return resolve(
            request,
            repo.trim_start_matches('/'),
            rest,
            storage_address,
            state,
        );
    }
    Response::error(404, "EntryNotFound", "unknown route")
}

/// Returns the repository if the request may see it, else the Hub's error response.
fn visible_repo(request: &Request, id: &str, state: &Mutex<State>) -> Result<Repo, Response> {
    let repo = state.lock().unwrap().repos.get(id).cloned();
    let authorized = |repo: &Repo| match &repo.token {
        None => true,
        Some(token) => request.header("Authorization") == Some(&format!("Bearer {token}")),
    };
    match repo {
        Some(repo) if authorized(&repo) => Ok(repo),
        _ => Err(Response::error(401, "RepoNotFound", "Repository not found")),
    }
}

fn commit_of(repo: &Repo, revision: &str) -> Option<String> {
    (revision == "main" || revision == repo.commit).then(|| repo.commit.clone())
}

fn repo_info(request: &Request, rest: &str, state: &Mutex<State>) -> Response {
    let Some((id, revision)) = rest.rsplit_once("/revision/") else {
        return Response::error(404, "RepoNotFound", "Repository not found");
    };
    let repo = match visible_repo(request, id, state) {
        Ok(repo) => repo,
        Err(response) => return response,
    };
    let Some(commit) = commit_of(&repo, &decode(revision)) else {
        return Response::error(404, "RevisionNotFound", "Invalid rev id");
    };
    let siblings: Vec<serde_json::Value> = repo
        .files
        .keys()
        .map(|name| serde_json::json!({ "rfilename": name }))
        .collect();
    let json = serde_json::json!({
        "id": id,
        "modelId": id,
        "sha": commit,
        "private": false,
        "siblings": siblings,
    });
    Response::new(200)
        .header("Content-Type", "application/json")
        .body(json.to_string().into_bytes())
}

fn resolve(
    request: &Request,
    id: &str,
    rest: &str,
    storage: SocketAddr,
    state: &Mutex<State>,
) -> Response {
    let repo = match visible_repo(request, id, state) {
        Ok(repo) => repo,
        Err(response) => return response,
    };
    let (revision, file) = rest.split_once('/').unwrap_or((rest, ""));
    let file = decode(file);
    let Some(commit) = commit_of(&repo, &decode(revision)) else {
        return Response::error(404, "RevisionNotFound", "Invalid rev id");
    };
    let Some(bytes) = repo
        .files
        .get(&file)
        .filter(|_| !repo.unresolvable.contains(&file))
    else {
        return Response::error(404, "EntryNotFound", "Entry not found");
    };
    if bytes.len() < LFS_MIN_BYTES && !is_lfs_name(&file) {
        let location = format!(
            "/api/resolve-cache/models/{id}/{commit}/{}",
            file.replace('/', "%2F")
        );
        return Response::new(307)
            .header("Location", location)
            .header("X-Repo-Commit", commit)
            .body(b"Temporary Redirect.".to_vec());
    }
    let sha256 = hex(&Sha256::digest(bytes));
    let location = format!(
        "http://{storage}/storage/{sha256}?file={}&X-Signature=test",
        file.replace('/', "%2F")
    );
    let message = format!("Found. Redirecting to {location}");
    Response::new(302)
        .header("Location", location)
        .header("X-Repo-Commit", commit)
        .header("X-Linked-Etag", format!("\"{sha256}\""))
        .header("X-Linked-Size", bytes.len().to_string())
        // The ETag of an LFS file is the git id of its pointer file, not of its bytes.
        .header(
            "ETag",
            format!(
                "\"{}\"",
                git_sha1(lfs_pointer(&sha256, bytes.len()).as_bytes())
            ),
        )
        .body(message.into_bytes())
}

fn is_lfs_name(file: &str) -> bool {
    [".onnx", ".onnx_data", ".pt", "_attr__value"]
        .iter()
        .any(|suffix| file.ends_with(suffix))
}

fn lfs_pointer(sha256: &str, size: usize) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

fn resolve_cache(request: &Request, rest: &str, state: &Mutex<State>) -> Response {
    // `{owner}/{name}/{commit}/{encoded path}` or `{name}/{commit}/{encoded path}`.
    let parts: Vec<&str> = rest.split('/').collect();
    let (id, file) = match parts.as_slice() {
        [owner, name, _commit, file] => (format!("{owner}/{name}"), decode(file)),
        [name, _commit, file] => ((*name).to_owned(), decode(file)),
        _ => return Response::error(404, "EntryNotFound", "Entry not found"),
    };
    let repo = match visible_repo(request, &id, state) {
        Ok(repo) => repo,
        Err(response) => return response,
    };
    let Some(bytes) = repo.files.get(&file) else {
        return Response::error(404, "EntryNotFound", "Entry not found");
    };
    let response = Response::new(200)
        .header("ETag", format!("\"{}\"", git_sha1(bytes)))
        .header("X-Repo-Commit", repo.commit.clone())
        .header("Content-Length", bytes.len().to_string());
    apply_fault(response.body(bytes.clone()), &file, state)
}

fn storage(request: &Request, sha256: &str, state: &Mutex<State>) -> Response {
    let file = request
        .path
        .split_once("?file=")
        .and_then(|(_, query)| query.split('&').next())
        .map(decode)
        .unwrap_or_default();
    let bytes = {
        let state = state.lock().unwrap();
        let mut found = state.repos.values().flat_map(|repo| repo.files.values());
        found
            .find(|bytes| hex(&Sha256::digest(bytes)) == sha256)
            .cloned()
    };
    let Some(bytes) = bytes else {
        return Response::new(404).body(b"NoSuchKey".to_vec());
    };
    let start = request
        .header("Range")
        .and_then(|range| range.strip_prefix("bytes="))
        .and_then(|range| range.strip_suffix('-'))
        .and_then(|start| start.parse::<usize>().ok());
    let response = match start {
        Some(start) if start >= bytes.len() => return Response::new(416),
        Some(start) => Response::new(206)
            .header(
                "Content-Range",
                format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len()),
            )
            .header("Content-Length", (bytes.len() - start).to_string())
            .body(bytes[start..].to_vec()),
        None => Response::new(200)
            .header("Content-Length", bytes.len().to_string())
            .body(bytes),
    };
    apply_fault(response, &file, state)
}

fn apply_fault(mut response: Response, file: &str, state: &Mutex<State>) -> Response {
    let fault = {
        let mut state = state.lock().unwrap();
        state
            .faults
            .get_mut(file)
            .and_then(|faults| (!faults.is_empty()).then(|| faults.remove(0)))
    };
    match fault {
        Some(Fault::CutAfter(bytes)) => response.send_only = Some(bytes),
        Some(Fault::Corrupt) => {
            if let Some(first) = response.body.first_mut() {
                *first ^= 0xff;
            }
        }
        None => {}
    }
    response
}

fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' && index + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&value[index + 1..index + 3], 16) {
                decoded.push(byte);
                index += 3;
                continue;
            }
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8(decoded).unwrap()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Returns git's blob id of `bytes`.
pub fn git_sha1(bytes: &[u8]) -> String {
    let mut digest = Sha1::new();
    digest.update(format!("blob {}\0", bytes.len()).as_bytes());
    digest.update(bytes);
    hex(&digest.finalize())
}

/// Returns the SHA-256 of `bytes` in hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Returns whether the Hub serves `file` of `size` bytes as an LFS file.
pub fn is_lfs(file: &str, size: usize) -> bool {
    size >= LFS_MIN_BYTES || is_lfs_name(file)
}
