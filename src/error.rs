//! The library's one error type. Every variant that comes from user input carries a message
//! that names the fix; the CLI prints the chain once and exits non-zero.
//!
//! Each message is complete by itself: a variant that wraps another error says its cause in
//! its own text and does not also return it as `source()`. Doing both printed the cause twice
//! in the CLI's one-line chain (`{:#}`): "… Read-only file system (os error 30): Read-only file
//! system (os error 30)". The cause is kept in the variant for callers that match on it.

use crate::message::{Message, Setting};
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

    /// A message that tells the user to change a setting (bad input, or a model to give
    /// instead), with the setting named structurally so that each front end spells it in its
    /// own terms ([`Error::render`]); `Display` is the neutral spelling.
    ///
    /// (A variant of its own rather than a [`Message`] in `Invalid` and the others: their
    /// `String` keeps the plain messages' many constructors, some in files edited elsewhere,
    /// as they are. Made with [`Error::hint`].)
    #[error("{message}")]
    Hint { kind: ErrorKind, message: Message },
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
            Error::Hint { kind, .. } => *kind,
        }
    }

    /// An error whose message names settings; `kind` is what a front end answers by.
    pub fn hint(kind: ErrorKind, message: Message) -> Self {
        Error::Hint { kind, message }
    }

    /// The message with settings named structurally, when this error has one.
    pub fn message(&self) -> Option<&Message> {
        match self {
            Error::Hint { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The error's text with each setting spelled by `spell` (a front end's terms); the same
    /// as `to_string()` for an error that names none.
    pub fn render(&self, spell: impl Fn(&Setting, Option<&str>) -> String) -> String {
        match self.message() {
            Some(m) => m.render(spell),
            None => self.to_string(),
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

    /// One of each library error that names a setting (those a test can reach without a
    /// model, a GPU or the network).
    fn hints() -> Vec<Error> {
        use crate::recipe::{ModelDType, Recipe};
        use crate::sampler::{SamplerKind, ScheduleKind, SchedulerConfig};
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("taken.png");
        std::fs::write(&taken, b"x").unwrap();
        let no_sigmas = SamplerKind::ALL.into_iter().find(|k| !k.has_sigmas());
        let config = SchedulerConfig::from_json(r#"{"skip_prk_steps": true}"#).unwrap();
        let tokens = crate::text::Tokens {
            ids: vec![],
            dropped: 3,
            dropped_text: "at dawn".into(),
            embedded: Vec::new(),
        };
        let v: crate::grid::plan::Axis = "variation_seed=1-3".parse().unwrap();
        let mut errors = vec![
            Recipe {
                steps: 0,
                ..Recipe::default()
            }
            .validate(8, 1000)
            .unwrap_err(),
            Recipe {
                variation_strength: 0.5,
                ..Recipe::default()
            }
            .validate(8, 1000)
            .unwrap_err(),
            crate::sampler::build(no_sigmas.unwrap(), ScheduleKind::Karras, &config, 4, 0.0)
                .err()
                .unwrap(),
            crate::text::too_long_error("prompt", &tokens, 77),
            crate::pipeline::check_device_dtype(&candle_core::Device::Cpu, ModelDType::Bf16)
                .unwrap_err(),
            crate::output::check_new(&taken, false).unwrap_err(),
            crate::output::check_new(dir.path(), false).unwrap_err(),
            crate::grid::seeds::around(1 << 40, 1 << 30).unwrap_err(),
            crate::grid::plan::xy_plan(&Recipe::default(), &v, None).unwrap_err(),
        ];
        if !cfg!(feature = "cuda") {
            errors.push("cuda".parse::<crate::session::DeviceSpec>().unwrap_err());
        }
        errors
    }

    #[test]
    fn the_library_names_settings_without_a_front_ends_flags() {
        for e in hints() {
            let message = e
                .message()
                .unwrap_or_else(|| panic!("no settings named: {e}"));
            assert!(!message.settings().is_empty(), "{e}");
            // A cargo command is not a front end's flag.
            let text = e
                .to_string()
                .replace("cargo build --release --features cuda", "");
            assert!(!text.contains("--"), "{e}");
            assert_eq!(e.kind(), ErrorKind::BadInput, "{e}");
        }
    }

    /// `Setting::field` checks its name only in debug builds; every field a message names is a
    /// real one.
    #[test]
    fn every_field_a_message_names_is_a_recipe_field() {
        for e in hints() {
            for (setting, _) in e.message().unwrap().settings() {
                if let Setting::Field(name) = setting {
                    assert!(crate::recipe::field(name).is_some(), "{name} in: {e}");
                }
            }
        }
    }

    #[test]
    fn a_front_end_renders_the_settings_its_way_and_the_rest_as_displayed() {
        let e = crate::recipe::Recipe {
            steps: 0,
            ..Default::default()
        }
        .validate(8, 1000)
        .unwrap_err();
        assert_eq!(
            e.render(crate::message::as_flags),
            "steps must be at least 1; try --steps 20 (or 1-4 for turbo models)"
        );
        assert_eq!(
            e.to_string(),
            "steps must be at least 1; try steps = 20 (or 1-4 for turbo models)"
        );
        let plain = Error::Invalid("plain".into());
        assert_eq!(plain.render(crate::message::as_flags), "plain");
        assert!(plain.message().is_none());
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
