//! Which subfolders of a models folder hold which kind of file, in AUTOMATIC1111's layout
//! (`models/Stable-diffusion`, `models/Lora`, `models/VAE`, and `embeddings` beside `models/`)
//! or ComfyUI's (`models/checkpoints`, `models/loras`, `models/embeddings`, `models/vae`), and
//! the model files under them.

use crate::{Error, ErrorKind, Message, Result, Setting};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a file in a models folder is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A whole model in one file (UNet, VAE and text encoders).
    Checkpoint,
    Lora,
    /// Textual-inversion embeddings.
    Embedding,
    Vae,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Checkpoint, Kind::Lora, Kind::Embedding, Kind::Vae];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Checkpoint => "checkpoint",
            Kind::Lora => "lora",
            Kind::Embedding => "embedding",
            Kind::Vae => "vae",
        }
    }

    /// The subfolder each tool keeps this kind in, spelled as the tool does (A1111
    /// `modules/paths.py`/`shared_cmd_options.py` defaults; ComfyUI `folder_paths.py`).
    fn folder(self, layout: Layout) -> &'static str {
        match (layout, self) {
            (Layout::A1111, Kind::Checkpoint) => "Stable-diffusion",
            (Layout::A1111, Kind::Lora) => "Lora",
            (Layout::A1111, Kind::Vae) => "VAE",
            (Layout::ComfyUi, Kind::Checkpoint) => "checkpoints",
            (Layout::ComfyUi, Kind::Lora) => "loras",
            (Layout::ComfyUi, Kind::Vae) => "vae",
            (_, Kind::Embedding) => "embeddings",
        }
    }
}

/// Whose folder names a models folder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Layout {
    #[serde(rename = "a1111")]
    A1111,
    #[serde(rename = "comfyui")]
    ComfyUi,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::A1111 => "A1111",
            Layout::ComfyUi => "ComfyUI",
        }
    }
}

/// A models folder as found on disk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelsDir {
    /// The folder as given.
    pub root: PathBuf,
    pub layout: Layout,
    /// Each kind's folder that exists, in `Kind::ALL` order.
    pub folders: Vec<(Kind, PathBuf)>,
}

/// File name endings listed: safetensors, and the pickle formats (listed, never loaded: loading a
/// pickle runs code from the file).
const SAFETENSORS: &str = "safetensors";
const PICKLES: [&str; 4] = ["ckpt", "pt", "pth", "bin"];

/// How deep below a kind's folder files are looked for (both tools recurse into subfolders).
const MAX_DEPTH: usize = 8;

/// Finds the layout of `root`: the folder holding the kinds' subfolders, or the A1111/ComfyUI
/// install folder whose `models/` holds them. The layout with more of its own subfolder names
/// wins (`embeddings` is both tools'); A1111's default `embeddings` sits beside `models/`
/// (its `--embeddings-dir` defaults to `<webui>/embeddings`) and is used when `models/` has
/// none.
pub fn detect(root: &Path) -> Result<ModelsDir> {
    if !root.is_dir() {
        let message = Message::text(format!(
            "the models folder {} does not exist or is not a folder; pass an existing folder as ",
            root.display()
        ))
        .mention(Setting::ModelsDir);
        return Err(Error::hint(ErrorKind::BadInput, message));
    }
    // An install folder has `embeddings/` at its top in A1111's layout: the candidate with more
    // kinds' folders wins (the first on a tie).
    let found = [root.to_path_buf(), root.join("models")]
        .iter()
        .filter_map(|base| detect_in(root, base))
        .fold(None, |best: Option<ModelsDir>, d| match best {
            Some(b) if b.folders.len() >= d.folders.len() => Some(b),
            _ => Some(d),
        });
    found.ok_or_else(|| not_a_models_folder(root))
}

fn detect_in(root: &Path, base: &Path) -> Option<ModelsDir> {
    let own = |layout: Layout| {
        [Kind::Checkpoint, Kind::Lora, Kind::Vae]
            .iter()
            .filter(|k| base.join(k.folder(layout)).is_dir())
            .count()
    };
    let layout = if own(Layout::ComfyUi) > own(Layout::A1111) {
        Layout::ComfyUi
    } else {
        Layout::A1111
    };
    let mut folders: Vec<(Kind, PathBuf)> = Kind::ALL
        .iter()
        .map(|&k| (k, base.join(k.folder(layout))))
        .filter(|(_, dir)| dir.is_dir())
        .collect();
    let beside = base.parent().map(|p| p.join("embeddings"));
    let has_embeddings = folders.iter().any(|(k, _)| *k == Kind::Embedding);
    if let Some(dir) = beside.filter(|d| layout == Layout::A1111 && !has_embeddings && d.is_dir()) {
        if own(layout) > 0 {
            folders.push((Kind::Embedding, dir));
            folders.sort_by_key(|(k, _)| *k);
        }
    }
    (!folders.is_empty()).then(|| ModelsDir {
        root: root.to_path_buf(),
        layout,
        folders,
    })
}

fn not_a_models_folder(root: &Path) -> Error {
    let message = Message::text(format!(
        "{} holds none of A1111's model folders (Stable-diffusion, Lora, embeddings, VAE) or \
         ComfyUI's (checkpoints, loras, embeddings, vae), nor a models/ folder with them; pass \
         the folder that holds them as ",
        root.display()
    ))
    .mention(Setting::ModelsDir);
    Error::hint(ErrorKind::BadInput, message)
}

