//! The textual-inversion embeddings a session's prompts may name. A word of a prompt that
//! names one (or ComfyUI's `embedding:name`) stands for its vectors, as in A1111 and diffusers;
//! which words a recipe used is decided when it renders, from its prompts, and recorded with
//! each file's sha256. Files are read, checked against the model and hashed on first use only,
//! so a folder of hundreds costs nothing until a prompt names one.

use super::Found;
use crate::metadata::foreign::ForeignEmbedding;
use crate::metadata::printable;
use crate::models::embedding::{self, Embedding};
use crate::models::folder::{Kind, ModelsLibrary};
use crate::models::ModelInfo;
use crate::recipe::{EmbeddingRef, Recipe};
use crate::text::Patterns;
use crate::{Error, ErrorKind, Message, Result, Setting};
use candle_core::Device;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// An embedding a prompt may name: the word, the file, and (replaying a recipe) the sha256 the
/// file must have.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingSpec {
    pub name: String,
    pub path: PathBuf,
    pub sha256: Option<String>,
}

impl EmbeddingSpec {
    /// An embedding file called by its stem, as A1111 and ComfyUI call the files of their
    /// embeddings folders; an error when there is no such file.
    pub fn file(path: PathBuf) -> Result<EmbeddingSpec> {
        if !path.is_file() {
            let message = Message::text(format!("no embedding file {}; check ", path.display()))
                .mention(Setting::Embedding);
            return Err(Error::hint(ErrorKind::BadInput, message));
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(EmbeddingSpec {
            name,
            path,
            sha256: None,
        })
    }

    /// The embedding a recipe records, read from `path` (found for it by hash or name), which
    /// must hold the recorded content.
    pub fn recorded_at(r: &EmbeddingRef, path: PathBuf) -> EmbeddingSpec {
        EmbeddingSpec {
            name: r.name.clone(),
            path,
            sha256: Some(r.sha256.clone()),
        }
    }
}

/// The embeddings of the library's embeddings folders, each called by its file's stem (as
/// A1111 and ComfyUI call them; the first of two with one stem wins, folder order then name).
pub fn in_library(library: &ModelsLibrary) -> Vec<EmbeddingSpec> {
    library
        .list(Kind::Embedding)
        .into_iter()
        .map(|f| {
            let name = f.name.rsplit('/').next().unwrap_or(&f.name).to_string();
            EmbeddingSpec {
                name,
                path: f.path,
                sha256: None,
            }
        })
        .collect()
}

/// The embedding a recipe records: at its recorded path when that file holds the recorded
/// content; else the file of the library's embeddings folders that does (found by hash,
/// whatever its name: a note says where); else the one there with its name, whose vectors
/// then differ (a warning says so; the replay is not identical); else an error naming it and
/// its hash, before any work. Returns the embedding and how it was found.
pub fn find_recorded(r: &EmbeddingRef, library: &ModelsLibrary) -> Result<(EmbeddingSpec, Found)> {
    let there = r.path.is_file();
    if there && sha256_file(&r.path)? == r.sha256 {
        return Ok((
            EmbeddingSpec::recorded_at(r, r.path.clone()),
            Found::AtRecordedPath,
        ));
    }
    let why = match there {
        true => "is there but holds other vectors (its sha256 differs)",
        false => "is not there",
    };
    if let Some(f) = library.by_hash(Kind::Embedding, &r.sha256)? {
        if f.hashes.sha256 == r.sha256 {
            let note = format!(
                "the embedding {} ({}) {why}; using {}, which has its sha256",
                r.name,
                r.path.display(),
                f.path.display()
            );
            return Ok((EmbeddingSpec::recorded_at(r, f.path), Found::ByHash(note)));
        }
    }
    let by_name = in_library(library)
        .into_iter()
        .find(|s| s.name.eq_ignore_ascii_case(&r.name));
    if let Some(spec) = by_name {
        let warning = format!(
            "the embedding {} ({}, sha256 {}) {why}, and no file in the models \
             folders has its sha256; using {}, found by name only: its vectors differ, so the \
             image will too",
            r.name,
            r.path.display(),
            r.sha256,
            spec.path.display()
        );
        return Ok((spec, Found::ByName(warning)));
    }
    Err(missing(r, why))
}

/// The embedding another tool's image used (A1111's `TI hashes` entry: the word and 12 hex
/// digits of the file's sha256): the file of the library's embeddings with that hash, called
/// by the image's word; else the file named so, with a warning that its vectors may differ;
/// else an error naming the embedding and its hash, before any work. Returns the spec and how
/// it was found.
pub fn find_foreign(
    e: &ForeignEmbedding,
    library: &ModelsLibrary,
) -> Result<(EmbeddingSpec, Found)> {
    // From the file: shown without terminal controls.
    let (name, hash) = (printable(&e.name), printable(&e.hash));
    if let Some(f) = library.by_hash(Kind::Embedding, &e.hash)? {
        let note = format!(
            "the image's embedding {name} (hash {hash}) is {}",
            f.path.display()
        );
        let spec = EmbeddingSpec {
            name: e.name.clone(),
            path: f.path,
            sha256: Some(f.hashes.sha256),
        };
        return Ok((spec, Found::ByHash(note)));
    }
    if let Some(f) = in_library(library)
        .into_iter()
        .find(|s| s.name.eq_ignore_ascii_case(&e.name))
    {
        let warning = format!(
            "the image's embedding {name}: no file in the models folders has its hash \
             {hash}; using {}, found by name only: its vectors may differ, and the image with \
             them",
            f.path.display()
        );
        return Ok((f, Found::ByName(warning)));
    }
    let message = Message::text(format!(
        "the image was made with the embedding {name} (hash {hash}), which is not in the models \
         folders' embeddings; find the file by that name or hash (Civitai looks embeddings up \
         by hash) and put it in an embeddings folder or give it with "
    ))
    .mention(Setting::Embedding);
    Err(Error::hint(ErrorKind::Model, message))
}

/// The file's sha256, streamed (a file in the wrong folder may be a 7 GB checkpoint).
fn sha256_file(path: &std::path::Path) -> Result<String> {
    Ok(crate::models::file_hash::hash_file(path, None)?.sha256)
}

/// The error for a recorded embedding that is not here: its name, where it was, and the
/// hashes to look it up by (A1111's "TI hashes" and Civitai show the first 10–12 digits).
fn missing(r: &EmbeddingRef, why: &str) -> Error {
    let message = Message::text(format!(
        "the image was made with the embedding {} ({}, sha256 {}), which {why}, and no file of \
         the models folders' embeddings has that hash; find the file and give it with ",
        r.name,
        r.path.display(),
        r.sha256
    ))
    .mention(Setting::Embedding);
    Error::hint(ErrorKind::Model, message)
}

/// An embedding read, checked against the model, hashed.
pub(crate) struct Opened {
    pub embedding: Arc<Embedding>,
    pub reference: EmbeddingRef,
}

/// The embeddings a session knows, opened as prompts name them.
#[derive(Default)]
pub(crate) struct Embeddings {
    specs: Vec<EmbeddingSpec>,
    /// The token ids that call each, made once (a folder may hold hundreds).
    patterns: OnceLock<Patterns>,
    opened: Mutex<HashMap<usize, Arc<Opened>>>,
}

impl Embeddings {
    /// The embeddings of `specs`; of two with one name (two folders, or a subfolder) the first
    /// is the one prompts name.
    pub fn new(specs: Vec<EmbeddingSpec>) -> Embeddings {
        let mut unique: Vec<EmbeddingSpec> = Vec::with_capacity(specs.len());
        for spec in specs {
            if !unique
                .iter()
                .any(|u| u.name.eq_ignore_ascii_case(&spec.name))
            {
                unique.push(spec);
            }
        }
        Embeddings {
            specs: unique,
            patterns: OnceLock::new(),
            opened: Mutex::default(),
        }
    }

