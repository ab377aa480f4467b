//! `bge-m3 download` and `embed --model <repo id>` against a mock Hub on 127.0.0.1.

#[path = "../../bge-m3/tests/common/mock_hub.rs"]
mod mock_hub;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mock_hub::{MockHub, Repo};

const REPO: &str = "BAAI/bge-m3";
const COMMIT: &str = "5617a9f61b028005a4858fdac845db406aefb181";

fn official_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny-bge-m3-official")
}

fn serve_official() -> MockHub {
    let hub = MockHub::start();
    hub.add_repo(REPO, Repo::from_dir(&official_fixture(), COMMIT));
    hub
}

/// Returns the command with a Hub environment of its own: `endpoint` and `home` as
/// `HF_HOME`.
fn bge_m3(endpoint: &str, home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bge-m3"));
    for variable in [
        "BGE_M3_MODEL",
        "RUST_LOG",
        "HF_TOKEN",
        "HF_TOKEN_PATH",
        "HF_HUB_CACHE",
        "HF_HUB_OFFLINE",
    ] {
        command.env_remove(variable);
    }
    command
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn run(mut command: Command, stdin: &[u8]) -> Output {
    let mut child = command.spawn().expect("bge-m3 starts");
    // A command that fails before reading its input closes the pipe early.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn download_prints_snapshot_folder() {
    let hub = serve_official();
    let home = tempfile::tempdir().unwrap();
    let mut command = bge_m3(&hub.url(), home.path());
    command.arg("download");
    let output = run(command, b"");
    assert!(output.status.success(), "{}", stderr(&output));

    let printed = String::from_utf8(output.stdout).unwrap();
    let expected = home
        .path()
        .join("hub/models--BAAI--bge-m3/snapshots")
        .join(COMMIT);
    assert_eq!(printed.trim_end(), expected.display().to_string());
    assert!(expected.join("onnx/model.onnx_data").is_file());
    assert!(expected.join("sparse_linear.pt").is_file());
}

#[test]
fn embed_downloads_default_repository() {
    let hub = serve_official();
    let home = tempfile::tempdir().unwrap();
    let mut command = bge_m3(&hub.url(), home.path());
    command.args(["embed", "--dense"]);
    let output = run(command, b"A test text!\n");
    assert!(output.status.success(), "{}", stderr(&output));
    let record: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(record["dense"].as_array().unwrap().len(), 32);
}

#[test]
fn embed_offline_uses_cache() {
    let mut hub = serve_official();
    let home = tempfile::tempdir().unwrap();
    let mut command = bge_m3(&hub.url(), home.path());
    command.arg("download");
    assert!(run(command, b"").status.success());
    let endpoint = hub.url();
    hub.stop();

    let mut command = bge_m3(&endpoint, home.path());
    command
        .env("HF_HUB_OFFLINE", "1")
        .args(["embed", "--model", REPO, "--sparse"]);
    let output = run(command, b"A test text!\n");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), 1);
}

#[test]
fn download_of_missing_repository_fails() {
    let hub = serve_official();
    let home = tempfile::tempdir().unwrap();
    let mut command = bge_m3(&hub.url(), home.path());
    command.args(["download", "nobody/nothing"]);
    let output = run(command, b"");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("repository nobody/nothing not found"),
        "{message}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn model_that_is_neither_folder_nor_repository() {
    let home = tempfile::tempdir().unwrap();
    let mut command = bge_m3("http://127.0.0.1:9", home.path());
    command.args(["embed", "--model", "no/such/folder"]);
    let output = run(command, b"text\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("neither an existing model folder"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bench_downloads_repository() {
    let hub = serve_official();
    let home = tempfile::tempdir().unwrap();
    let input = home.path().join("texts.jsonl");
    std::fs::write(&input, "{\"text\": \"A test text!\"}\n").unwrap();
    let mut command = bge_m3(&hub.url(), home.path());
    command
        .args(["bench", "--model", REPO, "--repeat", "1", "--input"])
        .arg(&input);
    let output = run(command, b"");
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["texts"], 1);
}

#[test]
fn serve_names_model_by_repository() {
    use std::io::{BufRead as _, BufReader};

    let hub = serve_official();
    let home = tempfile::tempdir().unwrap();
    let mut command = bge_m3(&hub.url(), home.path());
    command
        .env("RUST_LOG", "info,ort=warn")
        .args(["serve", "--port", "0", "--model", REPO]);
    let mut child = command.spawn().expect("bge-m3 serve starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut read = Vec::new();
    for line in stderr.lines().map_while(Result::ok) {
        let listening = line.contains("server listening");
        read.push(line);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    child.wait().unwrap();
    let listening = read
        .iter()
        .find(|line| line.contains("server listening"))
        .unwrap_or_else(|| panic!("the server never listened: {read:#?}"));
    assert!(listening.contains("model=BAAI/bge-m3"), "{listening}");
}

#[test]
fn download_of_folder_says_folders_need_none() {
    let home = tempfile::tempdir().unwrap();
    let mut command = bge_m3("http://127.0.0.1:9", home.path());
    command.arg("download").arg(official_fixture());
    let output = run(command, b"");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("is a folder"), "{message}");
    assert!(message.contains("Hub repository id"), "{message}");
}
