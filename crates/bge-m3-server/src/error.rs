//! Errors of the HTTP routes and the one place that maps them to status codes.
//!
//! Every route returns [`ApiError`]. Its status code, its kind and its log level are
//! chosen here, and nowhere else. The JSON body comes in two shapes: the OpenAI shape
//! (`{"error": {"message", "type", "param"}}`) for the OpenAI and native routes, and
//! the text-embeddings-inference shape (`{"error", "error_type"}`) for `/embed` and
//! `/embed_sparse`, through [`TeiError`], so that each family's clients can read it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Seconds a client is asked to wait after a 429, in the `Retry-After` header.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// An error that ends a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body is not valid JSON for the route, or a field has the wrong type.
    #[error("invalid request body{}: {reason}", place(field))]
    InvalidJson {
        /// The JSON path of the field, such as `input[2]`, or `.` for the whole body.
        field: String,
        /// The parser's message.
        reason: String,
    },

    /// A field has a value of the right type that the server does not accept.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field name.
        field: &'static str,
        /// The reason the value is invalid, and the accepted values.
        reason: String,
    },

    /// The body is longer than `--max-payload-bytes`.
    #[error("request body is larger than the limit of {max} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        max: usize,
    },

    /// The request has more inputs than `--max-inputs`.
    #[error(
        "request has {count} inputs, more than the limit of {max}; split it into smaller requests"
    )]
    TooManyInputs {
        /// Inputs in the request.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// An input has more tokens than `--max-input-tokens` and truncation was not requested.
    #[error("input {input_index} has {tokens} tokens, more than the limit of {max}; {advice}")]
    InputTooLong {
        /// The position of the input in the request.
        input_index: usize,
        /// Its tokens, `<s>` and `</s>` included.
        tokens: usize,
        /// The limit.
        max: usize,
        /// The advice to the client, which depends on the route.
        advice: &'static str,
    },

    /// The request alone has more tokens than the queue may hold.
    #[error(
        "request has {tokens} tokens, more than the queue limit of {max}; \
         split it into smaller requests"
    )]
    RequestTooLarge {
        /// Tokens of all inputs of the request.
        tokens: usize,
        /// The `--max-queued-tokens` limit.
        max: usize,
    },

    /// The queue is full.
    #[error(
        "the server is busy: {queued} tokens are queued and the limit is {max}; \
         retry after {RETRY_AFTER_SECONDS} s"
    )]
    Overloaded {
        /// Tokens queued or running when the request arrived.
        queued: usize,
        /// The `--max-queued-tokens` limit.
        max: usize,
    },

    /// The API key is missing or wrong.
    #[error("missing or invalid API key: send the header `Authorization: Bearer <key>`")]
    Unauthorized,

    /// A text could not be tokenized.
    #[error("failed to tokenize input {input_index}: {reason}")]
    Tokenize {
        /// The position of the input in the request.
        input_index: usize,
        /// The tokenizer's message.
        reason: String,
    },

    /// The model call failed for this request.
    #[error("{message}")]
    ModelFailed {
        /// The message, with the input position when one input caused the failure.
        message: String,
    },

    /// The queue worker has stopped, so no request can be embedded.
    #[error("the embedding worker has stopped; restart the server")]
    Unavailable,

    /// A path that no route has.
    #[error("no route {path}; GET /openapi.json lists the routes")]
    RouteNotFound {
        /// The request path.
        path: String,
    },

    /// A route that exists, but not for this method.
    #[error("{path} does not take {method}; GET /openapi.json lists each route's method")]
    MethodNotAllowed {
        /// The request method.
        method: String,
        /// The request path.
        path: String,
    },
}

/// Returns " at <field>" for an error about one field, and nothing for one about the
/// whole body.
fn place(field: &str) -> String {
    if names_field(field) {
        format!(" at {field}")
    } else {
        String::new()
    }
}

/// Returns whether a JSON path from the parser names a field: `.` is the whole body,
/// and `?` a place the parser could not name. Errors about no field have no `param`.
fn names_field(path: &str) -> bool {
    path != "." && path != "?"
}

/// The class of an error, sent as `type` in the OpenAI body and as `error_type` in
/// the text-embeddings-inference body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InvalidRequest,
    TooLarge,
    Overloaded,
    Unauthorized,
    Tokenizer,
    Model,
    Unavailable,
    NotFound,
    MethodNotAllowed,
}

