//! The official `openai` Python client gets embeddings from the server, in float and
//! base64 formats. The client lives in `.venv-openai/`, made by
//! `bash scripts/setup-openai-client.sh` (which `scripts/test.sh` runs).

mod common;

use std::path::PathBuf;
use std::process::Command;

use bge_m3_server::ApiKey;
use common::{assert_close, floats, library, library_embed, tiny_args, LocalServer, DENSE};
use serde_json::Value;

const TEXTS: [&str; 3] = ["What is BGE-M3?", "Ein zweiter Text.", "三つ目"];

fn client_python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv-openai/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `bash scripts/setup-openai-client.sh` to install the openai client",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_client_gets_float_and_base64() {
    let python = client_python();
    let mut args = tiny_args();
    args.api_key = Some("local-test-key".parse::<ApiKey>().unwrap());
    let server = LocalServer::start(&args).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py");
    let texts = serde_json::to_string(&TEXTS).unwrap();
    let url = server.url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([url.as_str(), "local-test-key", texts.as_str()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    server.stop().await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the openai client failed:\n{stderr}"
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();

    let expected = library_embed(&library(&args), &TEXTS, DENSE);
    for format in ["float", "base64"] {
        let vectors = result[format].as_array().unwrap();
        assert_eq!(vectors.len(), TEXTS.len(), "{format}");
        for (index, vector) in vectors.iter().enumerate() {
            let dense = expected[index].dense.as_ref().unwrap();
            assert_close(&floats(vector), dense, &format!("{format} input {index}"));
        }
    }
    let default = &result["default"][0];
    assert_close(
        &floats(default),
        expected[0].dense.as_ref().unwrap(),
        "default format",
    );
    assert_eq!(result["model"], "bge-m3");
    let tokens: usize = expected.iter().map(|embedding| embedding.tokens).sum();
    assert_eq!(result["prompt_tokens"], tokens);

    let error = &result["token_ids_error"];
    assert_eq!(error["status"], 400, "{result}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("token ids are not accepted"),
        "{error}"
    );
}
