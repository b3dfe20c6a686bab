//! Hugging Face Hub access through hf-hub, into the standard cache.
//!
//! hf-hub honours `HF_HOME` and `HF_ENDPOINT`; we add what the Python `huggingface_hub` also
//! honours: `HF_HUB_CACHE` (the cache folder itself), `HF_HUB_OFFLINE=1` (cache only, never the
//! network) and `HF_TOKEN`. A branch or tag is resolved to a commit once, and every file is
//! then fetched at that commit, so all files of one run come from one commit and the recipe can
//! pin it.

use crate::{Error, ErrorKind, Message, Result, Setting};
use hf_hub::api::sync::{ApiBuilder, ApiRepo};
use hf_hub::{Repo, RepoType};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// One repository at one resolved commit.
pub struct HubRepo {
    pub repo: String,
    pub commit: String,
    files: BTreeSet<String>,
    snapshot: PathBuf,
    /// `None` when offline: everything must already be in the cache.
    api: Option<ApiRepo>,
    /// Things the user should know (e.g. the network failed and the cache was used).
    pub notes: Vec<String>,
}

/// The hub cache folder: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = env_nonempty("HF_HUB_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(home) = env_nonempty("HF_HOME") {
        return PathBuf::from(home).join("hub");
    }
    let home = env_nonempty("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache/huggingface/hub")
}

