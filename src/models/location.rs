//! Where a model's files come from: a local diffusers folder or a Hugging Face repo, behind one
//! interface (`has`, `fetch`, `sha256`), so the hub path and the local path run the same code.

use super::hub::{self, HubRepo};
use super::preset::{self, Preset};
use super::reference::ReferenceVariant;
use crate::recipe::ModelSource;
use crate::{Error, ErrorKind, Message, Result, Setting};
use std::path::{Path, PathBuf};

/// What the user asked for with `--model` (or a recipe recorded).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    Preset(Preset),
    Hub {
        repo: String,
        revision: String,
    },
    Local(PathBuf),
    /// A single-file checkpoint, with the diffusers folder or repo whose configs describe its
    /// architecture (`--config`); without one, its family's reference config.
    File {
        path: PathBuf,
        config: Option<Box<ModelSpec>>,
        /// Without `config`: the reference config's variant a recipe recorded; `None` = as
        /// the file's weights say (a new image).
        reference: Option<ReferenceVariant>,
    },
}

impl ModelSpec {
    /// Parses `--model`: a preset name, an existing folder, or `owner/name[@revision]`.
    /// A path-like value that does not exist is an error naming it (not a hub lookup).
    pub fn parse(value: &str) -> Result<ModelSpec> {
        if let Some(p) = preset::find(value) {
            return Ok(ModelSpec::Preset(p));
        }
        let path = Path::new(value);
        if path.is_dir() {
            return Ok(ModelSpec::Local(path.to_path_buf()));
        }
        if path.is_file() {
            return Ok(ModelSpec::File {
                path: path.to_path_buf(),
                config: None,
                reference: None,
            });
        }
        let looks_like_path = value.starts_with('.')
            || value.starts_with('/')
            || value.starts_with('~')
            || value.contains('\\')
            || value.matches('/').count() > 1
            || path.exists();
        if looks_like_path {
            return Err(Error::Model(format!(
                "model folder {value} does not exist (nor a file of that name); pass a diffusers \
                 folder (with model_index.json), a single .safetensors checkpoint, a preset, or a \
                 Hugging Face repo id like stabilityai/sd-turbo"
            )));
        }
        let (repo, revision) = match value.split_once('@') {
            Some((r, rev)) => (r, rev),
            None => (value, "main"),
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        match repo.split_once('/') {
            Some((owner, name)) if valid(owner) && valid(name) && !revision.is_empty() => {
                Ok(ModelSpec::Hub {
                    repo: repo.into(),
                    revision: revision.into(),
                })
            }
            _ => Err(preset::unknown_preset_error(value)),
        }
    }

    /// The spec a recorded model source names.
    pub fn from_source(source: &ModelSource) -> ModelSpec {
        match source {
            ModelSource::Hub { repo, revision } => ModelSpec::Hub {
                repo: repo.clone(),
                revision: revision.clone(),
            },
            ModelSource::Local { path } => ModelSpec::Local(path.clone()),
            ModelSource::File {
                path,
                config,
                reference,
            } => ModelSpec::File {
                path: path.clone(),
                config: config
                    .as_deref()
                    .map(|c| Box::new(ModelSpec::from_source(c))),
                reference: Some(*reference),
            },
        }
    }

    /// This single-file model with its architecture described by `config` (`--config`); any
    /// other model has its own configs, and is refused.
    pub fn with_config(self, config: ModelSpec) -> Result<ModelSpec> {
        match self {
            ModelSpec::File { path, .. } => Ok(ModelSpec::File {
                path,
                config: Some(Box::new(config)),
                reference: None,
            }),
            _ => {
                let message = Message::text("").mention(Setting::Config).then(
                    " describes a single-file checkpoint's architecture; this model is a \
                           folder or repo with its own configs, so leave it out",
                );
                Err(Error::hint(ErrorKind::BadInput, message))
            }
        }
    }

    /// The preset that gives this model its defaults, if any.
    pub(crate) fn preset(&self) -> Option<Preset> {
        match self {
            ModelSpec::Preset(p) => Some(p.clone()),
            ModelSpec::Hub { repo, .. } => preset::for_repo(repo),
            ModelSpec::Local(_) | ModelSpec::File { .. } => None,
        }
    }
}

/// An opened model: local folder, or hub repo at a resolved commit.
pub enum Location {
    Local {
        root: PathBuf,
    },
    Hub(Box<HubRepo>),
    /// A single-file checkpoint (absolute); its configs are `config`'s files, if given, else
    /// its family's reference config with `reference`'s changes (`None` until the file is read:
    /// then what its weights say).
    File {
        path: PathBuf,
        config: Option<Box<Location>>,
        reference: Option<ReferenceVariant>,
    },
}

impl Location {
    pub(crate) fn open(spec: &ModelSpec) -> Result<Location> {
        match spec {
            ModelSpec::Preset(p) => Ok(Location::Hub(Box::new(HubRepo::open(
                &p.repo,
                &p.revision,
            )?))),
            ModelSpec::Hub { repo, revision } => {
                Ok(Location::Hub(Box::new(HubRepo::open(repo, revision)?)))
            }
            ModelSpec::Local(root) => {
                if !root.is_dir() {
                    return Err(Error::Model(format!(
                        "model folder {} does not exist; pass a diffusers folder (with model_index.json), \
                         a preset, or a Hugging Face repo id",
                        root.display()
                    )));
                }
                // Recorded absolute, so a replay from another working folder finds it.
                let root = std::fs::canonicalize(root)
                    .map_err(|e| Error::io("cannot open model folder", root, e))?;
                Ok(Location::Local { root })
            }
            ModelSpec::File {
                path,
                config,
                reference,
            } => {
                // Recorded absolute, as a folder is.
                let path = std::fs::canonicalize(path)
                    .map_err(|e| Error::io("cannot open checkpoint", path, e))?;
                let config = match config {
                    Some(c) => Some(Box::new(Location::open(c)?)),
                    None => None,
                };
                Ok(Location::File {
                    path,
                    config,
                    reference: *reference,
                })
            }
        }
    }

