//! The models folders a session uses: where `--lora NAME`, a prompt's `<lora:NAME:…>`, an
//! image's recorded LoRA or checkpoint hash are looked for.
//!
//! Opening one only finds the folders' layouts. Listing and finding by name walk the folders
//! and read nothing; finding by hash indexes the files of that kind once (through the
//! [`HashCache`], so a file hashed before is not read again; an embedding lookup never reads
//! the checkpoints) and saves the cache.

use super::layout::{self, Found, Kind, ModelsDir};
use super::{dirs_from_env, find_by_hash, index_files, matches_name, ModelFile};
use crate::models::file_hash::{default_cache_file, FileHashes, HashCache};
use crate::Result;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Told of each file about to be read in full (path, bytes): a 7 GB checkpoint takes a while.
pub type OnHash = Box<dyn Fn(&Path, u64) + Send + Sync>;

/// Models folders and the hash cache their files are hashed through.
pub struct ModelsLibrary {
    dirs: Vec<ModelsDir>,
    cache: Mutex<HashCache>,
    /// Each kind's files with their hashes, built on the first lookup of that kind by hash.
    indexes: Mutex<HashMap<Kind, Arc<Vec<ModelFile>>>>,
    on_hash: OnHash,
}

impl std::fmt::Debug for ModelsLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelsLibrary")
            .field("dirs", &self.dirs)
            .finish_non_exhaustive()
    }
}

impl ModelsLibrary {
    /// The folders `roots` (each in A1111's or ComfyUI's layout, as [`ModelsIndex::scan`]
    /// finds them; a folder in neither is an error naming the fix), hashing through the cache
    /// at `cache_file`. No roots: an empty library, in which nothing is found.
    pub fn open(roots: &[PathBuf], cache_file: PathBuf) -> Result<Self> {
        let dirs = roots
            .iter()
            .map(|r| layout::detect(r))
            .collect::<Result<Vec<_>>>()?;
        Ok(ModelsLibrary {
            dirs,
            cache: Mutex::new(HashCache::open(&cache_file)),
            indexes: Mutex::default(),
            on_hash: Box::new(|_, _| {}),
        })
    }

    /// This library, calling `on_hash` before it reads a file in full to hash it.
    pub fn on_hash(mut self, on_hash: OnHash) -> Self {
        self.on_hash = on_hash;
        self
    }

    /// The library of `roots` when given, else of the folders `SEEDLING_MODELS_DIR` lists (a
    /// front end's explicit list replaces the environment's, as a flag overrides an
    /// environment variable), hashing through [`default_cache_file`] (`SEEDLING_HASH_CACHE`).
    pub fn from_env_or(roots: &[PathBuf]) -> Result<Self> {
        let roots = match roots.is_empty() {
            true => dirs_from_env(),
            false => roots.to_vec(),
        };
        Self::open(&roots, default_cache_file())
    }

    /// The folders of `SEEDLING_MODELS_DIR`, hashing through the default cache file.
    pub fn from_env() -> Result<Self> {
        Self::from_env_or(&[])
    }

    /// An empty library (nothing is found in it), with the default cache file for
    /// [`ModelsLibrary::hashes`].
    pub fn empty() -> Self {
        ModelsLibrary {
            dirs: Vec::new(),
            cache: Mutex::new(HashCache::open(&default_cache_file())),
            indexes: Mutex::default(),
            on_hash: Box::new(|_, _| {}),
        }
    }

    /// The folders as found (root, layout, each kind's folder).
    pub fn dirs(&self) -> &[ModelsDir] {
        &self.dirs
    }

    /// Whether no models folder was given.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    /// The folders `kind` is looked for in, in order (for a message saying where a file was not
    /// found).
    pub fn folders(&self, kind: Kind) -> Vec<&Path> {
        self.dirs
            .iter()
            .flat_map(|d| d.folders.iter())
            .filter(|(k, _)| *k == kind)
            .map(|(_, p)| p.as_path())
            .collect()
    }

    /// The files of `kind`, folder by folder, each folder's by name: a walk, nothing is read.
    pub fn list(&self, kind: Kind) -> Vec<Found> {
        self.folders(kind)
            .into_iter()
            .flat_map(layout::files)
            .collect()
    }

    /// The files of `kind` called `name`, as [`ModelsIndex::find_by_name`] matches them (stem
    /// or `sub/name`, with or without extension, ignoring case), without hashing anything. A
    /// name says nothing about the contents: a caller using a match must say so.
    pub fn by_name(&self, kind: Kind, name: &str) -> Vec<Found> {
        self.list(kind)
            .into_iter()
            .filter(|f| matches_name(&f.name, name))
            .collect()
    }

    /// The file of `kind` a recorded hash names, as [`super::ModelsIndex::find_by_hash`]
    /// matches it (AutoV1, or a prefix of the sha256 or addnet hash). The first lookup of a
    /// kind hashes its files not in the cache yet and saves the cache.
    pub fn by_hash(&self, kind: Kind, hash: &str) -> Result<Option<ModelFile>> {
        Ok(find_by_hash(&self.index(kind)?, kind, hash).cloned())
    }

