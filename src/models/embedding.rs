//! Textual-inversion embeddings as AUTOMATIC1111 saves them, read into the vectors each text
//! encoder gets (modules/textual_inversion/textual_inversion.py `create_embedding_from_data`):
//! `emb_params` (A1111's own safetensors), `string_to_param` with one entry (the original
//! textual-inversion layout; its one key is usually `*`), or SDXL's `clip_l` + `clip_g`.
//! A word of the prompt that names the embedding stands for its vectors, one token each.

use crate::text::Word;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The largest file read as an embedding: 75 vectors of SDXL's 768 + 1280 floats in f32 are
/// 615 KB, so anything past this is something else.
const MAX_BYTES: u64 = 16 << 20;

/// An embedding's vectors: n × width for the first text encoder, and for SDXL's second.
#[derive(Debug)]
pub struct Embedding {
    pub path: PathBuf,
    /// The word that calls it: the file's stem, as A1111 and ComfyUI name embeddings.
    pub name: String,
    pub first: Tensor,
    /// SDXL's OpenCLIP bigG vectors (`clip_g`).
    pub second: Option<Tensor>,
}

impl Embedding {
    /// How many tokens the embedding stands for.
    pub fn vectors(&self) -> usize {
        self.first.dims()[0]
    }

    /// The embedding as the tokenizer places it.
    pub(crate) fn word(&self) -> Word<'_> {
        Word {
            name: &self.name,
            vectors: self.vectors(),
        }
    }
}

/// Reads the embedding file at `path` (safetensors; pickled `.pt` files are not read).
pub fn read(path: &Path, device: &Device) -> Result<Embedding> {
    let bad = |why: String| Error::Invalid(format!("embedding {}: {why}", path.display()));
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pt") || e.eq_ignore_ascii_case("bin"))
    {
        return Err(bad(
            "it is a pickle (.pt/.bin), which seedling never loads (it can run code); convert it \
             to .safetensors first"
                .into(),
        ));
    }
    // Embeddings are kilobytes; a checkpoint or LoRA in the wrong folder is refused before it
    // is read into memory.
    let bytes = std::fs::metadata(path)
        .map_err(|e| Error::io("cannot read", path, e))?
        .len();
    if bytes > MAX_BYTES {
        return Err(bad(format!(
            "it is {} MB, where a textual-inversion embedding is a few KB; is it a checkpoint or \
             a LoRA in the embeddings folder?",
            bytes / 1_000_000
        )));
    }
    let mut tensors = candle_core::safetensors::load(path, device)
        .map_err(|e| bad(format!("cannot read it as safetensors: {e}")))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (first, second) = vectors(&mut tensors).map_err(bad)?;
    for (which, t) in std::iter::once(("first", &first)).chain(second.iter().map(|t| ("clip_g", t)))
    {
        if t.dims().len() != 2 || t.dims()[0] == 0 {
            return Err(bad(format!(
                "its {which} vectors have shape {:?}; expected n × width",
                t.dims()
            )));
        }
    }
    if let Some(g) = &second {
        if g.dims()[0] != first.dims()[0] {
            return Err(bad(format!(
                "clip_l has {} vectors but clip_g {}; they must match",
                first.dims()[0],
                g.dims()[0]
            )));
        }
    }
    Ok(Embedding {
        path: path.to_path_buf(),
        name,
        first,
        second,
    })
}

/// The vectors of an A1111 embedding's tensors; the error lists what the file holds.
fn vectors(
    tensors: &mut HashMap<String, Tensor>,
) -> std::result::Result<(Tensor, Option<Tensor>), String> {
    if let Some(t) = tensors.remove("emb_params") {
        return Ok((t, None));
    }
    if let (Some(l), Some(g)) = (tensors.remove("clip_l"), tensors.remove("clip_g")) {
        return Ok((l, Some(g)));
    }
    let params: Vec<&String> = tensors
        .keys()
        .filter(|k| k.starts_with("string_to_param."))
        .collect();
    if let [key] = params.as_slice() {
        let key = (*key).clone();
        return Ok((tensors.remove(&key).expect("listed"), None));
    }
    let mut keys: Vec<&str> = tensors.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys.truncate(5);
    Err(format!(
        "not a textual-inversion embedding (expected emb_params, clip_l + clip_g, or one \
         string_to_param entry; it holds {})",
        keys.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    #[test]
    fn the_fixture_embedding_is_two_vectors_named_by_its_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/wild/embeddings/tinystyle.safetensors");
        let e = read(&path, &Device::Cpu).unwrap();
        assert_eq!(e.name, "tinystyle");
        assert_eq!(e.first.dims(), [2, 32]);
        assert_eq!(e.vectors(), 2);
        assert!(e.second.is_none());
    }

    #[test]
    fn layouts_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let t = |n: usize, w: usize| Tensor::ones((n, w), DType::F32, &Device::Cpu).unwrap();
        let save = |name: &str, tensors: Vec<(&str, Tensor)>| {
            let path = dir.path().join(name);
            let map: HashMap<String, Tensor> = tensors
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            candle_core::safetensors::save(&map, &path).unwrap();
            path
        };
        let xl = read(
            &save(
                "xl.safetensors",
                vec![("clip_l", t(3, 8)), ("clip_g", t(3, 16))],
            ),
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!((xl.vectors(), xl.second.unwrap().dims()[1]), (3, 16));
        let old = read(
            &save("old.safetensors", vec![("string_to_param.*", t(1, 8))]),
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!(old.vectors(), 1);
        let e = read(
            &save(
                "lora.safetensors",
                vec![("lora_unet_x.lora_down.weight", t(4, 8))],
            ),
            &Device::Cpu,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("not a textual-inversion embedding") && e.contains("lora_unet_x"),
            "{e}"
        );
        let e = read(
            &save(
                "odd.safetensors",
                vec![("clip_l", t(3, 8)), ("clip_g", t(2, 16))],
            ),
            &Device::Cpu,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("clip_l has 3 vectors but clip_g 2"), "{e}");
        let big = dir.path().join("big.safetensors");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_BYTES + 1)
            .unwrap();
        let e = read(&big, &Device::Cpu).unwrap_err().to_string();
        assert!(
            e.contains("it is 16 MB, where a textual-inversion embedding is"),
            "{e}"
        );
        let e = read(&dir.path().join("x.pt"), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pickle") && e.contains("x.pt"), "{e}");
    }
}
