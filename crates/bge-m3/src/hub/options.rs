//! Settings of Hub downloads, read from the environment as `huggingface_hub` 0.36
//! reads them (`huggingface_hub/constants.py`).

use std::path::{Path, PathBuf};

/// The public Hugging Face Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// The revision used when none is given.
pub const DEFAULT_REVISION: &str = "main";

/// Values of boolean environment variables that count as true, compared
/// case-insensitively (`ENV_VARS_TRUE_VALUES` of `huggingface_hub`).
const TRUE_VALUES: [&str; 4] = ["1", "ON", "YES", "TRUE"];

/// Settings of [`super::fetch_model`].
#[derive(Clone)]
#[non_exhaustive]
pub struct HubOptions {
    /// Base URL of the Hub or of a mirror. Default `HF_ENDPOINT`, else
    /// [`DEFAULT_ENDPOINT`].
    pub endpoint: String,
    /// The cache folder that contains `models--<owner>--<name>` folders. Default
    /// `HF_HUB_CACHE`, else `$HF_HOME/hub`, where `HF_HOME` defaults to
    /// `$XDG_CACHE_HOME/huggingface` or `~/.cache/huggingface`.
    pub cache_dir: PathBuf,
    /// Access token, sent only to `endpoint` and never to the storage hosts it
    /// redirects to. Default `HF_TOKEN`, else the contents of the file `HF_TOKEN_PATH`
    /// or `$HF_HOME/token`.
    pub token: Option<String>,
    /// Use the cache only, never the network. Default: `HF_HUB_OFFLINE` (or
    /// `TRANSFORMERS_OFFLINE`) is 1, ON, YES or TRUE.
    pub offline: bool,
    /// Branch, tag or commit. Default [`DEFAULT_REVISION`].
    pub revision: String,
    /// Hash cached files of every size on each run, not only those under
    /// [`super::REHASH_LIMIT`]. Default false.
    pub rehash_large_files: bool,
    /// Further attempts after a transfer stops midway, each resuming where the last
    /// stopped, one second apart and doubling. Default 3.
    pub retries: u32,
}

impl std::fmt::Debug for HubOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("HubOptions")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("offline", &self.offline)
            .field("revision", &self.revision)
            .field("rehash_large_files", &self.rehash_large_files)
            .field("retries", &self.retries)
            .finish()
    }
}

impl HubOptions {
    /// Reads the settings from the environment.
    pub fn from_env() -> Self {
        let home = hf_home();
        let cache_dir = env_path("HF_HUB_CACHE")
            .or_else(|| env_path("HUGGINGFACE_HUB_CACHE"))
            .unwrap_or_else(|| home.join("hub"));
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            cache_dir,
            token: env_token(&home),
            offline: env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE"),
            revision: DEFAULT_REVISION.to_owned(),
            rehash_large_files: false,
            retries: 3,
        }
    }

    /// Sets the Hub endpoint (a trailing `/` is removed).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into().trim_end_matches('/').to_owned();
        self
    }

    /// Sets the cache folder.
    pub fn with_cache_dir(mut self, cache_dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = cache_dir.into();
        self
    }

    /// Sets the access token, or removes it with `None`.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Sets whether to use the cache only.
    pub fn with_offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// Sets the branch, tag or commit.
    pub fn with_revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = revision.into();
        self
    }

    /// Sets whether cached files of every size are hashed again.
    pub fn with_rehash_large_files(mut self, rehash: bool) -> Self {
        self.rehash_large_files = rehash;
        self
    }

    /// Sets how many times an interrupted transfer is resumed within one call.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }
}

fn hf_home() -> PathBuf {
    if let Some(home) = env_path("HF_HOME") {
        return home;
    }
    let cache = env_path("XDG_CACHE_HOME")
        .or_else(|| env_path("HOME").map(|home| home.join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("huggingface")
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

fn env_true(name: &str) -> bool {
    std::env::var(name).is_ok_and(|value| {
        TRUE_VALUES
            .iter()
            .any(|yes| value.eq_ignore_ascii_case(yes))
    })
}

fn env_token(home: &Path) -> Option<String> {
    if let Some(token) = std::env::var("HF_TOKEN")
        .ok()
        .filter(|token| !token.trim().is_empty())
    {
        return Some(token.trim().to_owned());
    }
    let path = env_path("HF_TOKEN_PATH").unwrap_or_else(|| home.join("token"));
    let token = std::fs::read_to_string(path).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_token() {
        let options = HubOptions::from_env().with_token(Some("hf_secret".into()));
        let shown = format!("{options:?}");
        assert!(!shown.contains("hf_secret"), "{shown}");
        assert!(shown.contains("<hidden>"), "{shown}");
    }

    #[test]
    fn endpoint_loses_trailing_slash() {
        let options = HubOptions::from_env().with_endpoint("http://127.0.0.1:9/");
        assert_eq!(options.endpoint, "http://127.0.0.1:9");
    }
}
