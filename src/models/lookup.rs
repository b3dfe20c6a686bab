//! Finding the model a foreign image names (the
//! [`ModelLookup`](crate::metadata::foreign::ModelLookup) that `inspect` and `replay`
//! give the metadata readers): by content first — the hash of a well-known checkpoint file, or
//! a weight file in the Hugging Face cache whose sha256 starts with the recorded hash (the cache
//! names LFS blobs by their sha256) — and only then by name (a preset, a known checkpoint's file
//! name, a cached repo). Nothing is downloaded.
//!
//! Nothing is guessed either: a name match is returned marked as such
//! ([`ResolvedModel::by_content`] false), and callers show it as a suggestion the user must
//! confirm with `--model`, never use it on their own. A file called "v1-5-pruned-emaonly" can be
//! any fine-tune saved under that name.
//!
//! [`resolve`] and any `|name, hash| resolve_in(folder, name, hash)` are such lookups.

use crate::metadata::foreign::ResolvedModel;
use crate::models::folder::{Kind, ModelsLibrary};
use crate::models::{hub, preset};
use crate::recipe::ModelSource;
use std::path::Path;

/// Single-file checkpoints whose identity is public, mapped to the preset holding the same
/// weights in diffusers layout. The hash is A1111's short hash (AutoV2): the first 10 hex
/// digits of the file's sha256, as the file's Git LFS pointer on the Hub lists it.
const KNOWN_CHECKPOINTS: [(&str, &str, &str); 1] = [
    // stable-diffusion-v1-5/stable-diffusion-v1-5, file v1-5-pruned-emaonly.safetensors,
    // sha256 6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa.
    ("v1-5-pruned-emaonly", "6ce0161689", "sd15"),
];

/// [`resolve`], with the checkpoints of `library`'s models folders looked at first: a file
/// whose hash the image records (A1111's 10-digit AutoV2 "Model hash", its older 8-digit
/// AutoV1, or a longer sha256 prefix) is the model, as a single file with its family's
/// reference config; then the presets and the Hugging Face cache by hash; then a file of the
/// name the image gives (A1111's `Model`, ComfyUI's `ckpt_name`), returned as a name match
/// (`by_content` false), as are the presets' and the cache's name matches. Looking up by
/// hash hashes the folders' files once (through the hash cache); a folder that cannot be read
/// is passed over, the lookup being best effort.
pub fn resolve_with(
    library: &ModelsLibrary,
    name: Option<&str>,
    hash: Option<&str>,
) -> Option<ResolvedModel> {
    let in_folder = |path: &Path, family: Option<&str>, how: String, by_content| ResolvedModel {
        // The reference config as the file's weights say (replay opens it as a new file).
        source: ModelSource::File {
            path: path.to_path_buf(),
            config: None,
            reference: Default::default(),
        },
        family: family.unwrap_or_default().to_string(),
        preset: None,
        how,
        by_content,
    };
    if let Some(h) = hash.map(str::trim).filter(|h| !h.is_empty()) {
        if let Ok(Some(f)) = library.by_hash(Kind::Checkpoint, h) {
            // A pickle is listed and hashed, never loaded: not a model to run.
            if f.note.is_none() {
                let how = format!("models folder file {}, by model hash {h}", f.path.display());
                return Some(in_folder(
                    &f.path,
                    f.description.family.as_deref(),
                    how,
                    true,
                ));
            }
        }
    }
    let found = resolve(name, hash);
    if found.as_ref().is_some_and(|m| m.by_content) {
        return found;
    }
    let named = name.map(|n| library.by_name(Kind::Checkpoint, n));
    match named.as_deref() {
        Some([one]) if one.safetensors => {
            let how = format!("models folder file {}, by name only", one.path.display());
            Some(in_folder(&one.path, None, how, false))
        }
        _ => found,
    }
}

/// [`resolve_in`] the user's Hugging Face cache.
pub fn resolve(name: Option<&str>, hash: Option<&str>) -> Option<ResolvedModel> {
    resolve_in(&hub::cache_dir(), name, hash)
}