/// `HF_HUB_OFFLINE` as huggingface_hub reads it: 1/true/yes/on.
pub(crate) fn offline() -> bool {
    env_nonempty("HF_HUB_OFFLINE")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
        .unwrap_or(false)
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// The cache folder of one model repo (`models--owner--name`).
pub(crate) fn repo_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

/// A repo the Hub cannot resolve and the cache does not hold.
fn unresolved(repo: &str, revision: &str, net_err: &str) -> Error {
    let message = Message::text(format!(
        "could not resolve {repo}@{revision} on the Hugging Face Hub: {net_err}; \
         check the repo name and the network (gated repos need HF_TOKEN), \
         or pass "
    ))
    .set(Setting::Model, "DIR")
    .then(" with a local diffusers folder");
    Error::hint(ErrorKind::Model, message)
}

pub(crate) fn is_commit(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

impl HubRepo {
    /// Resolves `repo@revision` to a commit: from the network, or from the cache when offline
    /// (or when the network fails and the cache has it).
    pub(crate) fn open(repo: &str, revision: &str) -> Result<Self> {
        let cache = cache_dir();
        if offline() {
            return Self::from_cache(&cache, repo, revision).map_err(|why| {
                let message = Message::text(format!(
                    "{repo}@{revision} is not in the Hugging Face cache at {} and HF_HUB_OFFLINE is set, \
                     so nothing can be downloaded ({why}); run once without HF_HUB_OFFLINE, or pass ",
                    cache.display()
                ))
                .set(Setting::Model, "DIR")
                .then(" with a local diffusers folder");
                Error::hint(ErrorKind::Model, message)
            });
        }
        match Self::from_network(&cache, repo, revision) {
            Ok(hub) => Ok(hub),
            Err(net_err) => match Self::from_cache(&cache, repo, revision) {
                Ok(mut hub) => {
                    hub.notes.push(format!(
                        "could not reach the Hugging Face Hub ({net_err}); using the cached copy at commit {}",
                        hub.commit
                    ));
                    Ok(hub)
                }
                Err(_) => Err(unresolved(repo, revision, &net_err)),
            },
        }
    }

    fn from_network(cache: &Path, repo: &str, revision: &str) -> std::result::Result<Self, String> {
        let token =
            env_nonempty("HF_TOKEN").or_else(|| hf_hub::Cache::new(cache.to_path_buf()).token());
        let api = ApiBuilder::from_env()
            .with_cache_dir(cache.to_path_buf())
            .with_token(token)
            .with_progress(std::io::stderr().is_terminal())
            .build()
            .map_err(|e| e.to_string())?;
        let info = api
            .repo(Repo::with_revision(
                repo.into(),
                RepoType::Model,
                revision.into(),
            ))
            .info()
            .map_err(|e| e.to_string())?;
        let files = info.siblings.into_iter().map(|s| s.rfilename).collect();
        let pinned = api.repo(Repo::with_revision(
            repo.into(),
            RepoType::Model,
            info.sha.clone(),
        ));
        Ok(Self {
            repo: repo.into(),
            snapshot: repo_dir(cache, repo).join("snapshots").join(&info.sha),
            commit: info.sha,
            files,
            api: Some(pinned),
            notes: Vec::new(),
        })
    }

    fn from_cache(cache: &Path, repo: &str, revision: &str) -> std::result::Result<Self, String> {
        let dir = repo_dir(cache, repo);
        let commit = if is_commit(revision) {
            revision.to_string()
        } else {
            let ref_file = dir.join("refs").join(revision);
            std::fs::read_to_string(&ref_file)
                .map_err(|_| format!("no {}", ref_file.display()))?
                .trim()
                .to_string()
        };
        let snapshot = dir.join("snapshots").join(&commit);
        if !snapshot.is_dir() {
            return Err(format!("no {}", snapshot.display()));
        }
        let mut files = BTreeSet::new();
        list_files(&snapshot, &snapshot, &mut files);
        Ok(Self {
            repo: repo.into(),
            commit,
            files,
            snapshot,
            api: None,
            notes: Vec::new(),
        })
    }

    /// Whether the repo (at this commit) has the file.
    pub(crate) fn has(&self, rel: &str) -> bool {
        self.files.contains(rel)
    }

    /// A local path for the file, downloading it into the cache if needed.
    pub(crate) fn fetch(&self, rel: &str) -> Result<PathBuf> {
        let cached = self.snapshot.join(rel);
        if cached.exists() {
            return Ok(cached);
        }
        match &self.api {
            None => Err(Error::Model(format!(
                "{rel} of {}@{} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; \
                 run once without HF_HUB_OFFLINE to download it",
                self.repo, self.commit
            ))),
            Some(api) => api.download(rel).map_err(|e| {
                Error::Model(format!(
                    "downloading {rel} from {}@{} failed: {e}; check the network and retry",
                    self.repo, self.commit
                ))
            }),
        }
    }
}

/// The sha256 of a cached LFS file, read from its blob name (the cache names LFS blobs by their
/// sha256), without reading the file.
pub(crate) fn blob_sha256(path: &Path) -> Option<String> {
    let target = std::fs::read_link(path).ok()?;
    let name = target.file_name()?.to_str()?;
    (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())).then(|| name.to_string())
}

/// Every file below `dir`, as paths relative to `root` with `/` separators.
pub(crate) fn list_files(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            list_files(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// Unix-only: the snapshot's file is a symlink to its blob, as huggingface_hub makes it there.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn reads_a_cache_laid_out_like_huggingface_hub() {
        let tmp = tempfile::tempdir().unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let repo = repo_dir(tmp.path(), "owner/name");
        let blob = repo.join("blobs").join("a".repeat(64));
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, b"weights").unwrap();
        let snap = repo.join("snapshots").join(commit).join("unet");
        std::fs::create_dir_all(&snap).unwrap();
        std::os::unix::fs::symlink(&blob, snap.join("w.safetensors")).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), commit).unwrap();

        let hub = HubRepo::from_cache(tmp.path(), "owner/name", "main").unwrap();
        assert_eq!(hub.commit, commit);
        assert!(hub.has("unet/w.safetensors"));
        let path = hub.fetch("unet/w.safetensors").unwrap();
        assert_eq!(blob_sha256(&path).unwrap(), "a".repeat(64));
        assert!(hub.fetch("vae/missing.safetensors").is_err());
        // A commit id needs no ref; an unknown branch is an error.
        assert!(HubRepo::from_cache(tmp.path(), "owner/name", commit).is_ok());
        assert!(HubRepo::from_cache(tmp.path(), "owner/name", "dev").is_err());
    }
}
