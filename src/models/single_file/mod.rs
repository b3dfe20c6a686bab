//! Single-file checkpoints (`--model FILE.safetensors`): SD 1.x, SD 2.x and SDXL weights in
//! the original LDM / SGM key layout, as A1111, ComfyUI and Civitai share them. The file is
//! read in place: its header tells the family (`detect`) and `keys` maps each of its tensors
//! to the diffusers name seedling's networks ask for. What the shapes cannot tell (head counts,
//! the scheduler) comes from `--config` or the family's reference config (`reference`).
//! Pickle checkpoints (`.ckpt`) are refused: reading them means running, or at least
//! interpreting, pickle code from a stranger.

pub mod detect;
pub mod header;
pub mod keys;
pub mod model;
pub mod shapes;
pub(crate) mod vae;
pub(crate) mod variant;

mod clip_keys;
pub(crate) mod unet_keys;
mod vae_keys;

use crate::models::Family;
use crate::{Error, ErrorKind, Message, Result, Setting};
use header::Header;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A single-file checkpoint whose header has been read.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Absolute, so a replay from another working folder finds it.
    pub path: PathBuf,
    pub header: Header,
    pub family: Family,
}

impl Checkpoint {
    /// Reads the header of `path` and detects the family; refuses pickles, truncated files and
    /// unknown layouts with an error naming the file.
    pub fn open(path: &Path) -> Result<Checkpoint> {
        refuse_pickle(path)?;
        let path = std::fs::canonicalize(path)
            .map_err(|e| Error::io("cannot open checkpoint", path, e))?;
        let header = Header::read(&path)?;
        let family = detect::family(header.tensors.keys().map(String::as_str), &path)?;
        Ok(Checkpoint {
            path,
            header,
            family,
        })
    }

    /// The file name, for messages.
    pub fn file_name(&self) -> String {
        file_name(&self.path)
    }
}

/// The key under which `ModelRef.files` records a single file's sha256: one fixed name, so a
/// renamed or moved copy of the same file is the same weights (its path is only the source's
/// hint).
pub const CHECKPOINT_KEY: &str = "checkpoint";

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Whether `path` names a single weights file rather than a folder (by its extension).
pub fn is_weights_file(path: &Path) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    matches!(
        ext.as_deref(),
        Some("safetensors" | "ckpt" | "pt" | "pth" | "bin")
    )
}

/// A PyTorch pickle (by extension, or by content: a zip archive as `torch.save` writes since
/// 1.6, or a bare pickle stream) is refused with the conversion to do once, elsewhere.
pub(crate) fn refuse_pickle(path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|e| Error::io("cannot read", path, e))?;
    let zip = read == 4 && magic == *b"PK\x03\x04";
    let pickle = read >= 2 && magic[0] == 0x80 && (2..=5).contains(&magic[1]);
    if !(zip || pickle || matches!(ext.as_deref(), Some("ckpt" | "pt" | "pth" | "bin"))) {
        return Ok(());
    }
    let message = Message::text(format!(
        "{} is a PyTorch pickle checkpoint; seedling never runs pickle code, so it reads only \
         safetensors files. Convert it once with a tool you trust (e.g. `python -c \"import torch, \
         safetensors.torch as st; sd = torch.load('{name}', weights_only=True); \
         st.save_file(sd.get('state_dict', sd), '{stem}.safetensors')\"`) and pass the \
         .safetensors file to ",
        path.display(),
        name = file_name(path),
        stem = path
            .file_stem()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default(),
    ))
    .mention(Setting::Model);
    Err(Error::hint(ErrorKind::Model, message))
}

#[cfg(test)]
mod tests;
