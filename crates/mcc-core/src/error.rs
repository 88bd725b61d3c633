//! The error type of mcc's library.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: a usage error (exit code 2). Nothing was created.
    #[error("{0}")]
    Invalid(String),

    /// No engine answers.
    #[error("cannot reach the container engine at {host}: {reason}\n  hint: {hint}")]
    NoEngine {
        host: String,
        reason: String,
        hint: String,
    },

    /// The daemon (`mcc serve`) the CLI was pointed at does not answer.
    #[error("cannot reach mcc serve at {url}: {reason}\n  hint: {hint}")]
    NoDaemon {
        url: String,
        reason: String,
        hint: String,
    },

    /// An object exists already (HTTP 409 from the engine, or a cluster name in use).
    #[error("{0}")]
    Conflict(String),

    /// An object does not exist.
    #[error("{0}")]
    NotFound(String),

    /// The engine refused or failed a call.
    #[error("{op}: {message}")]
    Engine {
        op: String,
        status: Option<u16>,
        message: String,
    },

    /// A context script exited non-zero.
    #[error("context script {script} failed on {node} with exit code {code}{}", tail_text(.tail))]
    ScriptFailed {
        node: String,
        script: String,
        code: i64,
        tail: String,
    },

    /// The user interrupted the operation (Ctrl-C).
    #[error("interrupted")]
    Interrupted,

    /// Any other failure, described.
    #[error("{0}")]
    Failed(String),

    /// An operation failed and so did the cleanup after it: both are reported.
    #[error("{error}\n  cleaning up after it also failed: {cleanup}")]
    CleanupFailed { error: Box<Error>, cleanup: String },
}

fn tail_text(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        let indented: Vec<String> = tail.lines().map(|l| format!("    {l}")).collect();
        format!("; last lines of its output:\n{}", indented.join("\n"))
    }
}

impl Error {
    /// Process exit code for this error: 2 for usage errors, 130 when
    /// interrupted, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid(_) => 2,
            Error::Interrupted => 130,
            Error::CleanupFailed { error, .. } => error.exit_code(),
            _ => 1,
        }
    }

    pub fn engine(op: impl fmt::Display, message: impl fmt::Display) -> Error {
        Error::Engine {
            op: op.to_string(),
            status: None,
            message: message.to_string(),
        }
    }

    /// Whether the engine gave no answer at all (not reached, the
    /// connection broken, timed out), as opposed to an answer that says no.
    pub fn engine_unreachable(&self) -> bool {
        matches!(
            self,
            Error::NoEngine { .. } | Error::Engine { status: None, .. }
        )
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
            || matches!(
                self,
                Error::Engine {
                    status: Some(404),
                    ..
                }
            )
    }

    /// Wraps `self` with a failed cleanup, keeping both messages.
    pub fn with_cleanup(self, cleanup: Option<Error>) -> Error {
        match cleanup {
            None => self,
            Some(c) => Error::CleanupFailed {
                error: Box::new(self),
                cleanup: c.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only bad input exits 2: an engine or internal failure is not the
    /// user's usage error, whatever its text.
    #[test]
    fn exit_codes() {
        assert_eq!(Error::Invalid("x".into()).exit_code(), 2);
        assert_eq!(Error::engine("creating x", "boom").exit_code(), 1);
        assert_eq!(Error::Failed("x".into()).exit_code(), 1);
        assert_eq!(Error::Conflict("x".into()).exit_code(), 1);
        assert_eq!(Error::Interrupted.exit_code(), 130);
        let both = Error::Failed("x".into()).with_cleanup(Some(Error::Invalid("y".into())));
        assert_eq!(both.exit_code(), 1);
    }
}
