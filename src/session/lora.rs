//! The LoRAs a session applies: each file hashed (what the recipe records) and resolved against
//! the model when the session opens, before any weights load; their deltas are computed when
//! the networks are built.

use super::Found;
use crate::metadata::foreign::ForeignLora;
use crate::models::file_hash::{self, FileHashes};
use crate::models::folder::{matches_whole_name, Kind, ModelsLibrary};
use crate::models::lora::{self, LoraFile};
use crate::models::{safetensors_header, ModelInfo};
use crate::nets::lora::Deltas;
use crate::prompt_networks::LoraTag;
use crate::recipe::LoraRef;
use crate::{Error, ErrorKind, Message, Result, Setting};
use candle_core::Device;
use std::path::{Path, PathBuf};

/// A LoRA file to apply, with its strengths on the UNet and on the text encoder(s).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSpec {
    pub path: PathBuf,
    pub unet: f64,
    pub text_encoder: f64,
    /// The file's hashes when finding it computed them already (a replay checks a recorded
    /// LoRA by hash), so opening it does not read it again.
    pub(crate) hashes: Option<FileHashes>,
}

impl LoraSpec {
    /// `FILE`, `FILE:WEIGHT` (both networks) or `FILE:UNET:TE`; the weight defaults to 1. A
    /// trailing part that is not a number belongs to the file name. `FILE` may also be a name
    /// to find in the models folders ([`LoraSpec::find_in`]).
    pub fn parse(s: &str) -> Result<LoraSpec> {
        let num = |p: &str| p.parse::<f64>().ok().filter(|v| v.is_finite());
        let parts: Vec<&str> = s.rsplitn(3, ':').collect();
        let (path, unet, te) = match parts.as_slice() {
            [te, unet, path] if num(te).is_some() && num(unet).is_some() => {
                (path.to_string(), num(unet).unwrap(), num(te).unwrap())
            }
            [w, _, ..] if num(w).is_some() => {
                let w = num(w).unwrap();
                (s[..s.len() - parts[0].len() - 1].to_string(), w, w)
            }
            _ => (s.to_string(), 1.0, 1.0),
        };
        if path.is_empty() {
            return Err(Error::hint(
                ErrorKind::BadInput,
                Message::text(format!("'{s}' names no LoRA file; give ")).mention(Setting::Lora),
            ));
        }
        Ok(LoraSpec {
            path: PathBuf::from(path),
            unet,
            text_encoder: te,
            hashes: None,
        })
    }

    /// The LoRA a prompt's `<lora:NAME:TE:UNET>` tag asks for: `NAME` to find as
    /// [`LoraSpec::find_in`] does, at the tag's strengths.
    pub fn from_tag(tag: &LoraTag) -> LoraSpec {
        LoraSpec {
            path: PathBuf::from(&tag.name),
            unet: tag.unet,
            text_encoder: tag.text_encoder,
            hashes: None,
        }
    }

    /// This LoRA with its file found: the path as given when it is a file, else the one file
    /// of `library`'s LoRA folders with that name (A1111's stem, or `sub/name` below the
    /// folder, with or without extension, as A1111's `<lora:NAME>` names it). Several files of
    /// that name, or none, are an error listing them or naming the folders searched.
    pub fn find_in(self, library: &ModelsLibrary) -> Result<LoraSpec> {
        if self.path.is_file() {
            return Ok(self);
        }
        let name = self.path.to_string_lossy().into_owned();
        let mut found = library.by_name(Kind::Lora, &name);
        // A name below the folder (`sub/name`, or `name` for a file at the top) picks its file
        // among those that share the stem.
        if found.len() > 1 {
            let whole: Vec<_> = found
                .iter()
                .filter(|f| matches_whole_name(&f.name, &name))
                .cloned()
                .collect();
            if whole.len() == 1 {
                found = whole;
            }
        }
        match found.as_slice() {
            [one] => Ok(LoraSpec {
                path: one.path.clone(),
                ..self
            }),
            [] => Err(not_found(&name, library)),
            several => {
                let paths: Vec<String> = several
                    .iter()
                    .map(|f| f.path.display().to_string())
                    .collect();
                let names: Vec<&str> = several.iter().map(|f| f.name.as_str()).collect();
                let message = Message::text(format!(
                    "the LoRA name {name} matches {} files in the models folders: {}; give the \
                     one you mean by its path or by its name below its LoRA folder ({}) with ",
                    several.len(),
                    paths.join(", "),
                    names.join(" or ")
                ))
                .mention(Setting::Lora);
                Err(Error::hint(ErrorKind::BadInput, message))
            }
        }
    }

