//! Hub downloads against a mock Hub on 127.0.0.1 that serves the fixture folders.
#![cfg(feature = "hub")]

mod common;

use std::path::{Path, PathBuf};

use bge_m3::hub::{fetch_model, HubOptions, NoProgress};
use bge_m3::{Embedder, EmbedderOptions, Error};
use common::mock_hub::{git_sha1, is_lfs, sha256, MockHub, Repo};
use common::{fixtures_dir, official_model_dir, tiny_model_dir};

const REPO: &str = "BAAI/bge-m3";
const COMMIT: &str = "5617a9f61b028005a4858fdac845db406aefb181";

/// The files the official layout needs; the fixture also has
/// `onnx/three_outputs.onnx` and `tokenizer_config.json`, which must not be fetched.
const OFFICIAL_FILES: [&str; 8] = [
    "onnx/model.onnx",
    "onnx/model.onnx_data",
    "onnx/Constant_95_attr__value",
    "colbert_linear.pt",
    "sparse_linear.pt",
    "tokenizer.json",
    "config.json",
    "special_tokens_map.json",
];

struct Setup {
    hub: MockHub,
    cache: tempfile::TempDir,
}

impl Setup {
    /// A mock Hub serving the official-layout fixture as `BAAI/bge-m3`.
    fn official() -> Self {
        let hub = MockHub::start();
        hub.add_repo(REPO, Repo::from_dir(&official_model_dir(), COMMIT));
        Self {
            hub,
            cache: tempfile::tempdir().unwrap(),
        }
    }

    fn options(&self) -> HubOptions {
        HubOptions::from_env()
            .with_endpoint(self.hub.url())
            .with_cache_dir(self.cache.path())
            .with_token(None)
            .with_offline(false)
            .with_retries(0)
    }

    fn fetch(&self) -> Result<PathBuf, Error> {
        fetch_model(REPO, &self.options(), &mut NoProgress)
    }

    fn repo_dir(&self) -> PathBuf {
        self.cache.path().join("models--BAAI--bge-m3")
    }

    /// Returns the blob of a fixture file, named by the ETag the Hub reports.
    fn blob(&self, file: &str) -> PathBuf {
        let bytes = std::fs::read(official_model_dir().join(file)).unwrap();
        let etag = if is_lfs(file, bytes.len()) {
            sha256(&bytes)
        } else {
            git_sha1(&bytes)
        };
        self.repo_dir().join("blobs").join(etag)
    }

    /// Returns the paths of storage downloads (bodies of LFS files) and of
    /// `resolve-cache` downloads (regular files) since the last clear.
    fn downloads(&self) -> Vec<String> {
        self.hub
            .requests()
            .into_iter()
            .filter(|request| request.method == "GET")
            .filter(|request| {
                request.path.starts_with("/storage/")
                    || request.path.starts_with("/api/resolve-cache/")
            })
            .map(|request| request.path)
            .collect()
    }
}

/// Asserts that `file` of a fetched snapshot has the bytes of the fixture's copy.
fn assert_fetched_intact(snapshot: &Path, file: &str) {
    let expected = std::fs::read(official_model_dir().join(file)).unwrap();
    let fetched = std::fs::read(snapshot.join(file)).unwrap();
    assert!(
        fetched == expected,
        "{file} differs from the fixture's copy"
    );
}

fn embed(dir: &Path) -> Vec<bge_m3::Embedding> {
    let embedder = Embedder::try_new(dir, EmbedderOptions::new()).unwrap();
    embedder
        .embed(&["A test text!", "Текст для теста!"])
        .unwrap()
}

#[test]
fn fresh_download_fills_cache() {
    let setup = Setup::official();
    let snapshot = setup.fetch().unwrap();

    assert_eq!(snapshot, setup.repo_dir().join("snapshots").join(COMMIT));
    let main = std::fs::read_to_string(setup.repo_dir().join("refs/main")).unwrap();
    assert_eq!(main, COMMIT);
    for file in OFFICIAL_FILES {
        let pointer = snapshot.join(file);
        let target =
            std::fs::read_link(&pointer).unwrap_or_else(|e| panic!("{file} is no symlink: {e}"));
        assert!(target.is_relative(), "{file} links to {}", target.display());
        assert_eq!(
            std::fs::canonicalize(&pointer).unwrap(),
            std::fs::canonicalize(setup.blob(file)).unwrap(),
            "{file} links to its blob"
        );
        assert_fetched_intact(&snapshot, file);
    }
    for unused in ["onnx/three_outputs.onnx", "tokenizer_config.json"] {
        assert!(!snapshot.join(unused).exists(), "{unused} was fetched");
    }
    assert_eq!(
        setup.downloads().len(),
        OFFICIAL_FILES.len(),
        "one download per file"
    );
}