    /// What the recipe records: the folder, or the repo at its resolved commit.
    pub(crate) fn source(&self) -> ModelSource {
        match self {
            Location::Local { root } => ModelSource::Local { path: root.clone() },
            Location::Hub(h) => ModelSource::Hub {
                repo: h.repo.clone(),
                revision: h.commit.clone(),
            },
            Location::File {
                path,
                config,
                reference,
            } => ModelSource::File {
                path: path.clone(),
                config: config.as_ref().map(|c| Box::new(c.source())),
                reference: reference.unwrap_or_default(),
            },
        }
    }

    /// e.g. `/models/tiny-sd` or `stabilityai/sd-turbo@abc123…`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Location::Local { root } => root.display().to_string(),
            Location::Hub(h) => format!("{}@{}", h.repo, h.commit),
            Location::File {
                path, config: None, ..
            } => path.display().to_string(),
            Location::File {
                path,
                config: Some(c),
                ..
            } => format!("{} (configs of {})", path.display(), c.describe()),
        }
    }

    pub fn notes(&self) -> &[String] {
        match self {
            Location::Local { .. } | Location::File { config: None, .. } => &[],
            Location::Hub(h) => &h.notes,
            Location::File {
                config: Some(c), ..
            } => c.notes(),
        }
    }

    /// Whether the model has the file `rel` (a single file: its `--config` has it).
    pub(crate) fn has(&self, rel: &str) -> bool {
        match self {
            Location::Local { root } => root.join(rel).is_file(),
            Location::Hub(h) => h.has(rel),
            Location::File { config, .. } => config.as_ref().is_some_and(|c| c.has(rel)),
        }
    }

    /// A local path for `rel`, downloading it if needed. A missing file is an error naming it.
    pub(crate) fn fetch(&self, rel: &str) -> Result<PathBuf> {
        match self {
            Location::Local { root } => {
                let path = root.join(rel);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(Error::Model(format!(
                        "model folder {} has no {rel}; is it a complete diffusers folder?",
                        root.display()
                    )))
                }
            }
            Location::Hub(h) => {
                if !h.has(rel) {
                    return Err(Error::Model(format!(
                        "{}@{} has no {rel}; is it a diffusers repo?",
                        h.repo, h.commit
                    )));
                }
                h.fetch(rel)
            }
            Location::File {
                config: Some(c), ..
            } => c.fetch(rel),
            Location::File {
                path, config: None, ..
            } => Err(Error::Model(format!(
                "the single file {} has no {rel}",
                path.display()
            ))),
        }
    }

    /// The sha256 of a fetched file: free for cached LFS files (the blob name); for local files
    /// computed once and kept in the hash cache.
    pub(crate) fn sha256(&self, path: &Path) -> Result<String> {
        match self {
            Location::Hub(_) => {
                if let Some(hash) = hub::blob_sha256(path) {
                    return Ok(hash);
                }
            }
            Location::File {
                config: Some(c), ..
            } => return c.sha256(path),
            _ => {}
        }
        sha256_file(path)
    }
}

/// The sha256 of a local weight file, through the hash cache (`file_hash::sha256_cached`):
/// read in full on first use only.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    super::file_hash::sha256_cached(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_presets_repos_and_folders() {
        assert!(matches!(
            ModelSpec::parse("sd-turbo").unwrap(),
            ModelSpec::Preset(_)
        ));
        assert_eq!(
            ModelSpec::parse("owner/name@v1").unwrap(),
            ModelSpec::Hub {
                repo: "owner/name".into(),
                revision: "v1".into()
            }
        );
        assert_eq!(
            ModelSpec::parse("owner/name").unwrap(),
            ModelSpec::Hub {
                repo: "owner/name".into(),
                revision: "main".into()
            }
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert_eq!(ModelSpec::parse(d).unwrap(), ModelSpec::Local(d.into()));
    }

    #[test]
    fn a_missing_folder_is_named_not_looked_up() {
        let err = ModelSpec::parse("./no/such/folder")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model folder ./no/such/folder does not exist"),
            "{err}"
        );
        let err = ModelSpec::parse("nonsense").unwrap_err().to_string();
        assert!(err.contains("presets: sd-turbo"), "{err}");
    }
}
