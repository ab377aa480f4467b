//! Runs `bge-m3 bench` on the tiny test model and checks its JSON report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn tiny_model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny-bge-m3")
}

/// Writes `texts` as JSONL records into `dir` and returns the file.
fn workload(dir: &Path, texts: &[&str]) -> PathBuf {
    let path = dir.join("workload.jsonl");
    let lines: String = texts
        .iter()
        .map(|text| serde_json::json!({ "text": text }).to_string() + "\n")
        .collect();
    std::fs::write(&path, lines).unwrap();
    path
}

fn bench(input: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bge-m3"))
        .args(["bench", "--threads", "1", "--model"])
        .arg(tiny_model_dir())
        .arg("--input")
        .arg(input)
        .args(extra)
        .env_remove("BGE_M3_MODEL")
        .env_remove("RUST_LOG")
        .output()
        .expect("bge-m3 starts")
}

fn report(output: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bge-m3 bench failed: {stderr}");
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON object on stdout: {stdout}"
    );
    serde_json::from_str(&stdout).expect("stdout is JSON")
}

fn number(report: &Value, field: &str) -> f64 {
    let value = report[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {report}"));
    assert!(value.is_finite(), "{field} is {value}");
    value
}

const TEXTS: [&str; 3] = ["A test text!", "Текст для теста!", "short"];

#[test]
fn bench_throughput_report() {
    let dir = tempfile::tempdir().unwrap();
    let output = bench(&workload(dir.path(), &TEXTS), &["--repeat", "3"]);
    let report = report(&output);

    assert_eq!(report["engine"], "bge-m3");
    assert_eq!(report["mode"], "throughput");
    assert_eq!(report["outputs"], "all");
    assert_eq!(report["threads"], 1);
    assert_eq!(report["spinning"], true);
    assert_eq!(report["texts"], 3);
    // Three texts of at least one token each, plus <s> and </s> for each text.
    assert!(report["tokens"].as_u64().unwrap() > 6, "{report}");
    assert_eq!(report["seconds"].as_array().unwrap().len(), 3);
    assert!(report["p50_ms"].is_null());
    assert!(report["p99_ms"].is_null());

    let best = number(&report, "best_seconds");
    let median = number(&report, "median_seconds");
    assert!(best > 0.0);
    assert!(best <= median);
    let tokens = report["tokens"].as_f64().unwrap();
    let tokens_per_second = number(&report, "tokens_per_second");
    assert!((tokens_per_second - tokens / best).abs() <= 1e-6 * tokens_per_second);
    assert!((number(&report, "texts_per_second") - 3.0 / best).abs() <= 1e-3 * 3.0 / best);
}

#[test]
fn bench_memory_figures() {
    let dir = tempfile::tempdir().unwrap();
    let report = report(&bench(&workload(dir.path(), &TEXTS), &["--repeat", "1"]));

    assert!(number(&report, "load_seconds") > 0.0);
    let after_load = number(&report, "rss_after_load_mib");
    let peak = number(&report, "peak_rss_mib");
    let above_load = number(&report, "peak_rss_above_load_mib");
    assert!(
        after_load > 1.0,
        "a loaded model takes more than 1 MiB: {after_load}"
    );
    assert!(
        peak >= after_load,
        "peak {peak} below the RSS after the load {after_load}"
    );
    assert!(above_load >= 0.0);
    assert!(above_load <= peak);
}

#[test]
fn bench_spinning_off() {
    let dir = tempfile::tempdir().unwrap();
    let input = workload(dir.path(), &TEXTS);
    let output = bench(&input, &["--repeat", "1", "--spinning", "false"]);
    let report = report(&output);

    assert_eq!(report["spinning"], false);
    assert_eq!(report["texts"], 3);
    assert!(number(&report, "tokens_per_second") > 0.0);
}

#[test]
fn bench_latency_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let input = workload(dir.path(), &TEXTS);
    let output = bench(
        &input,
        &["--mode", "latency", "--calls", "7", "--outputs", "dense"],
    );
    let report = report(&output);

    assert_eq!(report["mode"], "latency");
    assert_eq!(report["outputs"], "dense");
    assert_eq!(report["seconds"].as_array().unwrap().len(), 7);
    let p50 = number(&report, "p50_ms");
    let p99 = number(&report, "p99_ms");
    assert!(p50 > 0.0);
    assert!(p50 <= p99);
    assert!((p50 - number(&report, "median_seconds") * 1e3).abs() < 1e-9);
}

#[test]
fn latency_counts_only_timed_texts() {
    let dir = tempfile::tempdir().unwrap();
    let input = workload(dir.path(), &TEXTS);
    let report = report(&bench(&input, &["--mode", "latency", "--calls", "2"]));

    // Two calls time the first two texts; the third is not in the figures.
    assert_eq!(report["texts"], 2);
    let tokens = number(&report, "tokens");
    let pass = number(&report, "median_seconds") * 2.0;
    assert!((number(&report, "tokens_per_second") - tokens / pass).abs() < 1e-6 * tokens / pass);
    assert!((number(&report, "texts_per_second") - 2.0 / pass).abs() < 1e-6 * 2.0 / pass);
}

#[test]
fn latency_rates_are_per_call() {
    let dir = tempfile::tempdir().unwrap();
    // Texts of 1, 2 and 3 words: 5 calls reach the first two twice.
    let input = workload(dir.path(), &["a", "a b", "a b c"]);
    let report = report(&bench(&input, &["--mode", "latency", "--calls", "5"]));

    let median = number(&report, "median_seconds");
    let texts_rate = number(&report, "texts_per_second");
    assert!(
        (texts_rate - 1.0 / median).abs() < 1e-9 / median,
        "{report}"
    );
    // The tokens of the 5 calls over 5 calls, not of the 3 texts over 3.
    let tokens = number(&report, "tokens");
    let tokens_rate = number(&report, "tokens_per_second");
    assert!(tokens_rate * median < tokens / 3.0, "{report}");
}

#[test]
fn count_of_other_mode_is_warned() {
    let dir = tempfile::tempdir().unwrap();
    let input = workload(dir.path(), &TEXTS);
    let cases = [
        (
            ["--mode", "latency", "--calls", "2", "--repeat", "2"],
            "--repeat applies",
        ),
        (
            ["--mode", "throughput", "--calls", "2", "--repeat", "1"],
            "--calls applies",
        ),
    ];
    for (flags, expected) in cases {
        let output = bench(&input, &flags);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
}

#[test]
fn bench_rejects_empty_input() {
    let dir = tempfile::tempdir().unwrap();
    let output = bench(&workload(dir.path(), &[]), &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("contains no texts"), "{stderr}");
}

#[test]
fn bench_rejects_invalid_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workload.jsonl");
    std::fs::write(&path, "{\"text\": \"one\"}\nnot json\n").unwrap();
    let output = bench(&path, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
}
