//! The optional API key: a bearer token checked in constant time, never logged.

use std::fmt;
use std::str::FromStr;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// A secret API key. Its `Debug` output is redacted, so logging the flags never
/// prints it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Returns whether `presented` is the key.
    ///
    /// The comparison takes the same time wherever the first differing byte is, so
    /// response times do not reveal a prefix of the key. A key of another length
    /// is rejected at once, which reveals only the length.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ApiKey(<redacted>)")
    }
}

impl FromStr for ApiKey {
    type Err = String;

    fn from_str(key: &str) -> Result<Self, Self::Err> {
        if key.is_empty() {
            return Err("the API key must not be empty".to_owned());
        }
        Ok(Self(key.to_owned()))
    }
}

/// Rejects a request with 401 unless it carries `Authorization: Bearer <key>`, when
/// the server has a key.
pub async fn require_api_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = state.api_key() else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    match presented {
        Some(token) if key.matches(token) => next.run(request).await,
        _ => ApiError::Unauthorized.into_response_for(request.uri().path()),
    }
}

/// Returns the token of an `Authorization: Bearer <token>` value. HTTP scheme names
/// are case-insensitive, so `bearer` is accepted too.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_matches_itself_only() {
        let key: ApiKey = "s3cret".parse().unwrap();
        assert!(key.matches("s3cret"));
        assert!(!key.matches("s3cres"));
        assert!(!key.matches("s3cret "));
        assert!(!key.matches(""));
    }

    #[test]
    fn key_debug_is_redacted() {
        let key: ApiKey = "s3cret".parse().unwrap();
        assert!(!format!("{key:?}").contains("s3cret"));
    }

    #[test]
    fn bearer_scheme_ignores_case() {
        assert_eq!(bearer_token("Bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer_token("bearer s3cret"), Some("s3cret"));
        assert_eq!(bearer_token("BEARER s3cret"), Some("s3cret"));
        assert_eq!(bearer_token("Basic s3cret"), None);
        assert_eq!(bearer_token("Bearers3cret"), None);
    }

    #[test]
    fn empty_key_is_rejected() {
        assert!("".parse::<ApiKey>().is_err());
    }
}
