//! The library's one error type. Every variant that comes from user input carries a message
//! that names the fix; the CLI prints the chain once and exits non-zero.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
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

    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),

    #[error("generation was interrupted")]
    Interrupted,
}

impl Error {
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
