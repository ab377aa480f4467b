//! Downloading one file of a commit into the cache: resumed, verified, linked.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

use super::cache::{create_parent, RepoCache};
use super::client::{is_connection_failure, FileMetadata, HubClient, Target};
use super::options::HubOptions;
use super::verify::verify_file;
use super::{DownloadProgress, REHASH_LIMIT};

const CHUNK_BYTES: usize = 1 << 20;

/// Fetches files of one commit of one repository.
pub(crate) struct Fetcher<'a> {
    client: &'a HubClient,
    cache: &'a RepoCache,
    repo: &'a str,
    commit: &'a str,
    options: &'a HubOptions,
    progress: &'a mut dyn DownloadProgress,
}

impl<'a> Fetcher<'a> {
    pub fn new(
        client: &'a HubClient,
        cache: &'a RepoCache,
        repo: &'a str,
        commit: &'a str,
        options: &'a HubOptions,
        progress: &'a mut dyn DownloadProgress,
    ) -> Self {
        Self {
            client,
            cache,
            repo,
            commit,
            options,
            progress,
        }
    }

    /// Makes `snapshots/<commit>/<file>` point at a blob that matches the Hub's size
    /// and ETag, downloading the file when the cache has no such blob. Returns the
    /// snapshot path of the file.
    pub fn fetch(&mut self, file: &str) -> Result<PathBuf> {
        let url = self.client.resolve_url(self.repo, self.commit, file);
        let target = self.target(file);
        let metadata = self.client.file_metadata(&url, target)?;
        let blob = self.cache.blob_path(&metadata.etag);
        let _lock = self.cache.lock(&metadata.etag)?;
        if !(blob.is_file() && self.cached_blob_is_valid(file, &blob, &metadata)?) {
            self.download(file, &url, &metadata)?;
        }
        self.cache.link(self.commit, file, &metadata.etag)
    }

