//! The hashes AUTOMATIC1111 shows for model files, and a cache of them so that a big file is
//! read once, not on every listing.
//!
//! * sha256 of the whole file; its first 10 hex digits are A1111's short hash, "AutoV2" on
//!   Civitai (A1111 `modules/hashes.py` `calculate_sha256`, shortened in `sd_models.py`
//!   `CheckpointInfo.calculate_shorthash`), what "Model hash" says since A1111 1.x.
//! * AutoV1: A1111's legacy `model_hash` (`modules/sd_models.py`): sha256 of the 0x10000 bytes
//!   read after `seek(0x100000)`, first 8 hex digits. A file shorter than 1 MiB hashes whatever
//!   the read returns (possibly nothing).
//! * For safetensors files, the "addnet" hash: sha256 of the bytes after the header
//!   (`modules/hashes.py` `addnet_hash_safetensors`, from kohya sd-scripts). A1111's LoRA
//!   loader (`extensions-builtin/Lora/network.py`) hashes safetensors LoRAs this way and writes
//!   its first 12 hex digits in "Lora hashes" (unless the file's `sshs_model_hash` metadata
//!   gives one).
//!
//! All three come from one streaming read of the file (a 1 MiB buffer, never the whole file).
//!
//! The cache is a JSON file (`default_cache_file`) keyed by canonical path; an entry holds when
//! the file's size and modification time are unchanged, as A1111's own `cache.json` trusts
//! mtime. A corrupt cache is ignored with a note and rewritten; writes are atomic.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A1111's legacy hash window: 0x10000 bytes from offset 0x100000.
const AUTOV1_START: u64 = 0x10_0000;
const AUTOV1_LEN: u64 = 0x1_0000;

/// The environment variable naming the cache file (tests point it into a temp folder).
pub const CACHE_ENV: &str = "SEEDLING_HASH_CACHE";

/// A cache file larger than this is not read (a listing must not stall on a runaway file);
/// 10 000 entries take about 3 MB.
const MAX_CACHE_BYTES: u64 = 64 << 20;

/// Entries kept; past this, those of files no longer there go first, then the oldest.
const MAX_ENTRIES: usize = 10_000;

/// Bumped when an entry's meaning changes; a cache of another version is started afresh.
const CACHE_VERSION: u32 = 1;

/// A file's hashes, hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHashes {
    pub sha256: String,
    /// A1111's legacy `model_hash` (8 hex digits).
    pub autov1: String,
    /// sha256 of a safetensors file's data after its header; `None` for other files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addnet: Option<String>,
}

impl FileHashes {
    /// A1111's short hash (AutoV2): the first 10 hex digits of the sha256.
    pub fn autov2(&self) -> &str {
        &self.sha256[..10]
    }

    /// The hash A1111 writes for a safetensors LoRA in "Lora hashes": 12 hex digits of the
    /// addnet hash.
    pub fn a1111_lora(&self) -> Option<&str> {
        self.addnet.as_deref().map(|h| &h[..12])
    }
}

/// Hashes the file at `path` in one pass; `data_offset` (a safetensors file's
/// [`Header::data_offset`](super::safetensors_header::Header)) adds the addnet hash.
pub fn hash_file(path: &Path, data_offset: Option<u64>) -> Result<FileHashes> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    hash_reader(file, data_offset).map_err(|e| Error::io("cannot read", path, e))
}

/// The hashes of everything `reader` yields.
pub fn hash_reader(mut reader: impl Read, data_offset: Option<u64>) -> std::io::Result<FileHashes> {
    let (mut full, mut v1, mut addnet) = (Sha256::new(), Sha256::new(), Sha256::new());
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        full.update(chunk);
        v1.update(window(chunk, pos, AUTOV1_START, AUTOV1_START + AUTOV1_LEN));
        if let Some(start) = data_offset {
            addnet.update(window(chunk, pos, start, u64::MAX));
        }
        pos += n as u64;
    }
    Ok(FileHashes {
        sha256: hex(&full.finalize()),
        autov1: hex(&v1.finalize())[..8].to_string(),
        addnet: data_offset.map(|_| hex(&addnet.finalize())),
    })
}

