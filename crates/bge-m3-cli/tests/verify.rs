//! Runs `bge-m3 verify` against the tiny model's reference dump.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn reference_lines() -> Vec<Value> {
    let text =
        std::fs::read_to_string(fixtures_dir().join("goldens/reference_dump.jsonl")).unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn verify(reference: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bge-m3"))
        .args(["verify", "--model"])
        .arg(fixtures_dir().join("tiny-bge-m3"))
        .arg("--reference")
        .arg(reference)
        .env_remove("RUST_LOG")
        .output()
        .expect("bge-m3 starts")
}

/// Writes the dump with one record changed by `alter`, returning the file.
fn altered_dump(dir: &Path, index: usize, alter: impl FnOnce(&mut Value)) -> PathBuf {
    let mut lines = reference_lines();
    alter(&mut lines[index]);
    let text: String = lines.iter().map(|line| line.to_string() + "\n").collect();
    let path = dir.join("altered.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn verify_passes_on_reference_dump() {
    let output = verify(&fixtures_dir().join("goldens/reference_dump.jsonl"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let count = reference_lines().len();
    assert!(
        stdout.contains(&format!("total: {count} texts, {count} passed, 0 failed")),
        "{stdout}"
    );
    assert!(stdout.contains("top 5 engine:"));
    assert!(stdout.contains("min dense cosine"));
}

#[test]
fn verify_fails_on_altered_weight() {
    let dir = tempfile::tempdir().unwrap();
    let index = 5;
    let path = altered_dump(dir.path(), index, |record| {
        let sparse = record["sparse"].as_object_mut().unwrap();
        let (_, weight) = sparse.iter_mut().next().expect("text 5 has sparse weights");
        *weight = Value::from(weight.as_f64().unwrap() + 1e-3);
    });
    let output = verify(&path);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1 failed"), "{stdout}");
    let text = reference_lines()[index]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let preview: String = text.chars().take(20).collect();
    let failed_line = stdout
        .lines()
        .find(|line| line.contains("failed: line"))
        .unwrap();
    // The reference has no blank lines, so record `index` is on line `index + 1`.
    assert!(
        failed_line.contains(&format!("line {} ", index + 1)),
        "{failed_line}"
    );
    assert!(
        failed_line.contains(&preview),
        "{failed_line} names {preview:?}"
    );
    assert!(stdout.contains("a sparse weight differs by"), "{stdout}");
}

#[test]
fn verify_fails_on_altered_token_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = altered_dump(dir.path(), 0, |record| {
        record["input_ids"][1] = Value::from(3);
    });
    let output = verify(&path);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("token ids differ"), "{stdout}");
}

#[test]
fn verify_rejects_invalid_reference_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "{\"text\": \"only text\"}\n").unwrap();
    let output = verify(&path);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 1"), "{stderr}");
    assert!(stderr.contains("dump_reference.py"), "{stderr}");
}

#[test]
fn verify_fails_on_other_dense_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = altered_dump(dir.path(), 5, |record| {
        record["dense"].as_array_mut().unwrap().pop();
    });
    let output = Command::new(env!("CARGO_BIN_EXE_bge-m3"))
        .args(["verify", "--dense-tolerance", "inf", "--model"])
        .arg(fixtures_dir().join("tiny-bge-m3"))
        .arg("--reference")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("dense has 32 values, the reference 31"),
        "{stdout}"
    );
}

#[test]
fn verify_rejects_empty_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.jsonl");
    std::fs::write(&path, "").unwrap();
    let output = verify(&path);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no records"));
}