/// The snapshot, symlinks and external data included, gives the fixture's outputs.
#[test]
fn cached_snapshot_loads() {
    let setup = Setup::official();
    let snapshot = setup.fetch().unwrap();
    assert_eq!(embed(&snapshot), embed(&official_model_dir()));
}

#[test]
fn second_run_downloads_nothing() {
    let setup = Setup::official();
    setup.fetch().unwrap();
    setup.hub.clear_requests();

    let snapshot = setup.fetch().unwrap();
    assert!(setup.downloads().is_empty(), "{:?}", setup.downloads());
    assert!(snapshot.join("onnx/model.onnx_data").is_file());
}

#[test]
fn stopped_hub_falls_back_to_cache() {
    let mut setup = Setup::official();
    let first = setup.fetch().unwrap();
    setup.hub.stop();

    let second = setup.fetch().unwrap();
    assert_eq!(second, first);
    assert_eq!(embed(&second), embed(&official_model_dir()));
}

#[test]
fn offline_mode_uses_cache_only() {
    let setup = Setup::official();
    let first = setup.fetch().unwrap();
    setup.hub.clear_requests();

    let offline = setup.options().with_offline(true);
    let second = fetch_model(REPO, &offline, &mut NoProgress).unwrap();
    assert_eq!(second, first);
    assert!(
        setup.hub.requests().is_empty(),
        "offline mode sent {:?}",
        setup.hub.requests()
    );
}

