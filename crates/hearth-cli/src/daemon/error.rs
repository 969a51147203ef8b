//! Errors as the daemon answers them: an HTTP status and `{ "error": { code, message } }`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::{ErrorBody, ErrorCode, ErrorDetail};

/// An error answer of the local API.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The stable code; it fixes the HTTP status.
    pub code: ErrorCode,
    /// A sentence for people. Never a secret or a message's plaintext.
    pub message: String,
    /// Candidates, for `ambiguous`.
    pub candidates: Vec<String>,
    /// An HTTP status other than the code's own, for the transport limits (408, 413, 431:
    /// `invalid_input`) and errors the HTTP layer made.
    pub status: Option<StatusCode>,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            candidates: Vec::new(),
            status: None,
        }
    }

    /// The same error answered with another HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// A `not_found` error.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// An `invalid_input` error.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidInput, message)
    }

    /// An `internal` error.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Internal, message)
    }

    /// The body sent for this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message.clone(),
                candidates: self.candidates.clone(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        (status, Json(self.body())).into_response()
    }
}
