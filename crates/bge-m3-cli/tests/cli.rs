//! Runs the real `bge-m3` binary on the tiny test model.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn tiny_model_dir() -> PathBuf {
    fixtures_dir().join("tiny-bge-m3")
}

fn bge_m3() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bge-m3"));
    command.env_remove("BGE_M3_MODEL").env_remove("RUST_LOG");
    command
}

/// Runs the command with `stdin` as its input.
fn run_with_input(mut command: Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bge-m3 starts");
    // A command that fails before reading its input closes the pipe early.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn embed(model: &Path, extra: &[&str], stdin: &[u8]) -> Output {
    let mut command = bge_m3();
    command.arg("embed").arg("--model").arg(model).args(extra);
    run_with_input(command, stdin)
}

fn stdout_records(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each output line is JSON"))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn embed_writes_all_outputs_in_order() {
    let output = embed(
        &tiny_model_dir(),
        &[],
        "A test text!\n\nТекст для теста!\n".as_bytes(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let records = stdout_records(&output);
    assert_eq!(records.len(), 3);
    for record in &records {
        assert_eq!(record["dense"].as_array().unwrap().len(), 32);
        assert!(record["sparse"].is_object());
        let rows = record["colbert"].as_array().unwrap().len();
        assert_eq!(rows as u64 + 1, record["tokens"].as_u64().unwrap());
        assert_eq!(record["truncated"], Value::Bool(false));
    }
    assert_eq!(records[1]["tokens"], 2, "the empty line is the empty text");
}

#[test]
fn embed_reads_official_layout() {
    let model = fixtures_dir().join("tiny-bge-m3-official");
    let output = embed(&model, &[], "A test text!\nТекст для теста!\n".as_bytes());
    assert!(output.status.success(), "{}", stderr(&output));
    let records = stdout_records(&output);
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_eq!(record["dense"].as_array().unwrap().len(), 32);
        assert!(!record["sparse"].as_object().unwrap().is_empty());
        let rows = record["colbert"].as_array().unwrap();
        assert_eq!(rows.len() as u64 + 1, record["tokens"].as_u64().unwrap());
        assert_eq!(rows[0].as_array().unwrap().len(), 32);
    }
}

#[test]
fn embed_dense_only() {
    let output = embed(&tiny_model_dir(), &["--dense"], b"one\ntwo\n");
    assert!(output.status.success(), "{}", stderr(&output));
    let records = stdout_records(&output);
    assert_eq!(records.len(), 2);
    assert!(records[0].get("dense").is_some());
    assert!(records[0].get("sparse").is_none());
    assert!(records[0].get("colbert").is_none());
}

#[test]
fn embed_output_matches_golden() {
    let corpus = std::fs::read_to_string(fixtures_dir().join("goldens/corpus.jsonl")).unwrap();
    let first_line = corpus.split('\n').next().unwrap();
    let golden_line =
        std::fs::read_to_string(fixtures_dir().join("goldens/max_length_8192.jsonl")).unwrap();
    let golden: Value = serde_json::from_str(golden_line.split('\n').next().unwrap()).unwrap();

    let output = embed(
        &tiny_model_dir(),
        &["--jsonl", "--sparse"],
        format!("{first_line}\n").as_bytes(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let record = &stdout_records(&output)[0];
    let sparse = record["sparse"].as_object().unwrap();
    let golden_sparse = golden["sparse"].as_object().unwrap();
    assert_eq!(sparse.len(), golden_sparse.len());
    for (id, weight) in golden_sparse {
        let ours = sparse[id].as_f64().unwrap();
        assert!(
            (ours - weight.as_f64().unwrap()).abs() <= 1e-5,
            "weight of id {id}"
        );
    }
}

#[test]
fn jsonl_keeps_line_separators_inside_text() {
    let input = "{\"text\": \"para\\u2028sep\\u0085next\"}\n{\"text\": \"second\"}\n";
    let output = embed(&tiny_model_dir(), &["--jsonl", "--dense"], input.as_bytes());
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout_records(&output).len(), 2);
}

#[test]
fn invalid_utf8_keeps_earlier_output() {
    let output = embed(
        &tiny_model_dir(),
        &["--dense", "--chunk-size", "2"],
        b"one\ntwo\nthree\nbad \xff\nfive\n",
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stdout_records(&output).len(),
        3,
        "the three lines before the bad one"
    );
    let message = stderr(&output);
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("UTF-8"), "{message}");
}

#[test]
fn invalid_json_keeps_earlier_output() {
    let input = b"{\"text\": \"one\"}\n{\"text\": \"two\"\n{\"text\": \"three\"}\n";
    let output = embed(&tiny_model_dir(), &["--jsonl", "--dense"], input);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stdout_records(&output).len(), 1);
    let message = stderr(&output);
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn json_without_text_field_is_rejected() {
    let output = embed(&tiny_model_dir(), &["--jsonl"], b"{\"body\": \"one\"}\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("\"text\""), "{}", stderr(&output));
}

