//! Checking a file against the size and ETag the Hub reports for it.
//!
//! The ETag of an LFS file (`X-Linked-Etag`) is the SHA-256 of its contents, 64 hex
//! digits. The ETag of a regular file is git's blob id, 40 hex digits: the SHA-1 of
//! `blob <size>\0` followed by the contents. Other ETags cannot be checked, so such a
//! file is checked by size only.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A check that failed: which one, with the expected and the found value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    pub check: &'static str,
    pub expected: String,
    pub found: String,
}

/// The kind of hash an ETag is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checksum {
    Sha256,
    GitSha1,
    /// The ETag has another form; only the size is checked.
    None,
}

impl Checksum {
    pub fn of_etag(etag: &str) -> Self {
        let is_hex = etag.bytes().all(|byte| byte.is_ascii_hexdigit());
        match etag.len() {
            64 if is_hex => Self::Sha256,
            40 if is_hex => Self::GitSha1,
            _ => Self::None,
        }
    }
}

/// Checks the file's size, then, when `hash` is true and the ETag allows it, its hash.
pub(crate) fn verify_file(
    path: &Path,
    size: u64,
    etag: &str,
    hash: bool,
) -> std::io::Result<Option<Mismatch>> {
    let found = std::fs::metadata(path)?.len();
    if found != size {
        return Ok(Some(Mismatch {
            check: "size",
            expected: size.to_string(),
            found: found.to_string(),
        }));
    }
    let checksum = Checksum::of_etag(etag);
    if !hash || checksum == Checksum::None {
        if checksum == Checksum::None {
            tracing::warn!(
                file = %path.display(),
                etag,
                "ETag is no known hash; checked the size only"
            );
        }
        return Ok(None);
    }
    let (check, digest) = match checksum {
        Checksum::Sha256 => ("SHA-256", hash_file::<Sha256>(path, None)?),
        Checksum::GitSha1 => ("git SHA-1", hash_file::<Sha1>(path, Some(size))?),
        Checksum::None => unreachable!("returned above"),
    };
    let expected = etag.to_ascii_lowercase();
    Ok((digest != expected).then_some(Mismatch {
        check,
        expected,
        found: digest,
    }))
}

/// Returns the lowercase hex digest of a file; with `git_size`, of the git blob
/// `blob <size>\0<contents>`.
fn hash_file<D: Digest>(path: &Path, git_size: Option<u64>) -> std::io::Result<String> {
    let mut digest = D::new();
    if let Some(size) = git_size {
        digest.update(format!("blob {size}\0").as_bytes());
    }
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        digest.update(&buffer[..read]);
    }
    Ok(digest
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf 'hello\n' | sha256sum` and `printf 'hello\n' | git hash-object --stdin`.
    const HELLO_SHA256: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    const HELLO_GIT_SHA1: &str = "ce013625030ba8dba906f756967f9e9ca394464a";

    fn hello() -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"hello\n").unwrap();
        file
    }

    #[test]
    fn sha256_etag_matches() {
        let file = hello();
        assert_eq!(
            verify_file(file.path(), 6, HELLO_SHA256, true).unwrap(),
            None
        );
    }

    #[test]
    fn git_sha1_etag_matches() {
        let file = hello();
        assert_eq!(
            verify_file(file.path(), 6, HELLO_GIT_SHA1, true).unwrap(),
            None
        );
    }

    #[test]
    fn changed_byte_is_found() {
        let file = hello();
        std::fs::write(file.path(), b"jello\n").unwrap();
        let mismatch = verify_file(file.path(), 6, HELLO_SHA256, true)
            .unwrap()
            .unwrap();
        assert_eq!(mismatch.check, "SHA-256");
        assert_eq!(mismatch.expected, HELLO_SHA256);
    }

    #[test]
    fn wrong_size_is_found_first() {
        let file = hello();
        let mismatch = verify_file(file.path(), 7, HELLO_SHA256, false)
            .unwrap()
            .unwrap();
        assert_eq!(mismatch.check, "size");
        assert_eq!(
            (mismatch.expected.as_str(), mismatch.found.as_str()),
            ("7", "6")
        );
    }

    #[test]
    fn unknown_etag_checks_size_only() {
        let file = hello();
        assert_eq!(Checksum::of_etag("not-a-hash"), Checksum::None);
        assert_eq!(
            verify_file(file.path(), 6, "not-a-hash", true).unwrap(),
            None
        );
    }
}