    fn target<'f>(&self, file: &'f str) -> Target<'f>
    where
        'a: 'f,
    {
        Target {
            repo: self.repo,
            revision: self.commit,
            file: Some(file),
        }
    }

    /// Checks a cached blob; one that fails is deleted so that it is downloaded anew.
    fn cached_blob_is_valid(
        &self,
        file: &str,
        blob: &Path,
        metadata: &FileMetadata,
    ) -> Result<bool> {
        let hash = metadata.size < REHASH_LIMIT || self.options.rehash_large_files;
        let mismatch =
            verify_file(blob, metadata.size, &metadata.etag, hash).map_err(|source| {
                Error::ReadFile {
                    path: blob.to_path_buf(),
                    source,
                }
            })?;
        let Some(mismatch) = mismatch else {
            tracing::debug!(file, "cached file is valid");
            return Ok(true);
        };
        tracing::warn!(
            file,
            check = mismatch.check,
            expected = %mismatch.expected,
            found = %mismatch.found,
            "cached file does not match the Hub; downloading it again"
        );
        remove(blob)?;
        Ok(false)
    }

    /// Downloads into `<etag>.incomplete`, resuming a previous attempt, then verifies
    /// the bytes and moves them to the blob.
    fn download(&mut self, file: &str, url: &str, metadata: &FileMetadata) -> Result<()> {
        let incomplete = self.cache.incomplete_path(&metadata.etag);
        let mut attempt = 0;
        loop {
            match self.transfer(file, url, metadata, &incomplete) {
                Ok(()) => break,
                Err(error) if attempt < self.options.retries && is_retryable(&error) => {
                    let wait = Duration::from_secs(1 << attempt.min(6));
                    attempt += 1;
                    tracing::warn!(
                        file,
                        attempt,
                        error = %error,
                        wait_s = wait.as_secs(),
                        "resuming the download"
                    );
                    std::thread::sleep(wait);
                }
                Err(error) => return Err(error),
            }
        }

        let mismatch =
            verify_file(&incomplete, metadata.size, &metadata.etag, true).map_err(|source| {
                Error::ReadFile {
                    path: incomplete.clone(),
                    source,
                }
            })?;
        if let Some(mismatch) = mismatch {
            remove(&incomplete)?;
            return Err(Error::DownloadMismatch {
                file: file.to_owned(),
                check: mismatch.check,
                expected: mismatch.expected,
                found: mismatch.found,
            });
        }
        let blob = self.cache.blob_path(&metadata.etag);
        std::fs::rename(&incomplete, &blob)
            .map_err(|source| Error::WriteFile { path: blob, source })?;
        tracing::info!(file, bytes = metadata.size, "downloaded");
        Ok(())
    }

    /// Runs one request, appending to `incomplete` from its current length.
    fn transfer(
        &mut self,
        file: &str,
        url: &str,
        metadata: &FileMetadata,
        incomplete: &Path,
    ) -> Result<()> {
        let mut start = resume_offset(file, incomplete, metadata.size);
        if start == metadata.size && start > 0 {
            return Ok(());
        }

        let response = self.client.download(url, start, self.target(file))?;
        if start > 0 && response.status().as_u16() != 206 {
            tracing::warn!(file, "the server ignored the range request; starting over");
            start = 0;
        }
        let mut output = open_output(incomplete, start)?;

        let mut body = response.into_body().into_reader();
        self.progress.start(file, metadata.size, start);
        let copied = self.copy_body(&mut body, &mut output, incomplete);
        self.progress.finish();
        let copied = copied.map_err(|(source, copied)| Error::HubTransfer {
            file: file.to_owned(),
            received: start + copied,
            source,
        })?;
        check_complete(file, start + copied, metadata.size)
    }

    /// Copies the body to the file and returns the bytes copied, or the error with the
    /// bytes copied before it.
    fn copy_body(
        &mut self,
        body: &mut impl Read,
        output: &mut File,
        path: &Path,
    ) -> std::result::Result<u64, (std::io::Error, u64)> {
        let mut buffer = vec![0u8; CHUNK_BYTES];
        let mut received = 0u64;
        loop {
            let count = match body.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err((error, received)),
            };
            if let Err(error) = output.write_all(&buffer[..count]) {
                let message = format!("failed to write {}: {error}", path.display());
                return Err((std::io::Error::new(error.kind(), message), received));
            }
            received += count as u64;
            self.progress.advance(count as u64);
        }
        output.flush().map_err(|error| (error, received))?;
        Ok(received)
    }
}

/// Returns the length of a partial download to resume from, or 0 to start over.
fn resume_offset(file: &str, incomplete: &Path, size: u64) -> u64 {
    let start = std::fs::metadata(incomplete).map_or(0, |existing| existing.len());
    if start > size {
        tracing::warn!(
            file,
            bytes = start,
            "partial download is longer than the file; starting over"
        );
        return 0;
    }
    start
}

/// Returns an error when a response ended before the file's last byte.
fn check_complete(file: &str, received: u64, size: u64) -> Result<()> {
    if received >= size {
        return Ok(());
    }
    Err(Error::HubTransfer {
        file: file.to_owned(),
        received,
        source: std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the response ended early",
        ),
    })
}

/// Opens the partial download: appending from `start`, or empty when `start` is 0.
fn open_output(path: &Path, start: u64) -> Result<File> {
    let write_error = |source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    };
    create_parent(path)?;
    let file = if start == 0 {
        File::create(path).map_err(write_error)?
    } else {
        OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(write_error)?
    };
    Ok(file)
}

fn remove(path: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(|source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Returns whether another attempt may succeed: a transfer that stopped, a failed
/// connection, or a server error.
fn is_retryable(error: &Error) -> bool {
    match error {
        Error::HubTransfer { .. } => true,
        Error::HubStatus { status, .. } => *status == 429 || *status >= 500,
        _ => is_connection_failure(error),
    }
}
