//! `--vae FILE.safetensors`: a VAE in one file, in any of the layouts they are shared in: a
//! whole checkpoint (its `first_stage_model.`), an LDM `AutoencoderKL` alone (e.g.
//! stabilityai's vae-ft-mse-840000-ema-pruned.safetensors, sdxl_vae.safetensors), or
//! diffusers' names. Its config is the model's (the latent space must be the model's anyway),
//! with the widths its shapes tell.

use super::detect::VAE;
use super::header::Header;
use super::keys::{vae_levels, KeyMap, Source, Transform};
use super::{shapes, vae_keys};
use crate::models::configs::VaeJson;
use crate::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// The VAE config for the file at `path` and the renaming it is read under.
pub(crate) fn open(path: &Path, model_vae: &VaeJson) -> Result<(VaeJson, Option<Arc<KeyMap>>)> {
    super::refuse_pickle(path)?;
    let header = Header::read(path)?;
    let keys = || header.tensors.keys().map(String::as_str);
    let map = if keys().any(|k| k.starts_with("decoder.up_blocks.")) {
        // diffusers' own names: read as they are.
        keys()
            .map(|k| (k.to_string(), source(k, Transform::Copy)))
            .collect()
    } else {
        let prefix = if keys().any(|k| k.starts_with(VAE)) {
            VAE
        } else {
            ""
        };
        ldm(&header, prefix, path)?
    };
    let mut vae = model_vae.clone();
    shapes::vae(&mut vae, &map, &header, path)?;
    if vae.latent_channels != model_vae.latent_channels {
        return Err(Error::Model(format!(
            "the VAE {} has {} latent channels, the model needs {}; use a VAE made for this \
             model family",
            path.display(),
            vae.latent_channels,
            model_vae.latent_channels
        )));
    }
    Ok((vae, Some(Arc::new(map))))
}

fn source(key: &str, transform: Transform) -> Source {
    Source {
        key: key.to_string(),
        transform,
    }
}

/// The LDM VAE keys under `prefix`; other keys of a whole checkpoint are left alone.
fn ldm(header: &Header, prefix: &str, path: &Path) -> Result<KeyMap> {
    let keys = header
        .tensors
        .keys()
        .filter_map(|k| Some((k, k.strip_prefix(prefix)?)));
    let levels = vae_levels(keys.clone().map(|(_, rest)| rest));
    let mut map = KeyMap::new();
    for (key, rest) in keys {
        match vae_keys::rename(rest, levels) {
            Some((name, conv)) => {
                let four_d = header.tensors[key].shape.len() == 4;
                let t = if conv && four_d {
                    Transform::ConvAsLinear
                } else {
                    Transform::Copy
                };
                map.insert(name, source(key, t));
            }
            // A whole checkpoint's other parts, or a VAE file's training leftovers.
            None if !prefix.is_empty() || !rest.starts_with("decoder.") => {}
            None => {
                return Err(Error::Model(format!(
                    "{} is not a VAE seedling can read: it has the tensor {key}",
                    path.display()
                )))
            }
        }
    }
    if levels == 0 {
        return Err(Error::Model(format!(
            "{} holds no VAE decoder (no decoder.up.* or decoder.up_blocks.* tensors); pass an \
             AutoencoderKL or a checkpoint",
            path.display()
        )));
    }
    Ok(map)
}
