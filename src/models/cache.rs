//! What the local Hugging Face cache already holds (for `seedling models`): which repos are
//! there, at which commit, how much disk they take, and whether every weight file a pipeline
//! needs is present. Reads the cache layout only (refs/, snapshots/<commit>/ symlinks into
//! blobs/), never the network.

use super::hub::{cache_dir, is_commit, list_files, repo_dir};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

/// One repo in the cache, at the commit its ref points to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CachedModel {
    pub repo: String,
    pub commit: String,
    /// Bytes of the snapshot's files (symlinks followed to their blobs, each blob once).
    pub bytes: u64,
    /// Whether model_index.json and a safetensors file for every weight component are present,
    /// so the model runs with HF_HUB_OFFLINE=1.
    pub complete: bool,
    /// Weight variants present for every component: "fp32" (plain files), "fp16".
    pub variants: Vec<String>,
}

/// The cached copy of `repo` at `revision` (a branch, tag or commit), if the cache has one.
pub fn find(repo: &str, revision: &str) -> Option<CachedModel> {
    find_in(&cache_dir(), repo, revision)
}

/// Every diffusers pipeline (a snapshot with model_index.json) in the cache, by repo name.
pub fn all() -> Vec<CachedModel> {
    all_in(&cache_dir())
}

pub(crate) fn find_in(cache: &Path, repo: &str, revision: &str) -> Option<CachedModel> {
    let dir = repo_dir(cache, repo);
    let commit = if is_commit(revision) {
        revision.to_string()
    } else {
        std::fs::read_to_string(dir.join("refs").join(revision))
            .ok()?
            .trim()
            .to_string()
    };
    let snapshot = dir.join("snapshots").join(&commit);
    if !snapshot.is_dir() {
        return None;
    }
    let files = list(&snapshot);
    let (complete, variants) = completeness(&snapshot, &files);
    Some(CachedModel {
        repo: repo.to_string(),
        commit,
        bytes: disk_bytes(&snapshot, &files),
        complete,
        variants,
    })
}

pub(crate) fn all_in(cache: &Path) -> Vec<CachedModel> {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    let mut repos: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e
                .file_name()
                .to_str()?
                .strip_prefix("models--")?
                .to_string();
            // `models--owner--name`; a repo name may itself contain "--" only after the owner.
            let (owner, rest) = name.split_once("--")?;
            Some(format!("{owner}/{rest}"))
        })
        .collect();
    repos.sort();
    repos
        .iter()
        .filter_map(|repo| find_in(cache, repo, "main"))
        .filter(|m| {
            repo_dir(cache, &m.repo)
                .join("snapshots")
                .join(&m.commit)
                .join("model_index.json")
                .exists()
        })
        .collect()
}

/// Relative paths of every file in a snapshot.
fn list(snapshot: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    list_files(snapshot, snapshot, &mut out);
    out
}

/// Sizes of the files' targets; a blob two snapshot files point to counts once. A dangling
/// link (an interrupted download) counts nothing.
fn disk_bytes(snapshot: &Path, files: &BTreeSet<String>) -> u64 {
    let mut seen = BTreeSet::new();
    files
        .iter()
        .filter_map(|rel| {
            let path = snapshot.join(rel);
            let target = std::fs::canonicalize(&path).ok()?;
            let len = std::fs::metadata(&target).ok()?.len();
            seen.insert(target).then_some(len)
        })
        .sum()
}