    /// The embeddings `recipe`'s prompts name (its negative prompt only where guidance uses
    /// it), each once, in the order they first appear; each opened and checked against `info`.
    pub fn used(&self, info: &ModelInfo, recipe: &Recipe) -> Result<Vec<Arc<Opened>>> {
        if self.specs.is_empty() {
            return Ok(Vec::new());
        }
        let tokenizer = info.tokenizer()?;
        let patterns = match self.patterns.get() {
            Some(p) => p,
            None => {
                let names = self.specs.iter().map(|s| s.name.as_str());
                let made = tokenizer.patterns(names)?;
                self.patterns.get_or_init(|| made)
            }
        };
        let mut used = tokenizer.words_in(&recipe.prompt, patterns)?;
        if recipe.cfg > 1.0 {
            for i in tokenizer.words_in(&recipe.negative_prompt, patterns)? {
                if !used.contains(&i) {
                    used.push(i);
                }
            }
        }
        used.into_iter().map(|i| self.open(i, info)).collect()
    }

    fn open(&self, index: usize, info: &ModelInfo) -> Result<Arc<Opened>> {
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = opened.get(&index) {
            return Ok(o.clone());
        }
        let spec = &self.specs[index];
        let sha256 = sha256_file(&spec.path)?;
        if let Some(wanted) = spec.sha256.as_ref().filter(|w| **w != sha256) {
            let message = Message::text(format!(
                "the embedding {} ({}) holds other vectors than the image was made with (sha256 \
                 {wanted} recorded, {sha256} here); find the file whose sha256 is {wanted}",
                spec.name,
                spec.path.display()
            ));
            return Err(Error::hint(ErrorKind::Model, message));
        }
        let mut embedding = embedding::read(&spec.path, &Device::Cpu)?;
        embedding.name = spec.name.clone();
        fits(&embedding, info)?;
        let o = Arc::new(Opened {
            embedding: Arc::new(embedding),
            reference: EmbeddingRef {
                name: spec.name.clone(),
                path: std::path::absolute(&spec.path).unwrap_or_else(|_| spec.path.clone()),
                sha256,
            },
        });
        opened.insert(index, o.clone());
        Ok(o)
    }
}

/// Refuses an embedding made for another model: its vectors' width must be the text
/// encoder's, and an SDXL model needs a second set (`clip_g`) that only SDXL embeddings have.
fn fits(e: &Embedding, info: &ModelInfo) -> Result<()> {
    let width = |t: &candle_core::Tensor| t.dims()[1];
    let wrong = |why: String| {
        Error::hint(
            ErrorKind::BadInput,
            Message::text(format!(
                "the embedding {} ({}) {why}: it was made for another model family; leave the \
                 word out of the prompt, or move the file out of the embeddings folder",
                e.name,
                e.path.display()
            )),
        )
    };
    let second = info.second.as_ref().map(|(c, _)| c.hidden_size);
    if width(&e.first) != info.text.hidden_size {
        return Err(wrong(format!(
            "has vectors of width {}, but this model's text encoder takes {}",
            width(&e.first),
            info.text.hidden_size
        )));
    }
    match (second, &e.second) {
        (Some(_), None) => Err(wrong(
            "has vectors for one text encoder, but this SDXL model has two (an SDXL embedding \
             has clip_l and clip_g)"
                .into(),
        )),
        (None, Some(_)) => Err(wrong(
            "is an SDXL embedding (clip_l and clip_g), but this model has one text encoder".into(),
        )),
        (Some(w), Some(g)) if width(g) != w => Err(wrong(format!(
            "has clip_g vectors of width {}, but this model's second text encoder takes {w}",
            width(g)
        ))),
        _ => Ok(()),
    }
}
