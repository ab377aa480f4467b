//! Models from the Hugging Face Hub, downloaded into the Hub's standard cache.
//!
//! [`fetch_model`] resolves a revision to a commit, picks the files that the
//! repository's layout needs (see [`crate::ModelFiles`]) and downloads each one into
//! the cache layout of `huggingface_hub`, so that Python tools and this engine share
//! one cache:
//!
//! ```text
//! $HF_HUB_CACHE/models--BAAI--bge-m3/
//!     blobs/<etag>                       file contents, named by the Hub's ETag
//!     refs/main                          the commit that `main` resolved to
//!     snapshots/<commit>/onnx/model.onnx relative symlink to ../../../blobs/<etag>
//! ```
//!
//! For `BAAI/bge-m3` that is `onnx/model.onnx`, the external data files the graph
//! references (`onnx/model.onnx_data`, `onnx/Constant_7_attr__value`),
//! `colbert_linear.pt`, `sparse_linear.pt`, `tokenizer.json`, and `config.json` and
//! `special_tokens_map.json`; nothing else of the repository is fetched.
//!
//! Downloads go to `blobs/<etag>.incomplete` and resume from its length with an HTTP
//! range request. A finished file is checked against the size and hash the Hub reports
//! (`X-Linked-Size` and `X-Linked-Etag`, the SHA-256 of an LFS file, or `ETag`, the git
//! blob SHA-1 of a regular file) before it moves into `blobs/`. A file already in the
//! cache is checked against the size on every online run, and against the hash when it
//! is smaller than [`REHASH_LIMIT`] or [`HubOptions::rehash_large_files`] is set; a
//! file that fails is downloaded again.
//!
//! Settings come from the environment as `huggingface_hub` reads them: `HF_ENDPOINT`,
//! `HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN` (else the file `HF_TOKEN_PATH` or
//! `$HF_HOME/token`) and `HF_HUB_OFFLINE`. When offline, or when the Hub cannot be
//! reached, the revision is looked up in the cache alone.

mod cache;
mod client;
mod download;
mod options;
mod plan;
mod verify;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub use options::{HubOptions, DEFAULT_ENDPOINT, DEFAULT_REVISION};

/// The repository the CLI uses when no model is given.
pub const DEFAULT_REPO: &str = "BAAI/bge-m3";

/// Cached files smaller than this (64 MiB) are hashed again on every online run.
/// Hashing the 2.27 GB `model.onnx_data` of BGE-M3 takes seconds, so larger files are
/// checked by size unless [`HubOptions::rehash_large_files`] is set.
pub const REHASH_LIMIT: u64 = 64 << 20;

/// Receives the progress of file downloads, for example to draw a progress bar.
pub trait DownloadProgress {
    /// Starts a file of `total` bytes, of which `done` were already on disk.
    fn start(&mut self, file: &str, total: u64, done: u64);
    /// Adds `bytes` received.
    fn advance(&mut self, bytes: u64);
    /// Ends the current file.
    fn finish(&mut self);
}

/// A [`DownloadProgress`] that ignores all events.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl DownloadProgress for NoProgress {
    fn start(&mut self, _file: &str, _total: u64, _done: u64) {}
    fn advance(&mut self, _bytes: u64) {}
    fn finish(&mut self) {}
}

/// Where a model comes from: a local folder or a Hub repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A model folder on disk.
    Folder(PathBuf),
    /// A Hub repository id, such as `BAAI/bge-m3`.
    Hub(String),
}

impl ModelSource {
    /// Reads a `--model` value: an existing folder, else a Hub repository id.
    pub fn parse(value: &str) -> Result<Self> {
        let path = Path::new(value);
        if path.is_dir() {
            return Ok(Self::Folder(path.to_path_buf()));
        }
        if is_repo_id(value) {
            return Ok(Self::Hub(value.to_owned()));
        }
        Err(Error::InvalidModelSource {
            value: value.to_owned(),
        })
    }

    /// Returns the model folder: the folder itself, or the cache snapshot after
    /// [`fetch_model`].
    pub fn resolve(
        &self,
        options: &HubOptions,
        progress: &mut dyn DownloadProgress,
    ) -> Result<PathBuf> {
        match self {
            Self::Folder(path) => Ok(path.clone()),
            Self::Hub(repo) => fetch_model(repo, options, progress),
        }
    }
}

/// Downloads what the model in `repo` needs into the cache, if it is not there yet,
/// and returns the snapshot folder, ready for [`crate::Embedder::try_new`].
pub fn fetch_model(
    repo: &str,
    options: &HubOptions,
    progress: &mut dyn DownloadProgress,
) -> Result<PathBuf> {
    if !is_repo_id(repo) {
        return Err(Error::InvalidModelSource {
            value: repo.to_owned(),
        });
    }
    let cache = cache::RepoCache::new(&options.cache_dir, repo);
    if options.offline {
        return cache.snapshot_for(
            &options.revision,
            "HF_HUB_OFFLINE is set, so the Hub was not asked",
        );
    }
    let client = client::HubClient::new(options)?;
    let info = match client.repo_info(repo, &options.revision) {
        Ok(info) => info,
        Err(error) if client::is_connection_failure(&error) => {
            tracing::warn!(repo, error = %error, "the Hub cannot be reached; using the cache");
            let reason = format!("the Hub at {} cannot be reached", options.endpoint);
            return cache.snapshot_for(&options.revision, &reason);
        }
        Err(error) => return Err(error),
    };
    if info.commit != options.revision {
        cache.write_ref(&options.revision, &info.commit)?;
    }
    let mut fetcher =
        download::Fetcher::new(&client, &cache, repo, &info.commit, options, progress);
    plan::fetch_layout(&mut fetcher, &info)?;
    Ok(cache.snapshot_dir(&info.commit))
}

/// Returns whether `value` has the form of a Hub repository id: `name` or
/// `owner/name`, each part made of letters, digits, `-`, `_` and `.`, without `--` or
/// `..`, and at most 96 characters long, as `huggingface_hub` validates ids.
pub fn is_repo_id(value: &str) -> bool {
    let part_ok = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !part.starts_with(['-', '.'])
            && !part.ends_with(['-', '.'])
    };
    let parts: Vec<&str> = value.split('/').collect();
    value.len() <= 96
        && !value.contains("--")
        && !value.contains("..")
        && (1..=2).contains(&parts.len())
        && parts.iter().all(|part| part_ok(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_recognised() {
        for valid in ["BAAI/bge-m3", "gpt2", "org_1/model.v2"] {
            assert!(is_repo_id(valid), "{valid}");
        }
        for invalid in [
            "", "a/b/c", "/abs", "./here", "a--b/c", "a/..", "a/b.", "sp ace/x", "a/",
        ] {
            assert!(!is_repo_id(invalid), "{invalid}");
        }
    }

    #[test]
    fn existing_folder_is_a_folder_source() {
        let dir = tempfile::tempdir().unwrap();
        let value = dir.path().to_str().unwrap();
        assert_eq!(
            ModelSource::parse(value).unwrap(),
            ModelSource::Folder(dir.path().to_path_buf())
        );
    }

    #[test]
    fn repo_id_is_a_hub_source() {
        assert_eq!(
            ModelSource::parse("BAAI/bge-m3").unwrap(),
            ModelSource::Hub("BAAI/bge-m3".into())
        );
    }

    #[test]
    fn missing_nested_path_is_invalid() {
        let error = ModelSource::parse("no/such/folder").unwrap_err();
        assert!(
            matches!(error, Error::InvalidModelSource { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("no/such/folder"), "{error}");
    }
}
