//! Reading a JSON request body under the payload limit.
//!
//! Handlers take the body as bytes and parse it here, instead of using axum's `Json`
//! extractor, so that an oversized body and malformed JSON get the server's JSON
//! errors, and a wrong field is named by its path (`input[2]`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize as _;
use serde_json::error::Category;

use crate::error::ApiError;

/// Parses a request body as `T`. `max_bytes` is the limit the router enforces, used
/// in the error message.
pub fn parse_json<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    max_bytes: usize,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { max: max_bytes },
        _ => ApiError::InvalidJson {
            field: ".".to_owned(),
            reason: rejection.body_text(),
        },
    })?;
    // A UTF-8 byte order mark is not JSON, but some clients write one. The CLI's
    // input reader skips it too.
    let json = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    // serde reads a struct from an array of its fields in order too, so the shape is
    // checked first.
    let is_object = json.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
    if !is_object && serde_json::from_slice::<serde::de::IgnoredAny>(json).is_ok() {
        return Err(ApiError::InvalidJson {
            field: ".".to_owned(),
            reason: "the body must be a JSON object".to_owned(),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        // A cut-off body concerns the whole body, not the field being read.
        let field = match error.inner().classify() {
            Category::Eof => ".".to_owned(),
            _ => error.path().to_string(),
        };
        ApiError::InvalidJson {
            field,
            reason: with_hint(error.inner()),
        }
    })?;
    deserializer.end().map_err(|error| ApiError::InvalidJson {
        field: ".".to_owned(),
        reason: error.to_string(),
    })?;
    Ok(value)
}

/// Returns the parser's message, with the cause spelled out where serde_json's words
/// hide it.
fn with_hint(error: &serde_json::Error) -> String {
    let message = error.to_string();
    // serde_json reports a lone UTF-16 surrogate (`"\ud800"`, as JavaScript strings
    // can hold) as an unexpected end of, or a lone surrogate in, a hex escape.
    if message.contains("hex escape") {
        return format!(
            "{message}; a \\u escape from D800 to DFFF must be half of a surrogate pair, \
             so replace a lone surrogate with \\uFFFD"
        );
    }
    message
}

/// Reads an optional field whose `null` means its default, as a missing field does.
///
/// Clients that build requests from optional values send `"encoding_format": null`
/// for a value they did not set.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Request {
        input: Vec<String>,
        count: Option<u32>,
    }

    fn parse(json: &str) -> Result<Request, ApiError> {
        parse_json(Ok(Bytes::from(json.to_owned())), 100)
    }

    #[test]
    fn wrong_type_names_the_field() {
        let error = parse(r#"{"input": ["a", 3]}"#).unwrap_err();
        let ApiError::InvalidJson { field, .. } = error else {
            panic!("expected InvalidJson");
        };
        assert_eq!(field, "input[1]");
    }

    #[test]
    fn missing_field_is_named() {
        let error = parse(r#"{"count": 1}"#).unwrap_err();
        assert!(
            error.to_string().contains("missing field `input`"),
            "{error}"
        );
    }

    #[test]
    fn trailing_characters_are_invalid() {
        let error = parse(r#"{"input": []} x"#).unwrap_err();
        assert!(error.to_string().contains("trailing characters"), "{error}");
    }

    #[test]
    fn syntax_error_is_invalid_json() {
        let error = parse(r#"{"input": ["#).unwrap_err();
        assert!(matches!(error, ApiError::InvalidJson { .. }), "{error}");
    }
}