/// Looks the model up: a hash match wins over a name match (which comes back with `by_content`
/// false), a known checkpoint or a preset over the cache. Only `models--*` folders with a
/// diffusers snapshot (`model_index.json`) count.
pub fn resolve_in(cache: &Path, name: Option<&str>, hash: Option<&str>) -> Option<ResolvedModel> {
    let hash = hash.and_then(sha256_prefix);
    let keys = name.map(name_keys).unwrap_or_default();
    let cached = cached_repos(cache);

    if let Some(h) = &hash {
        if let Some((_, _, p)) = KNOWN_CHECKPOINTS.iter().find(|(_, k, _)| h.starts_with(k)) {
            return from_preset(p, &format!("by model hash {h}"), true);
        }
        if let Some(repo) = cached
            .iter()
            .find(|r| r.blobs.iter().any(|b| b.starts_with(h)))
        {
            return Some(from_cache(repo, &format!("by model hash {h}"), true));
        }
    }
    if keys.is_empty() {
        return None;
    }
    let by_name = |n: &str| keys.iter().any(|k| k == &n.to_lowercase());
    // A known checkpoint's name with another hash is another file under that name.
    let hash_differs = |k: &str| hash.as_deref().is_some_and(|h| !h.starts_with(k));
    if let Some((_, _, p)) = KNOWN_CHECKPOINTS
        .iter()
        .find(|(n, k, _)| by_name(n) && !hash_differs(k))
    {
        return from_preset(p, "by checkpoint name only", false);
    }
    if let Some(p) = preset::all()
        .into_iter()
        .find(|p| by_name(&p.name) || by_name(&p.repo) || by_name(repo_tail(&p.repo)))
    {
        return from_preset(&p.name, "by name only", false);
    }
    cached
        .iter()
        .find(|r| by_name(&r.repo) || by_name(repo_tail(&r.repo)))
        .map(|r| from_cache(r, "by name only", false))
}

fn from_preset(name: &str, how: &str, by_content: bool) -> Option<ResolvedModel> {
    let p = preset::find(name)?;
    Some(ResolvedModel {
        source: ModelSource::Hub {
            repo: p.repo.clone(),
            revision: p.revision.clone(),
        },
        family: p.family.clone(),
        preset: Some(p.name.clone()),
        how: format!("preset {}, {how}", p.name),
        by_content,
    })
}

fn from_cache(repo: &CachedRepo, how: &str, by_content: bool) -> ResolvedModel {
    ResolvedModel {
        source: ModelSource::Hub {
            repo: repo.repo.clone(),
            revision: repo.commit.clone(),
        },
        family: String::new(),
        preset: None,
        how: format!("Hugging Face cache, {how}"),
        by_content,
    }
}

