//! Models folders as AUTOMATIC1111 and ComfyUI keep them: an index of their checkpoints, LoRAs,
//! embeddings and VAEs with the hashes A1111 shows (AutoV2, AutoV1, its LoRA hash), the family
//! and dtype from each safetensors header, and lookups by hash (what a foreign image records)
//! or, as a fallback the caller must flag, by name.
//!
//! Hashing reads each file once: [`ModelsIndex::scan`] takes a [`HashCache`] that remembers
//! hashes by (path, size, mtime). Nothing here loads weights.

pub mod describe;
pub mod layout;
pub mod library;

pub use describe::{Description, EmbeddingInfo, LoraInfo};
pub use layout::{Kind, Layout, ModelsDir};
pub use library::ModelsLibrary;

use super::file_hash::{FileHashes, HashCache};
use super::safetensors_header;
use crate::Result;
use serde::{Serialize, Serializer};
use std::path::{Path, PathBuf};

/// The environment variable listing models folders, separated as `PATH` is (`:`; `;` on
/// Windows).
pub const MODELS_DIR_ENV: &str = "SEEDLING_MODELS_DIR";

/// The folders `SEEDLING_MODELS_DIR` lists (none when unset or empty).
pub fn dirs_from_env() -> Vec<PathBuf> {
    std::env::var_os(MODELS_DIR_ENV)
        .map(|v| parse_dirs(&v))
        .unwrap_or_default()
}

/// The folders of a `PATH`-style list; empty entries (`a::b`, a trailing `:`) are skipped.
pub fn parse_dirs(list: &std::ffi::OsStr) -> Vec<PathBuf> {
    std::env::split_paths(list)
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// One file of a models folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFile {
    pub kind: Kind,
    /// The path below its kind's folder without the extension, `/`-separated (`sub/model`).
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// "safetensors" or "pickle".
    pub format: &'static str,
    #[serde(serialize_with = "hashes_json")]
    pub hashes: FileHashes,
    #[serde(flatten)]
    pub description: Description,
    /// Why the file is listed but cannot be used: a pickle, or a safetensors header that
    /// cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The note on a pickle file: listed and hashed (so an image naming it is recognised), never
/// loaded, since unpickling runs code from the file.
pub const PICKLE_NOTE: &str = "pickle: not loaded";

impl ModelFile {
    /// The file's stem, the name A1111's prompts and infotexts use (`<lora:stem:0.8>`,
    /// `Model: stem`).
    pub fn stem(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }
}

/// The hashes as the listing's JSON shows them: AutoV2 spelled out beside the sha256; `addnet`
/// (safetensors files) in full, A1111's LoRA hash being its first 12 digits.
fn hashes_json<S: Serializer>(h: &FileHashes, s: S) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Json<'a> {
        sha256: &'a str,
        autov2: &'a str,
        autov1: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        addnet: Option<&'a str>,
    }
    Json {
        sha256: &h.sha256,
        autov2: h.autov2(),
        autov1: &h.autov1,
        addnet: h.addnet.as_deref(),
    }
    .serialize(s)
}

/// The files of some models folders, in the order the folders were given, then by kind, then
/// by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelsIndex {
    pub dirs: Vec<ModelsDir>,
    pub files: Vec<ModelFile>,
}

impl ModelsIndex {
    /// Finds the layout of each folder in `roots` and indexes its files, hashing through
    /// `cache` (the caller saves it). `on_hash` is told of each file about to be read in full
    /// (path, bytes), for progress on big files.
    pub fn scan(
        roots: &[PathBuf],
        cache: &mut HashCache,
        on_hash: &mut dyn FnMut(&Path, u64),
    ) -> Result<ModelsIndex> {
        let dirs = roots
            .iter()
            .map(|r| layout::detect(r))
            .collect::<Result<Vec<_>>>()?;
        let files = index_files(&dirs, |_| true, cache, on_hash)?;
        Ok(ModelsIndex { dirs, files })
    }

    /// The first file of `kind` a recorded hash names: A1111's 8-digit AutoV1 (legacy
    /// checkpoints' "Model hash"), or a prefix of at least 8 hex digits of the sha256
    /// (AutoV2, Civitai's and InvokeAI's full hashes) or of the addnet hash (A1111's
    /// "Lora hashes"). Case is ignored; anything that is not hex matches nothing.
    pub fn find_by_hash(&self, kind: Kind, hash: &str) -> Option<&ModelFile> {
        find_by_hash(&self.files, kind, hash)
    }

    /// The files of `kind` called `name`, ignoring case: by stem (`model`), by name below the
    /// kind's folder (`sub/model`), either with or without the file's extension. Several files
    /// may share a name (in two folders or subfolders); a name match says nothing about the
    /// contents, so a caller using one must say so.
    pub fn find_by_name(&self, kind: Kind, name: &str) -> Vec<&ModelFile> {
        self.files
            .iter()
            .filter(|f| f.kind == kind && matches_name(&f.name, name))
            .collect()
    }

