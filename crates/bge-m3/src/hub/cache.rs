//! The cache folder of one repository, in the layout of `huggingface_hub`
//! (`file_download.py`, `hf_hub_download`).
//!
//! `blobs/<etag>` contains each file's bytes, `snapshots/<commit>/<path>` is a relative
//! symlink to its blob, `refs/<revision>` contains the commit a branch or tag resolved
//! to, and `$HF_HUB_CACHE/.locks/models--<owner>--<name>/<etag>.lock` serialises
//! processes that download the same blob. `huggingface_hub` uses the same lock files
//! through `filelock`, which takes `flock` locks as `File::lock` does on Linux.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model_files::ModelFiles;

/// The cache folders of one model repository.
#[derive(Debug, Clone)]
pub(crate) struct RepoCache {
    repo: String,
    cache_dir: PathBuf,
    /// `<cache>/models--<owner>--<name>`.
    root: PathBuf,
    /// `<cache>/.locks/models--<owner>--<name>`.
    locks: PathBuf,
}

impl RepoCache {
    pub fn new(cache_dir: &Path, repo: &str) -> Self {
        let folder = format!("models--{}", repo.replace('/', "--"));
        Self {
            repo: repo.to_owned(),
            cache_dir: cache_dir.to_path_buf(),
            root: cache_dir.join(&folder),
            locks: cache_dir.join(".locks").join(folder),
        }
    }

    pub fn blob_path(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    /// Returns where a download of the blob collects its bytes, as `huggingface_hub`
    /// names it, so that either tool can resume the other's download.
    pub fn incomplete_path(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(format!("{etag}.incomplete"))
    }

    pub fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    pub fn pointer_path(&self, commit: &str, file: &str) -> PathBuf {
        self.snapshot_dir(commit).join(file)
    }

    /// Records that `revision` resolved to `commit`.
    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        let path = self.root.join("refs").join(revision);
        create_parent(&path)?;
        std::fs::write(&path, commit).map_err(|source| Error::WriteFile { path, source })
    }

    /// Returns the commit of a revision from the cache alone: the revision itself when
    /// it is a commit hash, else the contents of `refs/<revision>`.
    pub fn cached_commit(&self, revision: &str) -> Option<String> {
        if is_commit_hash(revision) {
            return Some(revision.to_owned());
        }
        let text = std::fs::read_to_string(self.root.join("refs").join(revision)).ok()?;
        let commit = text.trim();
        is_commit_hash(commit).then(|| commit.to_owned())
    }

    /// Returns the cached snapshot of `revision` when it has a complete model, for use
    /// without the Hub. `reason`, which goes into the error, explains why the Hub was
    /// not used.
    pub fn snapshot_for(&self, revision: &str, reason: &str) -> Result<PathBuf> {
        let not_in_cache = |detail: String| Error::NotInCache {
            repo: self.repo.clone(),
            revision: revision.to_owned(),
            cache_dir: self.cache_dir.clone(),
            reason: detail,
        };
        let commit = self
            .cached_commit(revision)
            .ok_or_else(|| not_in_cache(reason.to_owned()))?;
        let snapshot = self.snapshot_dir(&commit);
        if !snapshot.is_dir() {
            return Err(not_in_cache(reason.to_owned()));
        }
        ModelFiles::from_dir(&snapshot)
            .map_err(|error| not_in_cache(format!("{reason}, and {error}")))?;
        tracing::info!(repo = %self.repo, commit, "using the cached snapshot");
        Ok(snapshot)
    }

    /// Takes the lock of a blob, waiting while another process holds it.
    pub fn lock(&self, etag: &str) -> Result<File> {
        let path = self.locks.join(format!("{etag}.lock"));
        create_parent(&path)?;
        let file = File::create(&path).map_err(|source| Error::WriteFile {
            path: path.clone(),
            source,
        })?;
        file.lock()
            .map_err(|source| Error::WriteFile { path, source })?;
        Ok(file)
    }

