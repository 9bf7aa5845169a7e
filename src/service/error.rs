//! Errors as the service answers them: an HTTP status, a stable `code`,
//! and the same text the CLI prints after `optout: error:` (for body
//! input, `body:LINE: field `F`: ...`, with `line` and `field` also as
//! JSON fields).
//!
//! ```json
//! {"code":"invalid_input","error":"body:2: field `at`: ...","line":2,"field":"at"}
//! ```
//!
//! The codes are the contract; the text may improve.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{Error, LedgerError};

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable machine-readable code.
    pub code: &'static str,
    /// What went wrong (never a raw subject id the server made up; input
    /// errors quote the caller's own body).
    pub message: String,
    /// For body input: the 1-based line (JSONL) or item (JSON array).
    pub line: Option<u64>,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
    /// Seconds after which a retry may succeed (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            line: None,
            field: None,
            retry_after: None,
        }
    }

    /// 400 `invalid_request`: a request the service cannot read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// 503 `unavailable` (shutting down, writer stopped), retry later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        e.retry_after = Some(1);
        e
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut v = json!({"code": self.code, "error": self.message});
        if let Some(l) = self.line {
            v["line"] = json!(l);
        }
        if let Some(f) = &self.field {
            v["field"] = json!(f);
        }
        v
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// How a library error answers, in this one function, matched by variant:
/// the ledger's refusals ([`LedgerError`]) are 422 `rejected`, except a
/// read-only ledger (503, retry) and a subject key that is not the ledger's
/// or a damaged log (500: the server is misconfigured or broken, not the
/// request).
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Input(i) => ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_input",
                line: (i.line > 0).then_some(i.line),
                field: i.field.clone(),
                message: i.to_string(),
                retry_after: None,
            },
            Error::Manifest(m) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_manifest",
                m.to_string(),
            ),
            Error::Ledger(LedgerError::ReadOnly) => ApiError::unavailable(e.to_string()),
            Error::Ledger(LedgerError::KeyMismatch { .. } | LedgerError::Damaged(_)) => {
                ApiError::internal(e.to_string())
            }
            Error::Ledger(LedgerError::UndeclaredPurpose { event, .. }) => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "undeclared_purpose",
                line: event.map(|i| i as u64 + 1),
                field: Some("purposes".into()),
                message: e.to_string(),
                retry_after: None,
            },
            Error::Ledger(l) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", l.to_string())
            }
            Error::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", m),
            Error::Storage(s) => {
                let mut e =
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", s.to_string());
                e.retry_after = Some(1);
                e
            }
            Error::Io { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "io", e.to_string())
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<crate::InputError> for ApiError {
    fn from(e: crate::InputError) -> Self {
        Error::Input(e).into()
    }
}
