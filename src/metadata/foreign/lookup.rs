//! The model lookup a foreign reader is given: what seedling found for the model another tool's
//! file names (by name and hash). Reading metadata does no I/O; where models are looked for —
//! presets, well-known checkpoints, the Hugging Face cache (`model::lookup`), or nowhere — is
//! the caller's choice.
//!
//! A name match is returned marked as such ([`ResolvedModel::by_content`] false), and callers
//! show it as a suggestion the user must confirm with `--model`, never use it on their own. A
//! file called "v1-5-pruned-emaonly" can be any fine-tune saved under that name.

use crate::recipe::ModelSource;
use serde::Serialize;

/// Where seedling found the model a foreign file names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedModel {
    pub source: ModelSource,
    /// Family when known without opening the model (presets); empty otherwise.
    pub family: String,
    pub preset: Option<String>,
    /// How it was matched, e.g. "preset sd15, by model hash 6ce0161689".
    pub how: String,
    /// Matched by the hash of its weights. `false`: only its name matches, which is a guess.
    pub by_content: bool,
}

impl ResolvedModel {
    /// The `--model` value that names this model ("sd15", "owner/repo").
    pub fn model_arg(&self) -> String {
        match (&self.preset, &self.source) {
            (Some(p), _) => p.clone(),
            (None, ModelSource::Hub { repo, .. }) => repo.clone(),
            (None, ModelSource::Local { path } | ModelSource::File { path, .. }) => {
                path.display().to_string()
            }
        }
    }
}

/// Finds the model a foreign file names: `name` and `hash` as the file records them (A1111's
/// hash is the first 10 hex digits of the checkpoint's sha256). A hash match must come back
/// with `by_content` true, a name match with it false.
pub trait ModelLookup {
    fn find(&self, name: Option<&str>, hash: Option<&str>) -> Option<ResolvedModel>;
}

/// A function or closure of (name, hash) is a lookup.
impl<F> ModelLookup for F
where
    F: Fn(Option<&str>, Option<&str>) -> Option<ResolvedModel>,
{
    fn find(&self, name: Option<&str>, hash: Option<&str>) -> Option<ResolvedModel> {
        self(name, hash)
    }
}

/// The lookup that finds nothing: every foreign recipe then needs its model given.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLookup;

impl ModelLookup for NoLookup {
    fn find(&self, _name: Option<&str>, _hash: Option<&str>) -> Option<ResolvedModel> {
        None
    }
}
