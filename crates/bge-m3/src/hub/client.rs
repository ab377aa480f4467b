//! HTTP requests to the Hub, with its URL scheme, headers and redirects as
//! `huggingface_hub` 0.36 uses them (`file_download.py`, `utils/_http.py`).
//!
//! - `GET {endpoint}/api/models/{repo}/revision/{revision}` returns the commit (`sha`)
//!   and the file list (`siblings[].rfilename`).
//! - `HEAD {endpoint}/{repo}/resolve/{commit}/{path}` returns a file's metadata:
//!   `X-Linked-Etag` and `X-Linked-Size` for LFS files, else `ETag` and
//!   `Content-Length`. Redirects within the endpoint (a renamed repository, the
//!   `/api/resolve-cache/...` route of regular files) are followed. The redirect of an
//!   LFS file to its storage host is not followed, because its headers are the
//!   metadata.
//! - `GET` of the same URL follows every redirect and may carry `Range: bytes=N-`.
//! - Errors carry `X-Error-Code`: `RepoNotFound`, `RevisionNotFound`,
//!   `EntryNotFound` or `GatedRepo`.
//!
//! The token goes only to the endpoint's own origin, never to a storage host.

use std::time::Duration;

use ureq::http::Response;
use ureq::Body;

use crate::error::{Error, Result};

use super::options::HubOptions;

const MAX_REDIRECTS: usize = 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Max wait for response headers, and for each read of a body.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The commit and file list of one revision.
#[derive(Debug, Clone)]
pub(crate) struct RepoInfo {
    pub repo: String,
    pub commit: String,
    /// Paths of every file in the repository at that commit.
    pub files: Vec<String>,
}

/// The metadata the Hub reports for one file.
#[derive(Debug, Clone)]
pub(crate) struct FileMetadata {
    /// The ETag without quotes or `W/`: the SHA-256 of an LFS file, else the git
    /// blob SHA-1.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
}

/// The repository, revision and file a request is about, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub repo: &'a str,
    pub revision: &'a str,
    pub file: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Head,
    Get,
}

/// The redirects a request follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follow {
    SameOrigin,
    All,
}

/// A client of one Hub endpoint.
pub(crate) struct HubClient {
    agent: ureq::Agent,
    endpoint: String,
    token: Option<String>,
}

impl HubClient {
    pub fn new(options: &HubOptions) -> Result<Self> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(READ_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            .user_agent(format!("bge-m3/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Self {
            agent,
            endpoint: options.endpoint.clone(),
            token: options.token.clone(),
        })
    }