    /// Points `snapshots/<commit>/<file>` at the blob, replacing what was there.
    pub fn link(&self, commit: &str, file: &str, etag: &str) -> Result<PathBuf> {
        let pointer = self.pointer_path(commit, file);
        create_parent(&pointer)?;
        if pointer.symlink_metadata().is_ok() {
            std::fs::remove_file(&pointer).map_err(|source| Error::WriteFile {
                path: pointer.clone(),
                source,
            })?;
        }
        make_link(
            &self.blob_path(etag),
            &pointer,
            &relative_target(file, etag),
        )?;
        Ok(pointer)
    }
}

/// Returns the symlink target from `snapshots/<commit>/<file>` to `blobs/<etag>`:
/// one `..` for each folder of `file`, and two for `snapshots/<commit>`.
fn relative_target(file: &str, etag: &str) -> PathBuf {
    let depth = file.split('/').count() + 1;
    let mut target = PathBuf::new();
    for _ in 0..depth {
        target.push("..");
    }
    target.join("blobs").join(etag)
}

#[cfg(unix)]
fn make_link(_blob: &Path, pointer: &Path, target: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, pointer).map_err(|source| Error::WriteFile {
        path: pointer.to_path_buf(),
        source,
    })
}

/// Without symlinks the snapshot gets a copy, as `huggingface_hub` does on Windows
/// without developer mode.
#[cfg(not(unix))]
fn make_link(blob: &Path, pointer: &Path, _target: &Path) -> Result<()> {
    std::fs::copy(blob, pointer)
        .map(|_| ())
        .map_err(|source| Error::WriteFile {
            path: pointer.to_path_buf(),
            source,
        })
}

/// Creates the folders above `path`.
pub(crate) fn create_parent(path: &Path) -> Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    std::fs::create_dir_all(parent).map_err(|source| Error::WriteFile {
        path: parent.to_path_buf(),
        source,
    })
}

/// Returns whether `value` is a full commit hash, 40 lowercase hex digits.
pub(crate) fn is_commit_hash(value: &str) -> bool {
    value.len() == 40
        && value
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_follow_huggingface_hub() {
        let cache = RepoCache::new(Path::new("/cache"), "BAAI/bge-m3");
        assert_eq!(
            cache.blob_path("abc"),
            Path::new("/cache/models--BAAI--bge-m3/blobs/abc")
        );
        assert_eq!(
            cache.pointer_path("0123", "onnx/model.onnx"),
            Path::new("/cache/models--BAAI--bge-m3/snapshots/0123/onnx/model.onnx")
        );
        assert_eq!(
            cache.incomplete_path("abc"),
            Path::new("/cache/models--BAAI--bge-m3/blobs/abc.incomplete")
        );
    }

    #[test]
    fn link_targets_are_relative() {
        assert_eq!(
            relative_target("tokenizer.json", "e1"),
            Path::new("../../blobs/e1")
        );
        assert_eq!(
            relative_target("onnx/model.onnx", "e2"),
            Path::new("../../../blobs/e2")
        );
    }

    #[test]
    fn refs_resolve_to_commits() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RepoCache::new(dir.path(), "owner/name");
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(cache.cached_commit("main"), None);
        cache.write_ref("main", commit).unwrap();
        assert_eq!(cache.cached_commit("main").as_deref(), Some(commit));
        assert_eq!(cache.cached_commit(commit).as_deref(), Some(commit));
    }

    #[test]
    fn missing_snapshot_is_not_in_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RepoCache::new(dir.path(), "owner/name");
        let error = cache
            .snapshot_for("main", "HF_HUB_OFFLINE is set")
            .unwrap_err();
        assert!(matches!(error, Error::NotInCache { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("owner/name"), "{message}");
        assert!(message.contains("HF_HUB_OFFLINE"), "{message}");
    }
}