/// The part of `chunk` (which starts at file offset `pos`) inside `[start, end)`.
fn window(chunk: &[u8], pos: u64, start: u64, end: u64) -> &[u8] {
    let chunk_end = pos + chunk.len() as u64;
    let (from, to) = (start.max(pos), end.min(chunk_end));
    if from >= to {
        return &[];
    }
    &chunk[(from - pos) as usize..(to - pos) as usize]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the hash cache lives: `SEEDLING_HASH_CACHE`, else `$XDG_CACHE_HOME/seedling/hashes.json`,
/// else `~/.cache/seedling/hashes.json` (the XDG default, as `hub::cache_dir` falls back to
/// `~/.cache/huggingface`).
pub fn default_cache_file() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(file) = env(CACHE_ENV) {
        return PathBuf::from(file);
    }
    let base = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env("HOME").unwrap_or_else(|| ".".into())).join(".cache"));
    base.join("seedling").join("hashes.json")
}

/// The sha256 of the file at `path` (a model's weights, a checkpoint, a LoRA), read once: from
/// the hash cache at [`default_cache_file`] while the file's size and mtime are unchanged, else
/// computed now and remembered there. A 7 GB checkpoint is then hashed on its first run, not
/// on every run.
pub fn sha256_cached(path: &Path) -> Result<String> {
    Ok(hashes_cached(&default_cache_file(), path, None)?.sha256)
}

/// The hashes of `path` through the cache file `cache_file`, which is saved when they were
/// computed now. A cache that cannot be written is left as it is: it only saves time, and a
/// run must not fail on it.
pub fn hashes_cached(
    cache_file: &Path,
    path: &Path,
    data_offset: Option<u64>,
) -> Result<FileHashes> {
    let mut cache = HashCache::open(cache_file);
    let hashes = cache.hashes(path, data_offset)?;
    let _ = cache.save();
    Ok(hashes)
}

/// What a cache entry was computed from: the file's size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    /// Nanoseconds since 1970 (negative before); a file system without mtimes gives 0.
    mtime_ns: i64,
}

impl Stamp {
    fn of(path: &Path) -> Result<Stamp> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot read", path, e))?;
        let mtime = meta.modified().ok();
        Ok(Stamp {
            size: meta.len(),
            mtime_ns: mtime.map(nanos_since_epoch).unwrap_or(0),
        })
    }
}

fn nanos_since_epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    stamp: Stamp,
    #[serde(flatten)]
    hashes: FileHashes,
    /// Seconds since 1970 when it was computed, to drop the oldest first.
    hashed_at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    files: BTreeMap<String, Entry>,
}

/// The hash cache, read once, updated in memory, written back by [`HashCache::save`].
#[derive(Debug)]
pub struct HashCache {
    path: PathBuf,
    files: BTreeMap<String, Entry>,
    changed: bool,
    /// Files hashed (not found in the cache) since opening: what a listing cost.
    pub hashed: usize,
    /// Things to tell the user: a cache that could not be read and is started afresh.
    pub notes: Vec<String>,
}

