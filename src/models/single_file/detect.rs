//! Which family a single-file checkpoint is, from its key prefixes alone (never from tensor
//! widths: in a small model both SDXL encoders can be equally wide). The prefixes are those of
//! the original repos: LDM's `LatentDiffusion` (`model.diffusion_model.`, `first_stage_model.`,
//! `cond_stage_model.`: CompVis/stable-diffusion, Stability-AI/stablediffusion) and SGM's
//! `DiffusionEngine` (`conditioner.embedders.N.`: Stability-AI/generative-models).

use crate::models::Family;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub(crate) const UNET: &str = "model.diffusion_model.";
pub(crate) const VAE: &str = "first_stage_model.";
/// SD 1.x: transformers' CLIPTextModel inside `FrozenCLIPEmbedder`.
pub(crate) const SD1_TEXT: &str = "cond_stage_model.transformer.";
/// SD 2.x: `FrozenOpenCLIPEmbedder` holding an open_clip model.
pub(crate) const SD2_TEXT: &str = "cond_stage_model.model.";
/// SDXL: CLIP ViT-L (transformers layout) and OpenCLIP ViT-bigG (open_clip layout).
pub(crate) const SDXL_TEXT: &str = "conditioner.embedders.0.transformer.";
pub(crate) const SDXL_TEXT_2: &str = "conditioner.embedders.1.model.";

/// The family whose text encoder prefixes the keys hold; an error naming the file and the
/// prefixes found when there is no UNet or no known text encoder.
pub fn family<'a>(keys: impl Iterator<Item = &'a str> + Clone, path: &Path) -> Result<Family> {
    family_of_keys(keys.clone()).ok_or_else(|| unknown_layout(keys, path))
}

/// The family of a checkpoint with these keys: a UNet, a VAE and a known text encoder; `None`
/// for anything else (also what `seedling models` lists as "unknown").
pub fn family_of_keys<'a>(keys: impl Iterator<Item = &'a str> + Clone) -> Option<Family> {
    let has = |prefix: &str| keys.clone().any(|k| k.starts_with(prefix));
    if !(has(UNET) && has(VAE)) {
        return None;
    }
    if has(SDXL_TEXT) && has(SDXL_TEXT_2) {
        Some(Family::Sdxl)
    } else if has(SD2_TEXT) {
        Some(Family::Sd2)
    } else if has(SD1_TEXT) {
        Some(Family::Sd1)
    } else {
        None
    }
}

/// "unknown key layout", listing the most common two-part prefixes so the user can tell what
/// the file is (a LoRA, a diffusers-layout UNet, another architecture).
fn unknown_layout<'a>(keys: impl Iterator<Item = &'a str>, path: &Path) -> Error {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for key in keys {
        let prefix: Vec<&str> = key.splitn(3, '.').take(2).collect();
        *counts.entry(prefix.join(".")).or_default() += 1;
    }
    let mut common: Vec<(String, usize)> = counts.into_iter().collect();
    common.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let found = common
        .iter()
        .take(6)
        .map(|(p, n)| format!("{p}.* ({n})"))
        .collect::<Vec<_>>()
        .join(", ");
    Error::Model(format!(
        "{} has an unknown key layout: it is not an SD 1.x, SD 2.x or SDXL checkpoint (found {}); \
         seedling reads single files with a UNet under {UNET}, a VAE under {VAE} and a text \
         encoder under cond_stage_model. or conditioner.embedders.",
        path.display(),
        if found.is_empty() {
            "no tensors".to_string()
        } else {
            found
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(keys: &[&str]) -> Result<Family> {
        family(keys.iter().copied(), Path::new("x.safetensors"))
    }

    const UNET_KEY: &str = "model.diffusion_model.out.2.weight";
    const VAE_KEY: &str = "first_stage_model.decoder.conv_in.weight";

    #[test]
    fn families_come_from_the_text_encoder_prefixes() {
        let sd1 = "cond_stage_model.transformer.text_model.final_layer_norm.weight";
        let sd2 = "cond_stage_model.model.ln_final.weight";
        let xl0 = "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight";
        let xl1 = "conditioner.embedders.1.model.ln_final.weight";
        assert_eq!(detect(&[UNET_KEY, VAE_KEY, sd1]).unwrap(), Family::Sd1);
        assert_eq!(detect(&[UNET_KEY, VAE_KEY, sd2]).unwrap(), Family::Sd2);
        assert_eq!(
            detect(&[UNET_KEY, VAE_KEY, xl0, xl1]).unwrap(),
            Family::Sdxl
        );
        // One SDXL encoder alone is no known layout.
        assert!(detect(&[UNET_KEY, VAE_KEY, xl0]).is_err());
        assert!(detect(&[UNET_KEY, sd1]).is_err());
    }

    #[test]
    fn an_unknown_layout_names_the_file_and_what_it_holds() {
        let err = detect(&["down_blocks.0.resnets.0.conv1.weight", "conv_in.weight"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "x.safetensors has an unknown key layout: it is not an SD 1.x, SD 2.x or SDXL \
             checkpoint (found conv_in.weight.* (1), down_blocks.0.* (1)); seedling reads single \
             files with a UNet under model.diffusion_model., a VAE under first_stage_model. and a \
             text encoder under cond_stage_model. or conditioner.embedders."
        );
    }
}
