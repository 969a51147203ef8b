//! The one error type of the command line: a stable [`ErrorCode`] (which fixes the exit code)
//! and a sentence a person can act on.

use std::fmt;

use crate::api::{ErrorBody, ErrorCode};

/// A command failed. `main` prints `error: <message>` (and the hint) on stderr and exits with
/// [`ErrorCode::exit_code`].
#[derive(Debug, Clone)]
pub struct Failure {
    /// What kind of failure.
    pub code: ErrorCode,
    /// A sentence for people.
    pub message: String,
    /// What to do about it, if there is something to say.
    pub hint: Option<String>,
    /// For ambiguous names: the candidates.
    pub candidates: Vec<String>,
}

impl Failure {
    /// A failure with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            hint: None,
            candidates: Vec::new(),
        }
    }

    /// The same failure with a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// An unexpected failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Failure::new(ErrorCode::Internal, message)
    }

    /// A request field or argument that breaks a rule.
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure::new(ErrorCode::InvalidInput, message)
    }

    /// The failure an API error body describes.
    pub fn from_body(body: ErrorBody) -> Self {
        Failure {
            code: ErrorCode::from_wire(&body.error.code),
            message: body.error.message,
            hint: None,
            candidates: body.error.candidates,
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.code.exit_code()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for c in &self.candidates {
            write!(f, "\n  {c}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n{hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::internal(format!("an input/output operation failed: {e}"))
    }
}