impl HashCache {
    /// Reads the cache at `path`; a missing file is an empty cache, an unreadable one an empty
    /// cache with a note (and is rewritten on `save`).
    pub fn open(path: &Path) -> HashCache {
        let mut cache = HashCache {
            path: path.to_path_buf(),
            files: BTreeMap::new(),
            changed: false,
            hashed: 0,
            notes: Vec::new(),
        };
        match read_cache(path) {
            Ok(files) => cache.files = files,
            Err(why) => {
                cache.notes.push(format!(
                    "ignoring the hash cache {}: {why}; it will be rewritten",
                    path.display()
                ));
                cache.changed = true;
            }
        }
        cache
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hashes of the file at `path`: from the cache when its size and mtime are those the
    /// entry was computed from (and it has the addnet hash if `data_offset` asks for one), else
    /// computed now and remembered.
    pub fn hashes(&mut self, path: &Path, data_offset: Option<u64>) -> Result<FileHashes> {
        let key = cache_key(path);
        let stamp = Stamp::of(path)?;
        if let Some(e) = self.current(&key, stamp, data_offset) {
            return Ok(e.hashes.clone());
        }
        let hashes = hash_file(path, data_offset)?;
        self.hashed += 1;
        // The stamp from before reading: a file changed while it was read gets a new mtime,
        // so the entry misses next time instead of holding a hash of mixed contents.
        let entry = Entry {
            stamp,
            hashes: hashes.clone(),
            hashed_at: nanos_since_epoch(SystemTime::now()).max(0) as u64 / 1_000_000_000,
        };
        self.files.insert(key, entry);
        self.changed = true;
        Ok(hashes)
    }

    /// Whether [`HashCache::hashes`] would answer from the cache, without reading the file.
    pub fn is_current(&self, path: &Path, data_offset: Option<u64>) -> bool {
        Stamp::of(path)
            .is_ok_and(|stamp| self.current(&cache_key(path), stamp, data_offset).is_some())
    }

    fn current(&self, key: &str, stamp: Stamp, data_offset: Option<u64>) -> Option<&Entry> {
        let e = self.files.get(key)?;
        (e.stamp == stamp && (data_offset.is_none() || e.hashes.addnet.is_some())).then_some(e)
    }

    /// Writes the cache back if anything changed: atomically (a temporary file renamed over
    /// it), making its folder. Two processes saving at once lose nothing but each other's new
    /// entries, which are hashed again later.
    pub fn save(&mut self) -> Result<()> {
        if !self.changed {
            return Ok(());
        }
        prune(&mut self.files, MAX_ENTRIES);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io("cannot create the hash cache folder", dir, e))?;
        }
        let file = CacheFile {
            version: CACHE_VERSION,
            files: std::mem::take(&mut self.files),
        };
        let json = serde_json::to_vec_pretty(&file).expect("plain data serializes");
        self.files = file.files;
        crate::output::replace_file(&self.path, &json)?;
        self.changed = false;
        Ok(())
    }
}