    /// The LoRA a recipe records, at its recorded strengths, found by content: the recorded
    /// path when that file has the recorded sha256; else the file of `library`'s LoRA folders
    /// with that sha256 (moved or renamed); else one with its name, whose weights then differ
    /// (a warning says so; the replay is not identical); else an error naming the file and its
    /// AutoV2 hash, before any work. Returns the LoRA and how it was found.
    pub fn recorded(r: &LoraRef, library: &ModelsLibrary) -> Result<(LoraSpec, Found)> {
        let at = |path: PathBuf, hashes: Option<FileHashes>| LoraSpec {
            path,
            unet: r.unet,
            text_encoder: r.text_encoder,
            hashes,
        };
        let path = PathBuf::from(&r.name);
        let here = match path.is_file() {
            true => Some(library.hashes(&path, data_offset(&path))?),
            false => None,
        };
        if let Some(h) = here.as_ref().filter(|h| h.sha256 == r.sha256) {
            return Ok((at(path, Some(h.clone())), Found::AtRecordedPath));
        }
        let why = match here {
            Some(_) => "is there, but holds other weights (its sha256 differs)",
            None => "is not there",
        };
        if let Some(f) = library.by_hash(Kind::Lora, &r.sha256)? {
            let note = format!(
                "the LoRA {} {why}; using {}, which has its sha256",
                r.name,
                f.path.display()
            );
            return Ok((
                at(f.path.clone(), Some(f.hashes.clone())),
                Found::ByHash(note),
            ));
        }
        let stem = Path::new(&r.name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| r.name.clone());
        if let [one] = library.by_name(Kind::Lora, &stem).as_slice() {
            let note = format!(
                "the LoRA {} (AutoV2 hash {}) {why}, and no file in the models folders has its \
                 sha256; using {}, found by name only: its weights differ, so the image will too",
                r.name,
                r.autov2(),
                one.path.display()
            );
            return Ok((at(one.path.clone(), None), Found::ByName(note)));
        }
        let searched = lora_folders(library)
            .map(|folders| format!(", nor is it in {folders}"))
            .unwrap_or_default();
        let message = Message::text(format!(
            "the image was made with the LoRA {} (AutoV2 hash {}, sha256 {}), which {why}{searched}; \
             find the file with that hash and give it with ",
            r.name,
            r.autov2(),
            r.sha256
        ))
        .mention(Setting::Lora)
        .then(", or the models folder that holds it with ")
        .mention(Setting::ModelsDir);
        Err(Error::hint(ErrorKind::Model, message))
    }
}

impl LoraSpec {
    /// The LoRA another tool's image applies (an A1111 `<lora:NAME:TE:UNET>` tag with its
    /// `Lora hashes` entry), at its strengths: the file of `library`'s LoRA folders with that
    /// hash (A1111's 12 hex digits of the addnet hash, or a prefix of the sha256); else the one
    /// with that name, with a warning that its weights may differ; else an error naming the
    /// LoRA and its hash, before any work.
    pub fn foreign(l: &ForeignLora, library: &ModelsLibrary) -> Result<(LoraSpec, Found)> {
        let at = |path: PathBuf, hashes: Option<FileHashes>| LoraSpec {
            path,
            unet: l.unet,
            text_encoder: l.text_encoder,
            hashes,
        };
        let hash = l.hash.as_deref().filter(|h| !h.is_empty());
        if let Some(h) = hash {
            if let Some(f) = library.by_hash(Kind::Lora, h)? {
                let note = format!(
                    "the image's LoRA {} (hash {h}) is {}",
                    l.name,
                    f.path.display()
                );
                return Ok((
                    at(f.path.clone(), Some(f.hashes.clone())),
                    Found::ByHash(note),
                ));
            }
        }
        let named = LoraSpec {
            path: PathBuf::from(&l.name),
            ..at(PathBuf::new(), None)
        };
        let by_name = match library.is_empty() {
            true => None,
            false => named.find_in(library).ok(),
        };
        if let Some(spec) = by_name {
            let why = match hash {
                Some(h) => format!("no file in the models folders has its hash {h}"),
                None => "the image gives no hash for it".to_string(),
            };
            let warning = format!(
                "the image's LoRA {}: {why}; using {}, found by name only: its weights may \
                 differ, and the image with them",
                l.name,
                spec.path.display()
            );
            return Ok((spec, Found::ByName(warning)));
        }
        let hash = hash
            .map(|h| format!(" (hash {})", crate::metadata::printable(h)))
            .unwrap_or_default();
        let where_ = match lora_folders(library) {
            None => "no models folder was given to look in".to_string(),
            Some(folders) => format!("it is not in {folders}"),
        };
        let message = Message::text(format!(
            "the image was made with the LoRA {}{hash}, and {where_}; find the file by that \
             name or hash (Civitai looks LoRAs up by hash) and give it with ",
            // From the file: shown without terminal controls.
            crate::metadata::printable(&l.name)
        ))
        .mention(Setting::Lora)
        .then(", or the models folder that holds it with ")
        .mention(Setting::ModelsDir);
        Err(Error::hint(ErrorKind::Model, message))
    }
}