/// The lower-case hex prefix of a sha256, if `hash` can be one (A1111's AutoV2 hash is 10
/// digits; its older 8-digit AutoV1 hash is not a sha256 prefix and cannot be looked up).
fn sha256_prefix(hash: &str) -> Option<String> {
    let h = hash.trim().to_lowercase();
    let h = h.strip_prefix("sha256:").unwrap_or(&h).to_string();
    (h.len() >= 10 && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some(h)
}

/// The spellings of a model name to compare, lower-case: as written, without a folder, and
/// without a weight-file extension ("models/Stable-diffusion/v1-5.safetensors" → "v1-5").
fn name_keys(name: &str) -> Vec<String> {
    let name = name.trim().to_lowercase();
    if name.is_empty() {
        return Vec::new();
    }
    let base = name.rsplit(['/', '\\']).next().unwrap_or(&name).to_string();
    let mut keys = vec![name.clone(), base.clone()];
    for k in [name, base] {
        for ext in [".safetensors", ".ckpt", ".pt", ".bin", ".gguf", ".sft"] {
            if let Some(stem) = k.strip_suffix(ext) {
                keys.push(stem.to_string());
            }
        }
    }
    keys
}

fn repo_tail(repo: &str) -> &str {
    repo.rsplit('/').next().unwrap_or(repo)
}

/// One model repo in the hub cache with a diffusers snapshot.
struct CachedRepo {
    repo: String,
    commit: String,
    /// Names of the files in `blobs/` (LFS blobs are named by their sha256).
    blobs: Vec<String>,
}

/// The cache's model repos, in name order (so a lookup is deterministic).
fn cached_repos(cache: &Path) -> Vec<CachedRepo> {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    let mut repos: Vec<CachedRepo> = entries
        .flatten()
        .filter_map(|e| {
            let folder = e.file_name().to_string_lossy().into_owned();
            // huggingface_hub's folder name: "models--" + repo_id with "/" replaced by "--".
            let (owner, name) = folder.strip_prefix("models--")?.split_once("--")?;
            let dir = e.path();
            let commit = diffusers_snapshot(&dir)?;
            let blobs = std::fs::read_dir(dir.join("blobs"))
                .map(|it| {
                    it.flatten()
                        .map(|b| b.file_name().to_string_lossy().to_lowercase())
                        .collect()
                })
                .unwrap_or_default();
            Some(CachedRepo {
                repo: format!("{owner}/{name}"),
                commit,
                blobs,
            })
        })
        .collect();
    repos.sort_by(|a, b| a.repo.cmp(&b.repo));
    repos
}

/// The commit of the repo's `main` snapshot if it is a diffusers folder, else of the first
/// snapshot (by name) that is one.
fn diffusers_snapshot(dir: &Path) -> Option<String> {
    let is_diffusers = |c: &str| {
        dir.join("snapshots")
            .join(c)
            .join("model_index.json")
            .is_file()
    };
    if let Ok(main) = std::fs::read_to_string(dir.join("refs").join("main")) {
        let main = main.trim().to_string();
        if !main.is_empty() && !main.contains(['/', '\\']) && is_diffusers(&main) {
            return Some(main);
        }
    }
    let mut snapshots: Vec<String> = std::fs::read_dir(dir.join("snapshots"))
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    snapshots.sort();
    snapshots.into_iter().find(|c| is_diffusers(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::foreign::ModelLookup;

    #[test]
    fn a_models_folder_checkpoint_by_hash_then_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("checkpoints/sub/x-7f3a-unique.safetensors");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/fixtures/wild/checkpoints/tiny-sd1.safetensors"),
            &file,
        )
        .unwrap();
        let library =
            ModelsLibrary::open(&[tmp.path().to_path_buf()], tmp.path().join("h.json")).unwrap();
        for hash in ["79e01fec06", "6A243D3F"] {
            let m = resolve_with(&library, Some("whatever"), Some(hash)).unwrap();
            assert!(m.by_content, "{hash}");
            assert_eq!(m.family, "sd1");
            assert_eq!(
                m.source,
                ModelSource::File {
                    path: file.clone(),
                    config: None,
                    reference: Default::default(),
                }
            );
        }
        // ComfyUI's ckpt_name, a name below the folder with its extension: a name match.
        let m = resolve_with(&library, Some("sub/x-7f3a-unique.safetensors"), None).unwrap();
        assert!(!m.by_content);
        assert!(m.how.ends_with("by name only"), "{}", m.how);
        assert!(resolve_with(&library, Some("x-7f3a-other"), Some("0123456789")).is_none());
    }

    fn fake_repo(cache: &Path, repo: &str, commit: &str, blob: &str) {
        let dir = cache.join(format!("models--{}", repo.replace('/', "--")));
        std::fs::create_dir_all(dir.join("blobs")).unwrap();
        std::fs::write(dir.join("blobs").join(blob), b"w").unwrap();
        let snap = dir.join("snapshots").join(commit);
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("model_index.json"), b"{}").unwrap();
        std::fs::create_dir_all(dir.join("refs")).unwrap();
        std::fs::write(dir.join("refs/main"), commit).unwrap();
    }

    #[test]
    fn presets_by_name_and_known_checkpoints_by_hash_or_name() {
        let empty = tempfile::tempdir().unwrap();
        let c = empty.path();
        let sd15 = resolve_in(c, Some("whatever"), Some("6ce0161689")).unwrap();
        assert_eq!(sd15.preset.as_deref(), Some("sd15"));
        assert_eq!(sd15.how, "preset sd15, by model hash 6ce0161689");
        assert!(sd15.by_content);
        // Names are only suggestions: marked so, and said so in `how`.
        let by_file = resolve_in(c, Some("v1-5-pruned-emaonly.safetensors"), None).unwrap();
        assert_eq!(by_file.preset.as_deref(), Some("sd15"));
        assert_eq!(by_file.family, "sd1");
        assert!(!by_file.by_content);
        assert_eq!(by_file.how, "preset sd15, by checkpoint name only");
        assert_eq!(by_file.model_arg(), "sd15");
        let by_repo = resolve_in(c, Some("stabilityai/sd-turbo"), None).unwrap();
        assert_eq!(by_repo.preset.as_deref(), Some("sd-turbo"));
        assert!(!by_repo.by_content);
        let by_tail = resolve_in(c, Some("Stable-Diffusion-2-1"), None).unwrap();
        assert_eq!(by_tail.preset.as_deref(), Some("sd21"));
        assert!(!by_tail.by_content);
        // The known checkpoint's name with another file's hash is not even a suggestion.
        assert_eq!(
            resolve_in(c, Some("v1-5-pruned-emaonly"), Some("879db523c3")),
            None
        );
        assert_eq!(
            resolve_in(c, Some("dreamshaper_8"), Some("879db523c3")),
            None
        );
        // An 8-digit AutoV1 hash is not a sha256 prefix: never matched against blobs.
        assert_eq!(resolve_in(c, None, Some("45dee52b")), None);
        assert_eq!(resolve_in(c, None, None), None);
    }

    #[test]
    fn the_names_other_tools_give_sd15_suggest_it() {
        // The names the metadata readers' tests meet (their lookup is a stand-in for this one).
        let empty = tempfile::tempdir().unwrap();
        for name in [
            "sd15",
            "stable-diffusion-v1-5",
            "v1-5-pruned-emaonly",
            "v1-5-pruned-emaonly.safetensors",
        ] {
            let m = resolve_in(empty.path(), Some(name), None).unwrap();
            assert_eq!(m.preset.as_deref(), Some("sd15"), "{name}");
            assert!(!m.by_content, "{name}");
        }
        let m = resolve_in(
            empty.path(),
            Some("v1-5-pruned-emaonly"),
            Some("6ce0161689"),
        );
        assert!(m.unwrap().by_content);
        // Through the trait, as the readers call it.
        let lookup = |n: Option<&str>, h: Option<&str>| resolve_in(empty.path(), n, h);
        let m = ModelLookup::find(&lookup, None, Some("6CE0161689")).unwrap();
        assert_eq!(m.preset.as_deref(), Some("sd15"));
    }

    #[test]
    fn cache_by_blob_hash_and_by_repo_name() {
        let tmp = tempfile::tempdir().unwrap();
        let c = tmp.path();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let sha = "abcdef0123".to_string() + &"5".repeat(54);
        fake_repo(c, "someone/dreamy-model", commit, &sha);
        let by_hash = resolve_in(c, Some("unrelated"), Some("ABCDEF0123")).unwrap();
        assert_eq!(
            by_hash.source,
            ModelSource::Hub {
                repo: "someone/dreamy-model".into(),
                revision: commit.into()
            }
        );
        assert_eq!(by_hash.how, "Hugging Face cache, by model hash abcdef0123");
        assert!(by_hash.by_content);
        let by_name = resolve_in(c, Some("dreamy-model"), None).unwrap();
        assert_eq!(by_name.source, by_hash.source);
        assert_eq!(by_name.preset, None);
        assert!(!by_name.by_content);
        assert_eq!(by_name.model_arg(), "someone/dreamy-model");
        // A folder that is not a diffusers snapshot does not count.
        std::fs::remove_file(
            c.join("models--someone--dreamy-model/snapshots")
                .join(commit)
                .join("model_index.json"),
        )
        .unwrap();
        assert_eq!(resolve_in(c, Some("dreamy-model"), None), None);
    }
}