/// The canonical path (symlinks resolved), so a file reached through two links or two
/// spellings is hashed once; the path as given if it cannot be resolved.
fn cache_key(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// The entries of the cache file at `path`; a missing file has none. The error says why a
/// present file cannot be used.
fn read_cache(path: &Path) -> std::result::Result<BTreeMap<String, Entry>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e.to_string()),
    };
    if meta.len() > MAX_CACHE_BYTES {
        return Err(format!(
            "it is {} bytes, more than the {MAX_CACHE_BYTES} a hash cache can need",
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let file: CacheFile =
        serde_json::from_slice(&bytes).map_err(|e| format!("it is not a hash cache ({e})"))?;
    if file.version != CACHE_VERSION {
        return Err(format!(
            "it is version {}, this seedling writes {CACHE_VERSION}",
            file.version
        ));
    }
    Ok(file.files)
}

/// Keeps at most `max` entries: drops those whose files are gone, then the oldest.
fn prune(files: &mut BTreeMap<String, Entry>, max: usize) {
    if files.len() <= max {
        return;
    }
    files.retain(|path, _| Path::new(path).exists());
    if files.len() <= max {
        return;
    }
    let mut ages: Vec<(u64, String)> = files
        .iter()
        .map(|(k, e)| (e.hashed_at, k.clone()))
        .collect();
    ages.sort();
    for (_, key) in ages.iter().take(files.len() - max) {
        files.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn wild(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/wild")
            .join(rel)
    }

    #[test]
    fn the_wild_checkpoints_hash_as_a1111_says() {
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(wild("checkpoints/hashes.json")).unwrap())
                .unwrap();
        let files = expected.as_object().unwrap();
        assert_eq!(files.len(), 4);
        for (name, want) in files {
            let h = hash_file(&wild(&format!("checkpoints/{name}")), None).unwrap();
            assert_eq!(h.sha256, want["sha256"], "{name}");
            assert_eq!(h.autov2(), want["AutoV2"], "{name}");
            assert_eq!(h.autov1, want["AutoV1_model_hash"], "{name}");
            assert_eq!(h.addnet, None);
        }
    }

    #[test]
    fn short_files_hash_the_empty_autov1_window_and_addnet_skips_the_header() {
        // sha256("") starts e3b0c442: what A1111's read after seek past the end hashes.
        let h = hash_reader(&b"abc"[..], Some(1)).unwrap();
        assert_eq!(h.autov1, "e3b0c442");
        assert_eq!(h.sha256, crate::provenance::sha256_hex(b"abc"));
        assert_eq!(h.addnet.unwrap(), crate::provenance::sha256_hex(b"bc"));
        // Just past the window's start: it holds the bytes from 0x100000 on.
        let mut bytes = vec![7u8; 0x10_0000];
        bytes.extend_from_slice(b"tail");
        let h = hash_reader(&bytes[..], None).unwrap();
        assert_eq!(h.autov1, crate::provenance::sha256_hex(b"tail")[..8]);
    }

    #[test]
    fn the_window_is_found_across_chunk_boundaries() {
        // A reader that yields 1000 bytes at a time gives the same hashes as one read.
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let bytes: Vec<u8> = (0..0x12_0000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = hash_reader(&bytes[..], Some(12345)).unwrap();
        assert_eq!(hash_reader(Dribble(&bytes), Some(12345)).unwrap(), whole);
        let window = &bytes[0x10_0000..0x11_0000];
        assert_eq!(whole.autov1, crate::provenance::sha256_hex(window)[..8]);
        assert_eq!(
            whole.addnet.unwrap(),
            crate::provenance::sha256_hex(&bytes[12345..])
        );
    }

    /// Rewrites `path` with `bytes` and gives it back the modification time `mtime`.
    fn rewrite_keeping_mtime(path: &Path, bytes: &[u8], mtime: SystemTime) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.write_all(bytes).unwrap();
        f.set_modified(mtime).unwrap();
    }

    #[test]
    fn the_cache_answers_until_size_or_mtime_change() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.safetensors");
        std::fs::write(&model, b"first contents").unwrap();
        let mtime = std::fs::metadata(&model).unwrap().modified().unwrap();
        let cache_file = dir.path().join("cache/hashes.json");

        let mut cache = HashCache::open(&cache_file);
        assert!(cache.notes.is_empty());
        let first = cache.hashes(&model, None).unwrap();
        assert_eq!(cache.hashed, 1);
        cache.save().unwrap();
        assert!(cache_file.is_file(), "the folder is made");

        // Same size, same mtime, other bytes: a cache hit returns the old hashes, which shows
        // the file was not read again (the test of "never rehashed on every run").
        rewrite_keeping_mtime(&model, b"other contents", mtime);
        let mut cache = HashCache::open(&cache_file);
        assert_eq!(cache.hashes(&model, None).unwrap(), first);
        assert_eq!(cache.hashed, 0);

        // A new mtime is a miss.
        let later = mtime + std::time::Duration::from_secs(5);
        rewrite_keeping_mtime(&model, b"other contents", later);
        let second = cache.hashes(&model, None).unwrap();
        assert_ne!(second, first);
        assert_eq!(
            second.sha256,
            crate::provenance::sha256_hex(b"other contents")
        );
        assert_eq!(cache.hashed, 1);

        // A new size with the same mtime is a miss too.
        rewrite_keeping_mtime(&model, b"longer other contents", later);
        let third = cache.hashes(&model, None).unwrap();
        assert_eq!(
            third.sha256,
            crate::provenance::sha256_hex(b"longer other contents")
        );
        assert_eq!(cache.hashed, 2);

        // Asking for the addnet hash of an entry that lacks it hashes again, once.
        assert!(cache.hashes(&model, Some(3)).unwrap().addnet.is_some());
        assert!(cache.hashes(&model, Some(3)).unwrap().addnet.is_some());
        assert_eq!(cache.hashed, 3);
    }

    #[test]
    fn a_link_and_its_target_share_one_entry() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.safetensors");
        std::fs::write(&model, b"x").unwrap();
        let link = dir.path().join("link.safetensors");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&model, &link).unwrap();
        #[cfg(not(unix))]
        std::fs::copy(&model, &link).unwrap();
        let mut cache = HashCache::open(&dir.path().join("h.json"));
        cache.hashes(&model, None).unwrap();
        cache.hashes(&link, None).unwrap();
        assert_eq!(cache.hashed, if cfg!(unix) { 1 } else { 2 });
    }

    #[test]
    fn a_weight_file_is_hashed_once_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("unet.safetensors");
        std::fs::write(&model, b"weights").unwrap();
        let cache_file = dir.path().join("cache/hashes.json");
        let first = hashes_cached(&cache_file, &model, None).unwrap();
        assert_eq!(first.sha256, crate::provenance::sha256_hex(b"weights"));
        // The entry is saved: a later run's cache has it and reads nothing.
        let mut cache = HashCache::open(&cache_file);
        assert!(cache.is_current(&model, None));
        assert_eq!(cache.hashes(&model, None).unwrap(), first);
        assert_eq!(cache.hashed, 0);
    }

    #[test]
    fn a_corrupt_cache_is_noted_ignored_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.safetensors");
        std::fs::write(&model, b"x").unwrap();
        let cache_file = dir.path().join("hashes.json");
        for junk in [
            &b"{\"version\": 1, \"files\": {\"a\": 3"[..],
            b"\xff\xfe",
            b"[]",
        ] {
            std::fs::write(&cache_file, junk).unwrap();
            let mut cache = HashCache::open(&cache_file);
            assert_eq!(cache.notes.len(), 1);
            assert!(
                cache.notes[0].starts_with(&format!(
                    "ignoring the hash cache {}: it is not a hash cache (",
                    cache_file.display()
                )) && cache.notes[0].ends_with("; it will be rewritten"),
                "{:?}",
                cache.notes
            );
            // Rewritten even when nothing new was hashed.
            cache.save().unwrap();
            let cache = HashCache::open(&cache_file);
            assert!(cache.notes.is_empty(), "{:?}", cache.notes);
        }
        std::fs::write(&cache_file, br#"{"version": 99, "files": {}}"#).unwrap();
        let cache = HashCache::open(&cache_file);
        assert!(cache.notes[0].contains("it is version 99, this seedling writes 1"));
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn pruning_drops_missing_files_then_the_oldest() {
        let entry = |at| Entry {
            stamp: Stamp {
                size: 1,
                mtime_ns: 0,
            },
            hashes: FileHashes {
                sha256: "0".repeat(64),
                autov1: "0".repeat(8),
                addnet: None,
            },
            hashed_at: at,
        };
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("present");
        std::fs::write(&present, b"").unwrap();
        let present = present.to_string_lossy().into_owned();
        let mut files = BTreeMap::new();
        files.insert(present.clone(), entry(1));
        files.insert("/gone/a".to_string(), entry(9));
        files.insert("/gone/b".to_string(), entry(10));
        let mut kept = files.clone();
        prune(&mut kept, 3);
        assert_eq!(kept.len(), 3, "under the cap nothing goes");
        prune(&mut kept, 2);
        assert_eq!(kept.keys().collect::<Vec<_>>(), [&present]);
        files.insert(dir.path().to_string_lossy().into_owned(), entry(5));
        files.retain(|k, _| !k.starts_with("/gone"));
        prune(&mut files, 1);
        assert_eq!(files.values().map(|e| e.hashed_at).collect::<Vec<_>>(), [5]);
    }
}