    /// Resolves `revision` to a commit and lists the repository's files.
    pub fn repo_info(&self, repo: &str, revision: &str) -> Result<RepoInfo> {
        let url = format!(
            "{}/api/models/{repo}/revision/{}",
            self.endpoint,
            encode(revision, false)
        );
        let target = Target {
            repo,
            revision,
            file: None,
        };
        let (url, mut response) = self.send(Method::Get, &url, 0, Follow::SameOrigin)?;
        self.check_status(&response, &url, target)?;
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|source| request_error(&url, source))?;
        parse_repo_info(repo, &text).ok_or_else(|| Error::HubResponse {
            url,
            problem: "the JSON has no string `sha` or no `siblings[].rfilename` list".to_owned(),
        })
    }

    /// Returns the URL of a file at a commit.
    pub fn resolve_url(&self, repo: &str, commit: &str, file: &str) -> String {
        format!(
            "{}/{repo}/resolve/{commit}/{}",
            self.endpoint,
            encode(file, true)
        )
    }

    /// Returns the ETag and size of a file, from a `HEAD` request.
    pub fn file_metadata(&self, url: &str, target: Target<'_>) -> Result<FileMetadata> {
        let (url, response) = self.send(Method::Head, url, 0, Follow::SameOrigin)?;
        if !response.status().is_redirection() {
            self.check_status(&response, &url, target)?;
        }
        let missing = |header: &str| Error::HubResponse {
            url: url.clone(),
            problem: format!("no {header} header"),
        };
        let etag = header(&response, "x-linked-etag")
            .or_else(|| header(&response, "etag"))
            .map(normalize_etag)
            .filter(|etag| !etag.is_empty())
            .ok_or_else(|| missing("X-Linked-Etag or ETag"))?;
        let size = header(&response, "x-linked-size")
            .or_else(|| header(&response, "content-length"))
            .and_then(|value| value.parse::<u64>().ok())
            .ok_or_else(|| missing("X-Linked-Size or Content-Length"))?;
        Ok(FileMetadata { etag, size })
    }

    /// Starts a `GET` of a file, from byte `start` on when it is not 0, following
    /// every redirect. Returns the final response, which is 200 or 206.
    pub fn download(&self, url: &str, start: u64, target: Target<'_>) -> Result<Response<Body>> {
        let (url, response) = self.send(Method::Get, url, start, Follow::All)?;
        self.check_status(&response, &url, target)?;
        Ok(response)
    }

    /// Sends a request and follows redirects by hand, so that the token goes only to
    /// the endpoint's origin and the `Range` header to every hop. Returns the final
    /// URL with its response.
    fn send(
        &self,
        method: Method,
        url: &str,
        start: u64,
        follow: Follow,
    ) -> Result<(String, Response<Body>)> {
        let mut current = url.to_owned();
        for _ in 0..=MAX_REDIRECTS {
            let response = self.call(method, &current, start)?;
            let location = header(&response, "location");
            let Some(location) = location.filter(|_| response.status().is_redirection()) else {
                return Ok((current, response));
            };
            let next = join_url(&current, &location);
            if follow == Follow::SameOrigin && origin(&next) != origin(&current) {
                return Ok((current, response));
            }
            tracing::debug!(from = %current, to = %next, "following a redirect");
            current = next;
        }
        Err(Error::HubResponse {
            url: url.to_owned(),
            problem: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn call(&self, method: Method, url: &str, start: u64) -> Result<Response<Body>> {
        let token = self
            .token
            .as_deref()
            .filter(|_| origin(url) == origin(&self.endpoint));
        let authorization = token.map(|token| format!("Bearer {token}"));
        let result = match method {
            Method::Head => {
                let mut request = self.agent.head(url).header("Accept-Encoding", "identity");
                if let Some(value) = &authorization {
                    request = request.header("Authorization", value);
                }
                request.call()
            }
            Method::Get => {
                let mut request = self.agent.get(url).header("Accept-Encoding", "identity");
                if let Some(value) = &authorization {
                    request = request.header("Authorization", value);
                }
                if start > 0 {
                    request = request.header("Range", format!("bytes={start}-"));
                }
                request.call()
            }
        };
        result.map_err(|source| request_error(url, source))
    }

    /// Maps an error status to the error it stands for, from `X-Error-Code` as
    /// `huggingface_hub`'s `hf_raise_for_status` does.
    fn check_status(&self, response: &Response<Body>, url: &str, target: Target<'_>) -> Result<()> {
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let code = header(response, "x-error-code");
        let repo_not_found = || Error::HubRepoNotFound {
            repo: target.repo.to_owned(),
            endpoint: self.endpoint.clone(),
        };
        let file_not_found = || Error::HubFileNotFound {
            repo: target.repo.to_owned(),
            revision: target.revision.to_owned(),
            file: target.file.unwrap_or_default().to_owned(),
        };
        let denied = || Error::HubAccessDenied {
            url: url.to_owned(),
            status,
            message: header(response, "x-error-message"),
        };
        let error = match (code.as_deref(), status) {
            (Some("RepoNotFound"), _) => repo_not_found(),
            (Some("RevisionNotFound"), _) => Error::HubRevisionNotFound {
                repo: target.repo.to_owned(),
                revision: target.revision.to_owned(),
            },
            (Some("EntryNotFound"), _) => file_not_found(),
            (Some("GatedRepo"), _) => denied(),
            // The Hub returns 401 for a repository that does not exist or that the
            // caller may not see, and `huggingface_hub` reports both as not found.
            (_, 401 | 404) if target.file.is_none() => repo_not_found(),
            (_, 404) => file_not_found(),
            (_, 401 | 403) => denied(),
            _ => Error::HubStatus {
                url: url.to_owned(),
                status,
            },
        };
        Err(error)
    }
}

/// Returns whether the error means that the Hub could not be reached at all, as
/// opposed to an error response from it.
pub(crate) fn is_connection_failure(error: &Error) -> bool {
    match error {
        Error::HubRequest { source, .. } => matches!(
            **source,
            ureq::Error::Io(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::HostNotFound
                | ureq::Error::Timeout(_)
        ),
        _ => false,
    }
}

fn request_error(url: &str, source: ureq::Error) -> Error {
    Error::HubRequest {
        url: url.to_owned(),
        source: Box::new(source),
    }
}

fn parse_repo_info(repo: &str, text: &str) -> Option<RepoInfo> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    let commit = json.get("sha")?.as_str()?.to_owned();
    let files = json
        .get("siblings")?
        .as_array()?
        .iter()
        .map(|sibling| sibling.get("rfilename")?.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()?;
    Some(RepoInfo {
        repo: repo.to_owned(),
        commit,
        files,
    })
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    let value = response.headers().get(name)?;
    value.to_str().ok().map(str::to_owned)
}

/// Strips `W/` and quotes, as `huggingface_hub`'s `_normalize_etag` does.
fn normalize_etag(etag: String) -> String {
    etag.trim_start_matches("W/").trim_matches('"').to_owned()
}

/// Returns `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |index| index + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |index| after_scheme + index);
    &url[..end]
}

/// Resolves a `Location` header against the URL that returned it.
fn join_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{}{location}", origin(base))
    } else {
        let path_end = base.find('?').unwrap_or(base.len());
        let folder_end = base[..path_end]
            .rfind('/')
            .map_or(path_end, |index| index + 1);
        format!("{}{location}", &base[..folder_end])
    }
}