impl ApiError {
    /// Returns the HTTP status code of the error.
    pub fn status(&self) -> StatusCode {
        match self.kind() {
            Kind::InvalidRequest => StatusCode::BAD_REQUEST,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Tokenizer | Kind::Model => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Self::InvalidJson { .. } | Self::InvalidField { .. } => Kind::InvalidRequest,
            Self::PayloadTooLarge { .. }
            | Self::TooManyInputs { .. }
            | Self::InputTooLong { .. }
            | Self::RequestTooLarge { .. } => Kind::TooLarge,
            Self::Overloaded { .. } => Kind::Overloaded,
            Self::Unauthorized => Kind::Unauthorized,
            Self::Tokenize { .. } => Kind::Tokenizer,
            Self::ModelFailed { .. } => Kind::Model,
            Self::Unavailable => Kind::Unavailable,
            Self::RouteNotFound { .. } => Kind::NotFound,
            Self::MethodNotAllowed { .. } => Kind::MethodNotAllowed,
        }
    }

    /// Returns the field the error is about, when there is one.
    fn param(&self) -> Option<String> {
        match self {
            Self::InvalidJson { field, .. } if names_field(field) => Some(field.clone()),
            Self::InvalidField { field, .. } => Some((*field).to_owned()),
            Self::InputTooLong { input_index, .. } | Self::Tokenize { input_index, .. } => {
                Some(format!("input[{input_index}]"))
            }
            _ => None,
        }
    }

    fn log(&self) {
        let status = self.status().as_u16();
        match self.kind() {
            Kind::Tokenizer | Kind::Model | Kind::Unavailable => {
                tracing::error!(status, error = %self, "request failed");
            }
            Kind::Overloaded => log_overload(self),
            _ => tracing::info!(status, error = %self, "request rejected"),
        }
    }

    fn with_headers(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        match self.kind() {
            Kind::Overloaded => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            }
            Kind::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// The second (since the Unix epoch) of the last overload log line, and the
/// overload rejections not logged since then.
static OVERLOAD_LOGGED_AT: AtomicU64 = AtomicU64::new(0);
static OVERLOADS_NOT_LOGGED: AtomicU64 = AtomicU64::new(0);

/// Logs at most one line per second for 429 rejections, with the number left out, so
/// a burst of rejected requests does not flood the log. The metrics count every one.
fn log_overload(error: &ApiError) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |time| time.as_secs());
    let last = OVERLOAD_LOGGED_AT.load(Ordering::Relaxed);
    let is_first_this_second = now > last
        && OVERLOAD_LOGGED_AT
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
    if is_first_this_second {
        let not_logged = OVERLOADS_NOT_LOGGED.swap(0, Ordering::Relaxed);
        tracing::warn!(status = 429, error = %error, not_logged, "request rejected");
    } else {
        OVERLOADS_NOT_LOGGED.fetch_add(1, Ordering::Relaxed);
    }
}

impl Kind {
    fn openai_type(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::TooLarge => "request_too_large",
            Self::Overloaded => "overloaded",
            Self::Unauthorized => "authentication_error",
            Self::Tokenizer => "tokenizer_error",
            Self::Model => "model_error",
            Self::Unavailable => "unavailable",
            Self::NotFound => "not_found_error",
            Self::MethodNotAllowed => "method_not_allowed",
        }
    }

    /// Returns the `ErrorType` name of text-embeddings-inference (`router/src/lib.rs`).
    fn tei_type(self) -> &'static str {
        match self {
            Self::InvalidRequest
            | Self::TooLarge
            | Self::Unauthorized
            | Self::NotFound
            | Self::MethodNotAllowed => "Validation",
            Self::Overloaded => "Overloaded",
            Self::Tokenizer => "Tokenizer",
            Self::Model => "Backend",
            Self::Unavailable => "Unhealthy",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let mut error = json!({
            "message": self.to_string(),
            "type": self.kind().openai_type(),
        });
        if let Some(param) = self.param() {
            error["param"] = param.into();
        }
        let response = (self.status(), Json(json!({ "error": error }))).into_response();
        self.with_headers(response)
    }
}

impl ApiError {
    /// Renders the error in the body shape of the route at `path`: the shape of
    /// text-embeddings-inference on its routes, else OpenAI's. This is for errors
    /// raised outside a route's handler, such as 401 and 405.
    pub fn into_response_for(self, path: &str) -> Response {
        if matches!(path, "/embed" | "/embed_sparse") {
            TeiError(self).into_response()
        } else {
            self.into_response()
        }
    }
}

/// An [`ApiError`] rendered in the body shape of text-embeddings-inference:
/// `{"error": "<message>", "error_type": "Validation"}`.
#[derive(Debug)]
pub struct TeiError(pub ApiError);

impl From<ApiError> for TeiError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for TeiError {
    fn into_response(self) -> Response {
        let error = self.0;
        error.log();
        let body = json!({
            "error": error.to_string(),
            "error_type": error.kind().tei_type(),
        });
        let response = (error.status(), Json(body)).into_response();
        error.with_headers(response)
    }
}
