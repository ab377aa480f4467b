//! Runs `bge-m3 score` and `bge-m3 embed --tokens` on the tiny test model.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn score_goldens() -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join("goldens/scores.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bge-m3"))
        .args(args)
        .arg("--model")
        .arg(fixtures_dir().join("tiny-bge-m3"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bge-m3 starts");
    // A command that fails before reading its input closes the pipe early.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn pairs_jsonl(goldens: &Value) -> String {
    goldens["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| serde_json::json!({"query": pair[0], "passage": pair[1]}).to_string() + "\n")
        .collect()
}

fn assert_close(found: &Value, expected: &Value, what: &str) {
    let (found, expected) = (found.as_f64().unwrap(), expected.as_f64().unwrap());
    assert!(
        (found - expected).abs() <= 1e-5,
        "{what}: found {found}, expected {expected}"
    );
}

const KINDS: [&str; 5] = [
    "dense",
    "sparse",
    "colbert",
    "sparse+dense",
    "colbert+sparse+dense",
];

#[test]
fn score_pairs_match_reference() {
    let goldens = score_goldens();
    let cases = [
        (vec![], "default_weights"),
        (vec!["--weights", "0.4,0.2,0.4"], "readme_weights"),
    ];
    for (extra, weights) in cases {
        let mut args = vec!["score"];
        args.extend(extra);
        let output = lines(&run(&args, pairs_jsonl(&goldens).as_bytes()));
        let expected = &goldens["compute_score_alone"][weights];
        assert_eq!(output.len(), goldens["pairs"].as_array().unwrap().len());
        for (index, line) in output.iter().enumerate() {
            for kind in KINDS {
                assert_close(
                    &line[kind],
                    &expected[kind][index],
                    &format!("{kind} of pair {index}, {weights}"),
                );
            }
        }
    }
}

#[test]
fn score_matrix_matches_reference() {
    let goldens = score_goldens();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, column: usize| {
        let path = dir.path().join(name);
        let texts: String = goldens["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| serde_json::json!({"text": pair[column]}).to_string() + "\n")
            .collect();
        std::fs::write(&path, texts).unwrap();
        path
    };
    let queries = write("queries.jsonl", 0);
    let passages = write("passages.jsonl", 1);
    let args = [
        "score",
        "--jsonl",
        "--queries",
        queries.to_str().unwrap(),
        "--passages",
        passages.to_str().unwrap(),
    ];
    let output = lines(&run(&args, b""));
    let matrices = &goldens["matrices"];
    assert_eq!(output.len(), matrices["dense"].as_array().unwrap().len());
    for (i, line) in output.iter().enumerate() {
        assert_eq!(line["query"], i);
        for (kind, golden) in [
            ("dense", "dense"),
            ("sparse", "lexical"),
            ("colbert", "colbert"),
        ] {
            for (j, value) in line[kind].as_array().unwrap().iter().enumerate() {
                assert_close(
                    value,
                    &matrices[golden][i][j],
                    &format!("{kind} of query {i}, passage {j}"),
                );
            }
        }
    }
}

#[test]
fn score_tokens_explain_sparse_score() {
    let input = b"{\"query\": \"a b the\", \"passage\": \"a a b c the\"}\n";
    let output = lines(&run(&["score", "--tokens"], input));
    let matches = output[0]["lexical_matches"].as_object().unwrap();
    assert!(!matches.is_empty());
    let sum: f64 = matches
        .values()
        .map(|pair| pair[0].as_f64().unwrap() * pair[1].as_f64().unwrap())
        .sum();
    assert!(
        (sum - output[0]["sparse"].as_f64().unwrap()).abs() < 1e-5,
        "sum {sum}"
    );
}

#[test]
fn score_invalid_pair_keeps_earlier_output() {
    let input = b"{\"query\": \"q\", \"passage\": \"p\"}\n{\"query\": \"q\"}\n";
    let output = run(&["score"], input);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("passage"), "{message}");
}

#[test]
fn score_rejects_two_weights() {
    let output = run(&["score", "--weights", "1,2"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("three values"));
}

#[test]
fn embed_tokens_keys_sparse_by_text() {
    let goldens = score_goldens();
    let token_texts = goldens["token_texts"].as_array().unwrap();
    let by_id = lines(&run(&["embed", "--sparse"], b"a test text!\n"));
    let by_text = lines(&run(&["embed", "--sparse", "--tokens"], b"a test text!\n"));
    let ids = by_id[0]["sparse"].as_object().unwrap();
    let texts = by_text[0]["sparse"].as_object().unwrap();
    assert_eq!(ids.len(), texts.len(), "no weight is lost");
    for (id, weight) in ids {
        let text = token_texts[id.parse::<usize>().unwrap()].as_str().unwrap();
        let keyed = texts
            .get(text)
            .or_else(|| texts.get(&format!("{text} [{id}]")));
        assert_eq!(keyed, Some(weight), "weight of token {id} ({text:?})");
    }
}

#[test]
fn score_extreme_weights_stay_finite() {
    let input = b"{\"query\": \"What is BGE-M3?\", \"passage\": \"An embedding model.\"}\n";
    let output = lines(&run(&["score", "--weights=3e38,3e38,3e38"], input));
    for kind in KINDS {
        let value = output[0][kind].as_f64();
        assert!(
            value.is_some_and(f64::is_finite),
            "{kind}: {}",
            output[0][kind]
        );
    }
    let dense = output[0]["dense"].as_f64().unwrap();
    let sparse = output[0]["sparse"].as_f64().unwrap();
    let sparse_dense = output[0]["sparse+dense"].as_f64().unwrap();
    assert!((sparse_dense - (dense + sparse) / 2.0).abs() < 1e-5);
}

#[test]
fn invalid_query_file_names_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let queries = dir.path().join("queries.jsonl");
    let passages = dir.path().join("passages.jsonl");
    std::fs::write(&queries, "q1\n").unwrap();
    std::fs::write(&passages, "{\"text\": \"p1\"}\n").unwrap();
    let output = run(
        &[
            "score",
            "--jsonl",
            "--queries",
            queries.to_str().unwrap(),
            "--passages",
            passages.to_str().unwrap(),
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    // An invalid line gives exit code 1, as on stdin.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("queries.jsonl"), "{stderr}");
    assert!(stderr.contains("input line 1"), "{stderr}");
    assert_eq!(stderr.matches("expected value").count(), 1, "{stderr}");
}

#[test]
fn jsonl_without_files_is_usage_error() {
    let output = run(
        &["score", "--jsonl"],
        b"{\"query\": \"a\", \"passage\": \"b\"}\n",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--queries"), "{stderr}");
    assert!(output.stdout.is_empty());
}