/// A safetensors file's data offset (for its addnet hash); `None` for a file without a
/// readable header.
fn data_offset(path: &Path) -> Option<u64> {
    safetensors_header::read_header(path)
        .ok()
        .map(|h| h.data_offset)
}

/// The library's LoRA folders as messages list them; `None` when it has none.
fn lora_folders(library: &ModelsLibrary) -> Option<String> {
    let folders = library.folders(Kind::Lora);
    let listed: Vec<String> = folders.iter().map(|f| f.display().to_string()).collect();
    (!listed.is_empty()).then(|| listed.join(", "))
}

/// No file and no LoRA of that name: where it was looked for, and the fix.
fn not_found(name: &str, library: &ModelsLibrary) -> Error {
    let message = match lora_folders(library) {
        None => Message::text(format!(
            "no LoRA file {name}, and no models folder to find a LoRA of that name in; give the \
             file's path with "
        )),
        Some(folders) => Message::text(format!(
            "no LoRA file {name}, nor a LoRA called {name} in {folders}; give the file's path with "
        )),
    }
    .mention(Setting::Lora)
    .then(", or the models folder that holds it with ")
    .mention(Setting::ModelsDir);
    Error::hint(ErrorKind::BadInput, message)
}

/// A LoRA read, hashed and checked against the model.
pub(crate) struct Opened {
    pub file: LoraFile,
    pub reference: LoraRef,
}

/// Reads, hashes and resolves every LoRA of `specs` against `info`'s networks: a file that does
/// not fit the model is refused naming it. Returns the LoRAs and the targets they resolve in.
pub(crate) fn open(info: &ModelInfo, specs: &[LoraSpec]) -> Result<(Vec<Opened>, Targets)> {
    if specs.is_empty() {
        return Ok((Vec::new(), Targets::new()));
    }
    let targets = info.lora_targets()?;
    let mut opened = Vec::with_capacity(specs.len());
    for spec in specs {
        if !spec.path.is_file() {
            return Err(Error::hint(
                ErrorKind::BadInput,
                Message::text(format!("no LoRA file {}; check ", spec.path.display()))
                    .mention(Setting::Lora),
            ));
        }
        let header = safetensors_header::read_header(&spec.path)?;
        let file = lora::read_with_header(&spec.path, &header, &Device::Cpu)?;
        lora::resolve(&file, &targets)?;
        // Hashed once: by the replay that found it, or through the hash cache.
        let hashes = match spec.hashes.clone().filter(|h| h.addnet.is_some()) {
            Some(h) => h,
            None => file_hash::hashes_cached(
                &file_hash::default_cache_file(),
                &spec.path,
                Some(header.data_offset),
            )?,
        };
        // A1111 takes the hash the file's own metadata gives, else the addnet hash
        // (extensions-builtin/Lora/network.py `NetworkOnDisk`).
        let a1111_hash = header
            .metadata
            .get("sshs_model_hash")
            .map(String::as_str)
            .filter(|h| !h.is_empty())
            .or(hashes.a1111_lora())
            .map(|h| h.chars().take(12).collect());
        opened.push(Opened {
            file,
            reference: LoraRef {
                // Absolute, so a replay from another working folder finds it.
                name: std::fs::canonicalize(&spec.path)
                    .unwrap_or_else(|_| spec.path.clone())
                    .display()
                    .to_string(),
                sha256: hashes.sha256,
                unet: spec.unet,
                text_encoder: spec.text_encoder,
                a1111_hash,
            },
        });
    }
    Ok((opened, targets))
}

pub(crate) use crate::models::lora::Targets;

/// The summed deltas of `opened` at their strengths.
pub(crate) fn deltas(opened: &[Opened], targets: &Targets) -> Result<Deltas> {
    let mut resolved = Vec::with_capacity(opened.len());
    for o in opened {
        resolved.push((
            lora::resolve(&o.file, targets)?,
            o.reference.unet,
            o.reference.text_encoder,
        ));
    }
    crate::nets::lora::deltas(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_file_weight_and_split_weights() {
        let p = |s| LoraSpec::parse(s).unwrap();
        assert_eq!(
            p("a.safetensors"),
            LoraSpec {
                path: "a.safetensors".into(),
                unet: 1.0,
                text_encoder: 1.0,
                hashes: None,
            }
        );
        assert_eq!(p("d/a.safetensors:0.8").unet, 0.8);
        assert_eq!(p("d/a.safetensors:0.8").text_encoder, 0.8);
        let s = p("a.safetensors:0.5:-1");
        assert_eq!((s.unet, s.text_encoder), (0.5, -1.0));
        assert_eq!(s.path, PathBuf::from("a.safetensors"));
        assert_eq!(p("c:x.safetensors").path, PathBuf::from("c:x.safetensors"));
        assert!(LoraSpec::parse(":0.5").is_err());
    }
}