#[test]
fn input_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("texts.txt");
    std::fs::write(&path, "first\nsecond\nthird\n").unwrap();
    let mut command = bge_m3();
    command
        .arg("embed")
        .arg("--model")
        .arg(tiny_model_dir())
        .arg("--input")
        .arg(&path)
        .arg("--dense");
    let output = run_with_input(command, b"");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout_records(&output).len(), 3);
}

#[test]
fn missing_runtime_says_how_to_install() {
    let mut command = bge_m3();
    command
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .arg("embed")
        .arg("--model")
        .arg(tiny_model_dir());
    let output = run_with_input(command, b"text\n");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("ONNX Runtime shared library not found"),
        "{message}"
    );
    assert!(
        message.contains("scripts/setup-onnxruntime.sh"),
        "{message}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn missing_model_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        tiny_model_dir().join("model.onnx"),
        dir.path().join("model.onnx"),
    )
    .unwrap();
    std::fs::copy(
        tiny_model_dir().join("model.onnx_data"),
        dir.path().join("model.onnx_data"),
    )
    .unwrap();
    let output = embed(dir.path(), &[], b"text\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("tokenizer.json"),
        "{}",
        stderr(&output)
    );
}

/// A relative model path from an unrelated working directory.
#[test]
fn model_loads_from_other_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("models").join("tiny");
    std::fs::create_dir_all(&model).unwrap();
    for name in [
        "model.onnx",
        "model.onnx_data",
        "tokenizer.json",
        "special_tokens_map.json",
        "config.json",
    ] {
        std::fs::copy(tiny_model_dir().join(name), model.join(name)).unwrap();
    }
    let mut command = bge_m3();
    command
        .current_dir(dir.path())
        .args(["embed", "--model", "models/tiny", "--dense"]);
    let output = run_with_input(command, b"A test text!\n");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout_records(&output).len(), 1);
}

#[test]
fn long_text_is_flagged_not_dropped() {
    let long = "word ".repeat(100);
    let input = format!("short\n{long}\nshort\n");
    let output = embed(
        &tiny_model_dir(),
        &["--max-length", "16", "--dense"],
        input.as_bytes(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let records = stdout_records(&output);
    assert_eq!(records.len(), 3);
    assert_eq!(records[1]["truncated"], Value::Bool(true));
    assert_eq!(records[1]["tokens"], 16);
    assert_eq!(records[0]["truncated"], Value::Bool(false));
}

#[test]
fn invalid_max_length_is_a_usage_error() {
    let output = embed(&tiny_model_dir(), &["--max-length", "9000"], b"text\n");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("9000"), "{}", stderr(&output));
}

#[test]
fn non_finite_output_names_the_record() {
    let model = fixtures_dir().join("nan-outputs");
    let output = embed(&model, &["--chunk-size", "2"], b"b\nc\nd\nb a c\n");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stdout_records(&output).len(),
        2,
        "the first chunk is written"
    );
    let message = stderr(&output);
    assert!(message.contains("input record 4"), "{message}");
    assert!(message.contains("non-finite"), "{message}");
}

/// A reader that closes the pipe early, like `head -1`, ends the run quietly.
#[test]
fn closed_stdout_exits_quietly() {
    use std::io::BufRead as _;

    let mut child = bge_m3()
        .args(["embed", "--chunk-size", "16", "--model"])
        .arg(tiny_model_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = (0..600).map(|i| format!("text {i}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("{\"dense\""), "{first}");
    drop(stdout);
    writer.join().unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
}

#[test]
fn unreadable_input_is_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = bge_m3();
    command
        .arg("embed")
        .arg("--model")
        .arg(tiny_model_dir())
        .arg("--input")
        .arg(dir.path());
    let output = run_with_input(command, b"");
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("directory"), "{message}");
}

#[test]
fn jsonl_blank_lines_and_bom_are_accepted() {
    let input = b"\xef\xbb\xbf{\"text\": \"one\"}\n\n{\"text\": \"two\"}\n\n";
    let output = embed(&tiny_model_dir(), &["--jsonl", "--dense"], input);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout_records(&output).len(), 2);
}

#[test]
fn small_lengths_name_their_flag() {
    let cases = [
        ("--max-length", "1", "at least 2"),
        ("--token-budget", "0", "at least 1"),
    ];
    for (flag, value, expected) in cases {
        let output = embed(&tiny_model_dir(), &[flag, value], b"hello\n");
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{flag}: {message}");
        assert!(message.contains(flag), "{flag}: {message}");
        assert!(message.contains(expected), "{flag}: {message}");
    }
}

#[test]
fn revision_with_folder_is_warned() {
    let output = embed(
        &tiny_model_dir(),
        &["--revision", "v2", "--dense"],
        b"hello\n",
    );
    let message = stderr(&output);
    assert!(output.status.success(), "{message}");
    assert!(
        message.contains("--revision applies to Hub repositories only"),
        "{message}"
    );
}

#[test]
fn threads_over_cpus_are_warned() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let threads = (cpus + 1).to_string();
    let output = embed(
        &tiny_model_dir(),
        &["--threads", &threads, "--dense"],
        b"hello\n",
    );
    let message = stderr(&output);
    assert!(output.status.success(), "{message}");
    assert!(
        message.contains("more intra-op threads than CPUs"),
        "{message}"
    );
}