/// A model file found under a kind's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The path below the kind's folder without its extension, `/`-separated: the name A1111
    /// shows (`sub/model`).
    pub name: String,
    pub path: PathBuf,
    pub safetensors: bool,
}

/// The model files under `dir`, in name order: safetensors and pickle files, following links,
/// skipping hidden names, at most `MAX_DEPTH` folders deep, each folder once (a link loop ends).
pub fn files(dir: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    walk(dir, "", 0, &mut seen, &mut out);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    seen: &mut BTreeSet<PathBuf>,
    out: &mut Vec<Found>,
) {
    let Ok(real) = std::fs::canonicalize(dir) else {
        return;
    };
    if depth > MAX_DEPTH || !seen.insert(real) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let rel = format!("{prefix}{file_name}");
        if path.is_dir() {
            walk(&path, &format!("{rel}/"), depth + 1, seen, out);
        } else if let Some(found) = model_file(path, &rel) {
            out.push(found);
        }
    }
}

/// A file whose extension (any case) is a model format's.
fn model_file(path: PathBuf, rel: &str) -> Option<Found> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    let safetensors = ext == SAFETENSORS;
    if !safetensors && !PICKLES.contains(&ext.as_str()) {
        return None;
    }
    let name = rel[..rel.len() - ext.len() - 1].to_string();
    path.is_file().then_some(Found {
        name,
        path,
        safetensors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkdirs(root: &Path, dirs: &[&str]) {
        for d in dirs {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
    }

    fn kinds(d: &ModelsDir) -> Vec<(Kind, String)> {
        d.folders
            .iter()
            .map(|(k, p)| (*k, p.strip_prefix(&d.root).unwrap().display().to_string()))
            .collect()
    }

    #[test]
    fn finds_a1111s_layout_with_embeddings_beside_models() {
        let tmp = tempfile::tempdir().unwrap();
        let webui = tmp.path();
        mkdirs(
            webui,
            &[
                "models/Stable-diffusion",
                "models/Lora",
                "models/VAE",
                "embeddings",
            ],
        );
        let d = detect(&webui.join("models")).unwrap();
        assert_eq!(d.layout, Layout::A1111);
        let names: Vec<(Kind, PathBuf)> = d.folders.clone();
        assert_eq!(names[2], (Kind::Embedding, webui.join("embeddings")));
        assert_eq!(names.len(), 4);
        // The install folder works too.
        let d = detect(webui).unwrap();
        assert_eq!(
            kinds(&d),
            [
                (Kind::Checkpoint, "models/Stable-diffusion".to_string()),
                (Kind::Lora, "models/Lora".to_string()),
                (Kind::Embedding, "embeddings".to_string()),
                (Kind::Vae, "models/VAE".to_string()),
            ]
        );
    }

    #[test]
    fn finds_comfyuis_layout() {
        let tmp = tempfile::tempdir().unwrap();
        mkdirs(
            tmp.path(),
            &[
                "models/checkpoints",
                "models/loras",
                "models/embeddings",
                "models/upscale_models",
            ],
        );
        let d = detect(&tmp.path().join("models")).unwrap();
        assert_eq!(d.layout, Layout::ComfyUi);
        assert_eq!(
            kinds(&d),
            [
                (Kind::Checkpoint, "checkpoints".to_string()),
                (Kind::Lora, "loras".to_string()),
                (Kind::Embedding, "embeddings".to_string()),
            ]
        );
        assert_eq!(detect(tmp.path()).unwrap().layout, Layout::ComfyUi);
    }

    #[test]
    fn refuses_a_folder_without_model_folders() {
        let tmp = tempfile::tempdir().unwrap();
        mkdirs(tmp.path(), &["photos"]);
        let e = detect(tmp.path()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadInput);
        let text = e.render(crate::message::as_flags);
        assert!(text.starts_with(&format!("{} holds none of A1111's", tmp.path().display())));
        assert!(
            text.ends_with("pass the folder that holds them as --models-dir"),
            "{text}"
        );
        let missing = detect(&tmp.path().join("nope")).unwrap_err();
        assert!(missing.render(crate::message::as_flags).ends_with(
            "does not exist or is not a folder; pass an existing folder as --models-dir"
        ));
    }

    #[test]
    fn lists_model_files_recursively_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        mkdirs(d, &["sub/deeper", ".hidden"]);
        for f in [
            "b.safetensors",
            "A.SafeTensors",
            "old.ckpt",
            "sub/deeper/c.safetensors",
            "notes.txt",
            "preview.png",
            ".hidden/x.safetensors",
            ".partial.safetensors",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(d, d.join("sub/loop")).unwrap();
        let found = files(d);
        let names: Vec<(&str, bool)> = found
            .iter()
            .map(|f| (f.name.as_str(), f.safetensors))
            .collect();
        assert_eq!(
            names,
            [
                ("A", true),
                ("b", true),
                ("old", false),
                ("sub/deeper/c", true)
            ]
        );
        assert_eq!(found[3].path, d.join("sub/deeper/c.safetensors"));
    }
}
