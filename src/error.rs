//! The library's one error type. Every variant that comes from user input carries a message
//! that names the fix; the CLI prints the chain once and exits non-zero.
//!
//! Each message is complete by itself: a variant that wraps another error says its cause in
//! its own text and does not also return it as `source()`. Doing both printed the cause twice
//! in the CLI's one-line chain (`{:#}`): "… Read-only file system (os error 30): Read-only file
//! system (os error 30)". The cause is kept in the variant for callers that match on it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input the user can correct (sizes, steps, names, paths). The message names the fix.
    #[error("{0}")]
    Invalid(String),

    /// A model folder or repository that is missing, incomplete or of an unsupported family.
    #[error("{0}")]
    Model(String),

    /// A PNG that is unreadable, foreign or carries no recipe.
    #[error("{0}")]
    Metadata(String),

    /// (The field is not named `source`: thiserror would make that the `source()` too.)
    #[error("{what} {}: {cause}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("tensor computation failed: {0}")]
    Candle(candle_core::Error),

    /// A replay that should have been identical and is not; the message names the cause.
    #[error("{0}")]
    Verify(String),

    #[error("generation was interrupted")]
    Interrupted,
}

/// What kind of failure an error is, for a front end that answers by kind (an HTTP status, an
/// exit code) rather than by message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request itself is wrong (a field out of range, an unreadable image, a bad name); the
    /// message names the fix. HTTP 400.
    BadInput,
    /// The model (or VAE) asked for is missing, incomplete or unsupported here. HTTP 404/422.
    Model,
    /// A verification found a difference it should not have. HTTP 409.
    Mismatch,
    /// A stop flag ended the run.
    Interrupted,
    /// Files, devices or computation failed: not the request's fault. HTTP 500.
    Internal,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::Metadata(_) => ErrorKind::BadInput,
            Error::Model(_) => ErrorKind::Model,
            Error::Verify(_) => ErrorKind::Mismatch,
            Error::Interrupted => ErrorKind::Interrupted,
            Error::Io { .. } | Error::Candle(_) => ErrorKind::Internal,
        }
    }

    pub fn io(what: &'static str, path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            cause,
        }
    }
}

/// By hand rather than `#[from]`, which would also make the candle error the `source()`.
impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Candle(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// The CLI prints `{:#}` of an anyhow error: each message of the chain, joined by ": ".
    fn as_printed(e: Error) -> String {
        format!("{:#}", anyhow::Error::from(e))
    }

    #[test]
    fn a_wrapped_cause_is_printed_once() {
        let os = std::io::Error::from_raw_os_error(30);
        let shown = os.to_string();
        let e = Error::io("cannot create temporary file", "/ro/.x.png.tmp", os);
        assert!(e.source().is_none());
        assert_eq!(
            as_printed(e),
            format!("cannot create temporary file /ro/.x.png.tmp: {shown}")
        );
        let e = Error::from(candle_core::Error::Msg("shape mismatch".into()));
        assert!(e.source().is_none());
        assert_eq!(as_printed(e), "tensor computation failed: shape mismatch");
    }
}