    /// The files of `kind` with their hashes, indexed once.
    fn index(&self, kind: Kind) -> Result<Arc<Vec<ModelFile>>> {
        let mut indexes = self.indexes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(files) = indexes.get(&kind) {
            return Ok(files.clone());
        }
        let mut cache = self.lock();
        let mut on_hash = |path: &Path, bytes: u64| (self.on_hash)(path, bytes);
        let files = Arc::new(index_files(
            &self.dirs,
            |k| k == kind,
            &mut cache,
            &mut on_hash,
        )?);
        save(&mut cache);
        indexes.insert(kind, files.clone());
        Ok(files)
    }

    /// The hashes of the file at `path` (any file, inside the folders or not) through the
    /// library's cache, which is saved when they were computed now.
    pub fn hashes(&self, path: &Path, data_offset: Option<u64>) -> Result<FileHashes> {
        let mut cache = self.lock();
        let before = cache.hashed;
        let hashes = cache.hashes(path, data_offset)?;
        if cache.hashed != before {
            save(&mut cache);
        }
        Ok(hashes)
    }

    /// Files hashed (not answered from the cache) since the library was opened.
    pub fn hashed(&self) -> usize {
        self.lock().hashed
    }

    /// What the user should know about the cache (one that could not be read is started
    /// afresh).
    pub fn notes(&self) -> Vec<String> {
        self.lock().notes.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashCache> {
        // A panic elsewhere while holding it leaves the cache usable: entries are whole.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Saves the cache; one that cannot be written only costs time (the files are hashed again
/// next run), so a run goes on, with a note.
fn save(cache: &mut HashCache) {
    if let Err(e) = cache.save() {
        let note =
            format!("the hashes could not be cached ({e}); they are computed again next time");
        cache.notes.push(note);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wild(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/wild")
            .join(rel)
    }

    /// An A1111 install folder with the kohya LoRA under two names and the SD1 checkpoint.
    fn a1111(root: &Path) {
        let put = |rel: &str, dest: &str| {
            let dest = root.join(dest);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(wild(rel), dest).unwrap();
        };
        put(
            "loras/tiny-sd1-lora.safetensors",
            "models/Lora/style.safetensors",
        );
        put(
            "loras/tiny-sd1-lora.safetensors",
            "models/Lora/people/Style.safetensors",
        );
        put(
            "checkpoints/tiny-sd1.safetensors",
            "models/Stable-diffusion/tiny-sd1.safetensors",
        );
    }

    #[test]
    fn lists_and_finds_by_name_without_hashing() {
        let tmp = tempfile::tempdir().unwrap();
        a1111(tmp.path());
        let cache_file = tmp.path().join("hashes.json");
        let lib = ModelsLibrary::open(&[tmp.path().to_path_buf()], cache_file.clone()).unwrap();
        let names: Vec<String> = lib.list(Kind::Lora).into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["people/Style", "style"]);
        assert_eq!(lib.by_name(Kind::Lora, "STYLE").len(), 2);
        let sub = lib.by_name(Kind::Lora, "people/style.safetensors");
        assert_eq!(sub.len(), 1);
        assert_eq!(
            sub[0].path,
            tmp.path().join("models/Lora/people/Style.safetensors")
        );
        assert!(lib.by_name(Kind::Checkpoint, "style").is_empty());
        assert!(lib.list(Kind::Embedding).is_empty());
        assert_eq!(lib.hashed(), 0);
        assert!(!cache_file.exists());
    }

    #[test]
    fn finds_by_hash_once_through_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        a1111(tmp.path());
        let cache_file = tmp.path().join("hashes.json");
        let roots = [tmp.path().to_path_buf()];
        let lib = ModelsLibrary::open(&roots, cache_file.clone()).unwrap();
        // AutoV2 of the LoRA, and A1111's 12-digit addnet hash of it.
        let found = lib.by_hash(Kind::Lora, "a0d2d2e011").unwrap().unwrap();
        assert_eq!(found.kind, Kind::Lora);
        let addnet = found.hashes.a1111_lora().unwrap().to_string();
        assert_eq!(
            lib.by_hash(Kind::Lora, &addnet).unwrap().unwrap().path,
            found.path
        );
        // Only the LoRAs were read: a lookup of one kind never hashes another's files.
        assert_eq!(lib.hashed(), 2);
        assert_eq!(lib.by_hash(Kind::Checkpoint, "a0d2d2e011").unwrap(), None);
        assert_eq!(lib.hashed(), 3, "each file once");
        assert!(cache_file.is_file());
        // A second library answers from the saved cache.
        let again = ModelsLibrary::open(&roots, cache_file).unwrap();
        let h = again.hashes(&found.path, None).unwrap();
        assert_eq!(h.sha256, found.hashes.sha256);
        assert!(again
            .by_hash(Kind::Checkpoint, "79e01fec06")
            .unwrap()
            .is_some());
        assert_eq!(again.hashed(), 0);
    }

    #[test]
    fn no_roots_is_an_empty_library_and_a_bad_root_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = ModelsLibrary::open(&[], tmp.path().join("h.json")).unwrap();
        assert!(lib.is_empty());
        assert!(lib.list(Kind::Lora).is_empty());
        assert_eq!(lib.by_hash(Kind::Lora, "a0d2d2e011").unwrap(), None);
        let e = ModelsLibrary::open(&[tmp.path().join("nope")], tmp.path().join("h.json"))
            .unwrap_err()
            .render(crate::message::as_flags);
        assert!(
            e.ends_with("pass an existing folder as --models-dir"),
            "{e}"
        );
    }
}