#[test]
fn offline_without_cache_is_an_error() {
    let setup = Setup::official();
    let offline = setup.options().with_offline(true);
    let error = fetch_model(REPO, &offline, &mut NoProgress).unwrap_err();
    assert!(matches!(error, Error::NotInCache { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(REPO), "{message}");
    assert!(message.contains("HF_HUB_OFFLINE"), "{message}");
    assert!(setup.hub.requests().is_empty());
}

#[test]
fn interrupted_download_resumes() {
    let setup = Setup::official();
    let data = std::fs::read(official_model_dir().join("onnx/model.onnx_data")).unwrap();
    let cut = 300_000;
    setup.hub.cut_next_transfer("onnx/model.onnx_data", cut);

    let error = setup.fetch().unwrap_err();
    assert!(
        matches!(&error, Error::HubTransfer { file, received, .. }
            if file == "onnx/model.onnx_data" && *received == cut as u64),
        "{error:?}"
    );
    let incomplete = setup
        .repo_dir()
        .join("blobs")
        .join(format!("{}.incomplete", sha256(&data)));
    assert_eq!(std::fs::metadata(&incomplete).unwrap().len(), cut as u64);

    setup.hub.clear_requests();
    let snapshot = setup.fetch().unwrap();
    let ranges: Vec<String> = setup
        .hub
        .requests()
        .iter()
        .filter(|request| {
            request
                .path
                .starts_with(&format!("/storage/{}", sha256(&data)))
        })
        .filter_map(|request| request.header("Range").map(str::to_owned))
        .collect();
    assert_eq!(ranges, vec![format!("bytes={cut}-")]);
    assert!(!incomplete.exists());
    assert_fetched_intact(&snapshot, "onnx/model.onnx_data");
}

#[test]
fn transfer_resumes_within_one_call() {
    let setup = Setup::official();
    setup.hub.cut_next_transfer("onnx/model.onnx_data", 100_000);
    let options = setup.options().with_retries(1);
    let snapshot = fetch_model(REPO, &options, &mut NoProgress).unwrap();
    assert_fetched_intact(&snapshot, "onnx/model.onnx_data");
}

/// A cached blob with one changed byte, same size, is hashed and fetched again.
#[test]
fn corrupted_cache_file_is_fetched_again() {
    let setup = Setup::official();
    setup.fetch().unwrap();
    let blob = setup.blob("tokenizer.json");
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 0x20;
    std::fs::write(&blob, &bytes).unwrap();
    setup.hub.clear_requests();

    let snapshot = setup.fetch().unwrap();
    assert_eq!(
        setup.downloads().len(),
        1,
        "only the corrupted file: {:?}",
        setup.downloads()
    );
    assert_fetched_intact(&snapshot, "tokenizer.json");
}

/// A truncated cached blob is found by its size.
#[test]
fn truncated_cache_file_is_fetched_again() {
    let setup = Setup::official();
    setup.fetch().unwrap();
    let blob = setup.blob("onnx/model.onnx_data");
    let bytes = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, &bytes[..bytes.len() / 2]).unwrap();
    setup.hub.clear_requests();

    let snapshot = setup.fetch().unwrap();
    assert_eq!(setup.downloads().len(), 1, "{:?}", setup.downloads());
    assert_eq!(
        std::fs::read(snapshot.join("onnx/model.onnx_data")).unwrap(),
        bytes
    );
}

/// Same-size corruption of a large blob is found only when rehashing is requested.
#[test]
fn rehash_finds_corrupted_large_file() {
    let setup = Setup::official();
    setup.fetch().unwrap();
    let blob = setup.blob("onnx/model.onnx_data");
    let original = std::fs::read(&blob).unwrap();
    let mut bytes = original.clone();
    bytes[1000] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();
    setup.hub.clear_requests();

    let options = setup.options().with_rehash_large_files(true);
    let snapshot = fetch_model(REPO, &options, &mut NoProgress).unwrap();
    assert_eq!(setup.downloads().len(), 1, "{:?}", setup.downloads());
    assert_fetched_intact(&snapshot, "onnx/model.onnx_data");
}

#[test]
fn corrupted_transfer_is_rejected() {
    let setup = Setup::official();
    setup.hub.corrupt_next_transfer("sparse_linear.pt");
    let error = setup.fetch().unwrap_err();
    assert!(
        matches!(&error, Error::DownloadMismatch { file, check: "SHA-256", .. }
            if file == "sparse_linear.pt"),
        "{error:?}"
    );
    assert!(error.to_string().contains("sparse_linear.pt"), "{error}");
    assert!(!setup.blob("sparse_linear.pt").exists());

    // The next run downloads it correctly.
    let snapshot = setup.fetch().unwrap();
    assert_fetched_intact(&snapshot, "sparse_linear.pt");
}

#[test]
fn missing_repository_is_named() {
    let setup = Setup::official();
    let error = fetch_model("nobody/nothing", &setup.options(), &mut NoProgress).unwrap_err();
    assert!(matches!(error, Error::HubRepoNotFound { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("nobody/nothing"), "{message}");
    assert!(message.contains(&setup.hub.url()), "{message}");
}

#[test]
fn missing_revision_is_named() {
    let setup = Setup::official();
    let options = setup.options().with_revision("v9");
    let error = fetch_model(REPO, &options, &mut NoProgress).unwrap_err();
    assert!(
        matches!(error, Error::HubRevisionNotFound { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("v9"), "{error}");
}

/// A required file absent from the repository is reported before any download.
#[test]
fn missing_head_file_is_named() {
    let hub = MockHub::start();
    let mut repo = Repo::from_dir(&official_model_dir(), COMMIT);
    repo.files.remove("sparse_linear.pt");
    hub.add_repo(REPO, repo);
    let setup = Setup {
        hub,
        cache: tempfile::tempdir().unwrap(),
    };

    let error = setup.fetch().unwrap_err();
    assert!(
        matches!(&error, Error::HubFileNotFound { file, .. } if file == "sparse_linear.pt"),
        "{error:?}"
    );
    assert!(error.to_string().contains("sparse_linear.pt"), "{error}");
    assert!(setup.downloads().is_empty(), "{:?}", setup.downloads());
}

/// A file that is listed but returns 404 `EntryNotFound` is named too.
#[test]
fn unresolvable_file_is_named() {
    let hub = MockHub::start();
    let mut repo = Repo::from_dir(&official_model_dir(), COMMIT);
    repo.unresolvable
        .push("onnx/Constant_95_attr__value".to_owned());
    hub.add_repo(REPO, repo);
    let setup = Setup {
        hub,
        cache: tempfile::tempdir().unwrap(),
    };

    let error = setup.fetch().unwrap_err();
    assert!(
        matches!(&error, Error::HubFileNotFound { file, .. }
            if file == "onnx/Constant_95_attr__value"),
        "{error:?}"
    );
}

#[test]
fn repository_without_graph_is_rejected() {
    let hub = MockHub::start();
    let mut repo = Repo::from_dir(&official_model_dir(), COMMIT);
    repo.files.retain(|name, _| !name.starts_with("onnx/"));
    hub.add_repo(REPO, repo);
    let setup = Setup {
        hub,
        cache: tempfile::tempdir().unwrap(),
    };

    let error = setup.fetch().unwrap_err();
    assert!(matches!(error, Error::HubUnknownLayout { .. }), "{error:?}");
    assert!(error.to_string().contains("onnx/model.onnx"), "{error}");
}

/// A root three-output graph needs neither the heads nor the PyTorch weights.
#[test]
fn three_output_repository_skips_heads() {
    let hub = MockHub::start();
    hub.add_repo(
        "tiny/three-outputs",
        Repo::from_dir(&tiny_model_dir(), COMMIT),
    );
    let cache = tempfile::tempdir().unwrap();
    let options = HubOptions::from_env()
        .with_endpoint(hub.url())
        .with_cache_dir(cache.path())
        .with_token(None)
        .with_offline(false);

    let snapshot = fetch_model("tiny/three-outputs", &options, &mut NoProgress).unwrap();
    for needed in [
        "model.onnx",
        "model.onnx_data",
        "tokenizer.json",
        "config.json",
        "special_tokens_map.json",
    ] {
        assert!(snapshot.join(needed).is_file(), "{needed} missing");
    }
    for unneeded in [
        "colbert_linear.pt",
        "sparse_linear.pt",
        "model.safetensors",
        "sentencepiece.bpe.model",
    ] {
        assert!(!snapshot.join(unneeded).exists(), "{unneeded} was fetched");
    }
    assert_eq!(embed(&snapshot), embed(&tiny_model_dir()));
}

/// The token reaches the Hub but never the storage host.
#[test]
fn token_stays_on_endpoint() {
    let hub = MockHub::start();
    let mut repo = Repo::from_dir(&official_model_dir(), COMMIT);
    repo.token = Some("hf_test_token".to_owned());
    hub.add_repo(REPO, repo);
    let setup = Setup {
        hub,
        cache: tempfile::tempdir().unwrap(),
    };

    let error = setup.fetch().unwrap_err();
    assert!(
        matches!(error, Error::HubRepoNotFound { .. }),
        "without a token: {error:?}"
    );

    let options = setup.options().with_token(Some("hf_test_token".to_owned()));
    fetch_model(REPO, &options, &mut NoProgress).unwrap();
    let requests = setup.hub.requests();
    let storage: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/storage/"))
        .collect();
    assert!(!storage.is_empty());
    for request in storage {
        assert_eq!(request.header("Authorization"), None, "{}", request.path);
    }
    let api = requests
        .iter()
        .rfind(|r| r.path.starts_with("/api/models/"))
        .unwrap();
    assert_eq!(api.header("Authorization"), Some("Bearer hf_test_token"));
}

/// The fixture layout on disk is what the mock serves; a sanity check of the helper.
#[test]
fn mock_serves_fixture_files() {
    let repo = Repo::from_dir(&official_model_dir(), COMMIT);
    for file in OFFICIAL_FILES {
        assert!(repo.files.contains_key(file), "{file}");
    }
    assert!(fixtures_dir()
        .join("tiny-bge-m3-official/onnx/model.onnx")
        .is_file());
}

/// Records the progress events of one download.
#[derive(Default)]
struct RecordedProgress {
    starts: Vec<(String, u64, u64)>,
    advanced: u64,
    finished: usize,
}

impl bge_m3::hub::DownloadProgress for RecordedProgress {
    fn start(&mut self, file: &str, total: u64, done: u64) {
        self.starts.push((file.to_owned(), total, done));
    }

    fn advance(&mut self, bytes: u64) {
        self.advanced += bytes;
    }

    fn finish(&mut self) {
        self.finished += 1;
    }
}

#[test]
fn progress_counts_resumed_bytes() {
    let setup = Setup::official();
    let size = std::fs::metadata(official_model_dir().join("onnx/model.onnx_data"))
        .unwrap()
        .len();
    setup.hub.cut_next_transfer("onnx/model.onnx_data", 200_000);
    assert!(setup.fetch().is_err());

    let mut progress = RecordedProgress::default();
    fetch_model(REPO, &setup.options(), &mut progress).unwrap();
    let data_starts: Vec<_> = progress
        .starts
        .iter()
        .filter(|(file, ..)| file == "onnx/model.onnx_data")
        .collect();
    assert_eq!(
        data_starts,
        vec![&("onnx/model.onnx_data".to_owned(), size, 200_000)]
    );
    assert_eq!(progress.finished, progress.starts.len());
    let remaining: u64 = progress
        .starts
        .iter()
        .map(|(_, total, done)| total - done)
        .sum();
    assert_eq!(
        progress.advanced, remaining,
        "every byte received is reported once"
    );
}