    /// The files of one kind.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &ModelFile> {
        self.files.iter().filter(move |f| f.kind == kind)
    }
}

/// Whether the file called `file_name` (its path below its kind's folder without extension,
/// `sub/model`) is the one `wanted` names: by that name or by its stem, either with or without
/// a model file extension, ignoring case and `\` for `/`.
pub(crate) fn matches_name(file_name: &str, wanted: &str) -> bool {
    let wanted = comparable(wanted);
    let file_name = file_name.to_lowercase();
    let stem = file_name.rsplit('/').next().unwrap_or(&file_name);
    file_name == wanted || stem == wanted
}

/// Whether `wanted` names the file by its whole name below its kind's folder (`sub/model`),
/// which picks one of several files that share a stem.
pub(crate) fn matches_whole_name(file_name: &str, wanted: &str) -> bool {
    file_name.to_lowercase() == comparable(wanted)
}

/// A name as names are compared: trimmed, `\` as `/`, without a model file extension, lowercase.
fn comparable(name: &str) -> String {
    strip_model_extension(name.trim().replace('\\', "/")).to_lowercase()
}

/// [`ModelsIndex::find_by_hash`] over `files`.
pub(crate) fn find_by_hash<'a>(
    files: &'a [ModelFile],
    kind: Kind,
    hash: &str,
) -> Option<&'a ModelFile> {
    let h = hash.trim().to_ascii_lowercase();
    if h.len() < 8 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let of_kind = || files.iter().filter(move |f| f.kind == kind);
    let legacy = (h.len() == 8).then(|| of_kind().find(|f| f.hashes.autov1 == h));
    legacy.flatten().or_else(|| {
        of_kind().find(|f| {
            f.hashes.sha256.starts_with(&h)
                || f.hashes.addnet.as_ref().is_some_and(|a| a.starts_with(&h))
        })
    })
}

/// The files of `dirs`' folders of the kinds `wanted` takes, each described and hashed (through
/// `cache`), folder by folder.
pub(crate) fn index_files(
    dirs: &[ModelsDir],
    wanted: impl Fn(Kind) -> bool,
    cache: &mut HashCache,
    on_hash: &mut dyn FnMut(&Path, u64),
) -> Result<Vec<ModelFile>> {
    let mut files = Vec::new();
    for (kind, dir) in dirs.iter().flat_map(|d| d.folders.iter()) {
        if !wanted(*kind) {
            continue;
        }
        for found in layout::files(dir) {
            files.push(index_file(*kind, found, cache, on_hash)?);
        }
    }
    Ok(files)
}

/// `name` without a model file extension (`x.safetensors` → `x`).
fn strip_model_extension(name: String) -> String {
    let lower = name.to_ascii_lowercase();
    [".safetensors", ".ckpt", ".pt", ".pth", ".bin"]
        .iter()
        .find(|ext| lower.ends_with(*ext))
        .map(|ext| name[..name.len() - ext.len()].to_string())
        .unwrap_or(name)
}

/// One file's entry: header (safetensors), then hashes (from the cache when it is current).
fn index_file(
    kind: Kind,
    found: layout::Found,
    cache: &mut HashCache,
    on_hash: &mut dyn FnMut(&Path, u64),
) -> Result<ModelFile> {
    let path = found.path;
    let bytes = std::fs::metadata(&path)
        .map_err(|e| crate::Error::io("cannot read", &path, e))?
        .len();
    let (header, note) = match found.safetensors {
        false => (None, Some(PICKLE_NOTE.to_string())),
        true => match read_header_quietly(&path) {
            Ok(h) => (Some(h), None),
            Err(why) => (
                None,
                Some(format!("not a readable safetensors file: {why}")),
            ),
        },
    };
    let data_offset = header.as_ref().map(|h| h.data_offset);
    if !cache.is_current(&path, data_offset) {
        on_hash(&path, bytes);
    }
    let hashes = cache.hashes(&path, data_offset)?;
    let description = header
        .map(|h| describe::describe(kind, &h))
        .unwrap_or_default();
    Ok(ModelFile {
        kind,
        name: found.name,
        path,
        bytes,
        format: if found.safetensors {
            "safetensors"
        } else {
            "pickle"
        },
        hashes,
        description,
        note,
    })
}

/// The header, or why it cannot be read (without the path, which the listing shows anyway).
fn read_header_quietly(path: &Path) -> std::result::Result<safetensors_header::Header, String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    safetensors_header::parse(&mut file, len)
}

#[cfg(test)]
mod tests;