/// Percent-encodes a path (keeping `/` when `keep_slash`) or a revision, leaving the
/// unreserved characters of RFC 3986 as they are.
fn encode(value: &str, keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_normalised() {
        assert_eq!(normalize_etag("\"abc\"".into()), "abc");
        assert_eq!(normalize_etag("W/\"abc\"".into()), "abc");
    }

    #[test]
    fn redirects_resolve_against_base() {
        let base = "http://127.0.0.1:8/org/repo/resolve/main/onnx/model.onnx";
        assert_eq!(
            join_url(base, "https://cdn.example/x?sig=1"),
            "https://cdn.example/x?sig=1"
        );
        assert_eq!(
            join_url(base, "/api/resolve-cache/x"),
            "http://127.0.0.1:8/api/resolve-cache/x"
        );
        assert_eq!(
            join_url(base, "other.onnx"),
            "http://127.0.0.1:8/org/repo/resolve/main/onnx/other.onnx"
        );
    }

    #[test]
    fn origins_include_port() {
        assert_eq!(origin("http://127.0.0.1:8/a/b"), "http://127.0.0.1:8");
        assert_eq!(origin("https://huggingface.co"), "https://huggingface.co");
    }

    #[test]
    fn revisions_are_encoded() {
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(encode("onnx/model.onnx", true), "onnx/model.onnx");
        assert_eq!(encode("a b", true), "a%20b");
    }

    #[test]
    fn repo_info_needs_sha_and_siblings() {
        let text = r#"{"id": "o/n", "sha": "abc",
            "siblings": [{"rfilename": "a.json"}, {"rfilename": "onnx/b"}]}"#;
        let info = parse_repo_info("o/n", text).unwrap();
        assert_eq!(info.commit, "abc");
        assert_eq!(info.files, vec!["a.json", "onnx/b"]);
        assert!(parse_repo_info("o/n", r#"{"sha": "abc"}"#).is_none());
    }
}