/// Whether each weight component model_index.json names has its safetensors, and in which
/// variants (the same file names `ModelInfo::weights` looks for).
fn completeness(snapshot: &Path, files: &BTreeSet<String>) -> (bool, Vec<String>) {
    let Some(components) = weight_components(snapshot) else {
        return (false, Vec::new());
    };
    let stem = |dir: &str| {
        if dir.starts_with("text_encoder") {
            "model"
        } else {
            "diffusion_pytorch_model"
        }
    };
    let has_all = |suffix: &str| {
        components
            .iter()
            .all(|c| files.contains(&format!("{c}/{}{suffix}", stem(c))))
    };
    let variants: Vec<String> = [(".safetensors", "fp32"), (".fp16.safetensors", "fp16")]
        .into_iter()
        .filter(|(suffix, _)| has_all(suffix))
        .map(|(_, name)| name.to_string())
        .collect();
    let complete = components.iter().all(|c| {
        files.contains(&format!("{c}/{}.safetensors", stem(c)))
            || files.contains(&format!("{c}/{}.fp16.safetensors", stem(c)))
    });
    (complete, variants)
}

/// The weight-bearing components model_index.json lists (`null` entries are absent parts).
fn weight_components(snapshot: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(snapshot.join("model_index.json")).ok()?;
    let index: serde_json::Value = serde_json::from_str(&text).ok()?;
    let obj = index.as_object()?;
    Some(
        ["unet", "vae", "text_encoder", "text_encoder_2"]
            .into_iter()
            .filter(|c| {
                obj.get(*c)
                    .is_some_and(|v| !v.is_null() && v[0].is_string())
            })
            .map(str::to_string)
            .collect(),
    )
}

/// `bytes` for people: 1000-based, as the Hub and `du -h --si` show them.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot file as huggingface_hub lays it out on Unix: a symlink to its blob. (On
    /// Windows without symlink rights it copies the blob instead; these tests are Unix-only.)
    #[cfg(unix)]
    fn link(repo: &Path, commit: &str, rel: &str, blob: &str, bytes: &[u8]) {
        let blob = repo.join("blobs").join(blob);
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, bytes).unwrap();
        let path = repo.join("snapshots").join(commit).join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&blob, &path).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn sizes_completeness_and_variants_come_from_the_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let repo = repo_dir(tmp.path(), "owner/sd");
        let index = br#"{"_class_name":"StableDiffusionPipeline","unet":["diffusers","UNet2DConditionModel"],
            "vae":["diffusers","AutoencoderKL"],"text_encoder":["transformers","CLIPTextModel"],
            "safety_checker":[null,null]}"#;
        link(&repo, commit, "model_index.json", "i", index);
        link(
            &repo,
            commit,
            "unet/diffusion_pytorch_model.safetensors",
            "u",
            &[0; 1000],
        );
        link(
            &repo,
            commit,
            "vae/diffusion_pytorch_model.safetensors",
            "v",
            &[0; 100],
        );
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), commit).unwrap();

        let m = find_in(tmp.path(), "owner/sd", "main").unwrap();
        assert_eq!(m.commit, commit);
        assert_eq!(m.bytes, 1100 + index.len() as u64);
        assert!(!m.complete, "the text encoder is missing");
        assert!(m.variants.is_empty());

        link(
            &repo,
            commit,
            "text_encoder/model.fp16.safetensors",
            "t",
            &[0; 10],
        );
        let m = find_in(tmp.path(), "owner/sd", commit).unwrap();
        assert!(m.complete);
        assert!(m.variants.is_empty(), "fp16 only for one component");
        // The same blob linked twice counts once.
        let blob = repo.join("blobs/u");
        let twin = repo
            .join("snapshots")
            .join(commit)
            .join("unet/copy.safetensors");
        std::os::unix::fs::symlink(&blob, twin).unwrap();
        assert_eq!(
            find_in(tmp.path(), "owner/sd", "main").unwrap().bytes,
            m.bytes
        );

        assert!(find_in(tmp.path(), "owner/sd", "dev").is_none());
        assert!(find_in(tmp.path(), "owner/none", "main").is_none());
        let listed = all_in(tmp.path());
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].repo, "owner/sd");
    }

    #[test]
    fn sizes_read_like_the_hub() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(5_210_000_000), "5.2 GB");
        assert_eq!(human_size(1_500), "1.5 kB");
    }
}
