//! Every tensor of a single-file checkpoint, assigned to a component under its diffusers name
//! (the names seedling's networks ask for), with the reshaping the original layout needs.
//! Checkpoints are read as they are (no converted copy on disk): `nets::checkpoint` serves
//! each diffusers name from the file's key through this map.

use super::detect::{SD1_TEXT, SD2_TEXT, SDXL_TEXT, SDXL_TEXT_2, UNET, VAE};
use super::header::Header;
use super::{clip_keys, unet_keys, vae_keys};
use crate::models::Family;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// How a stored tensor becomes the one a network asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Copy,
    /// A 1×1 convolution weight [out, in, 1, 1] standing for a linear's [out, in].
    ConvAsLinear,
    /// Part `index` of `of` equal parts along dim 0 (open_clip's stacked q/k/v projection).
    Chunk {
        index: usize,
        of: usize,
    },
    /// [in, out] → [out, in].
    Transpose,
}

/// Where a diffusers-named tensor comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub key: String,
    pub transform: Transform,
}

/// One component's tensors: diffusers name → source.
pub type KeyMap = BTreeMap<String, Source>;

/// What one stored key becomes.
#[derive(Debug)]
pub(crate) enum Rename {
    To(Vec<(String, Transform)>),
    /// A known tensor no network reads (buffers, the unused SD 2.x text block).
    Unused,
    Unknown,
}

impl Rename {
    pub(crate) fn to(name: &str, transform: Transform) -> Rename {
        Rename::To(vec![(name.to_string(), transform)])
    }
}

/// What the mapping needs from the configs: the counts the key names are numbered by.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub family: Family,
    pub unet_layers_per_block: usize,
    pub text_layers: usize,
    pub text_2_layers: usize,
}

/// A checkpoint's tensors by component.
#[derive(Debug, Default)]
pub struct Mapping {
    pub unet: KeyMap,
    pub vae: KeyMap,
    pub text_encoder: KeyMap,
    pub text_encoder_2: KeyMap,
    /// Stored keys no network reads.
    pub unused: Vec<String>,
}

/// LatentDiffusion's registered schedule buffers, saved in SD 1.x/2.x files and recomputed by
/// every loader from the scheduler config (ldm/models/diffusion/ddpm.py `register_schedule`).
const SCHEDULE_BUFFERS: [&str; 12] = [
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
];

/// Prefixes of training state some files carry: EMA copies, SGM's denoiser sigmas.
const TRAINING_STATE: [&str; 3] = ["model_ema.", "denoiser.", "loss."];
/// Empty marker tensors saying how the model was trained (`single_file::variant` reads them).
const MARKERS: [&str; 2] = ["v_pred", "ztsnr"];

/// Maps every key of `header`; a key under a component's prefix that the layout does not know,
/// or two keys for one name, is an error naming the file and the keys.
pub fn map(header: &Header, layout: &Layout, path: &Path) -> Result<Mapping> {
    let levels = vae_levels(header.tensors.keys().filter_map(|k| k.strip_prefix(VAE)));
    let mut mapping = Mapping::default();
    let mut unknown = Vec::new();
    for (key, info) in &header.tensors {
        let (component, rename) = rename(key, layout, levels);
        match (component, rename) {
            (Some(c), Rename::To(targets)) => {
                for (name, mut transform) in targets {
                    // Some VAE files store the attention projections as linears already.
                    if transform == Transform::ConvAsLinear && info.shape.len() != 4 {
                        transform = Transform::Copy;
                    }
                    let source = Source {
                        key: key.clone(),
                        transform,
                    };
                    if let Some(old) = mapping.component(c).insert(name.clone(), source) {
                        return Err(Error::Model(format!(
                            "{}: both {} and {key} would be the tensor {name}",
                            path.display(),
                            old.key
                        )));
                    }
                }
            }
            (None, Rename::Unused) | (Some(_), Rename::Unused) => mapping.unused.push(key.clone()),
            _ => unknown.push(key.as_str()),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::Model(format!(
            "{} has {} tensors this {} layout does not have (e.g. {}); it is not a checkpoint \
             seedling can read",
            path.display(),
            unknown.len(),
            layout.family.name(),
            unknown
                .iter()
                .take(3)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(mapping)
}

#[derive(Debug, Clone, Copy)]
enum Component {
    Unet,
    Vae,
    Text,
    Text2,
}

impl Mapping {
    fn component(&mut self, c: Component) -> &mut KeyMap {
        match c {
            Component::Unet => &mut self.unet,
            Component::Vae => &mut self.vae,
            Component::Text => &mut self.text_encoder,
            Component::Text2 => &mut self.text_encoder_2,
        }
    }
}

/// The component a key belongs to and its diffusers name(s).
fn rename(key: &str, layout: &Layout, vae_levels: usize) -> (Option<Component>, Rename) {
    if let Some(rest) = key.strip_prefix(UNET) {
        let name = unet_keys::rename(rest, layout.unet_layers_per_block);
        return (Some(Component::Unet), opt(name, Transform::Copy));
    }
    if let Some(rest) = key.strip_prefix(VAE) {
        let renamed = match vae_keys::rename(rest, vae_levels) {
            Some((name, true)) => Rename::to(&name, Transform::ConvAsLinear),
            other => opt(other.map(|(name, _)| name), Transform::Copy),
        };
        return (Some(Component::Vae), renamed);
    }
    let text = match layout.family {
        Family::Sd1 => key.strip_prefix(SD1_TEXT).map(clip_keys::rename_hf),
        Family::Sd2 => key
            .strip_prefix(SD2_TEXT)
            .map(|r| clip_keys::rename_open_clip(r, layout.text_layers, false)),
        Family::Sdxl => key.strip_prefix(SDXL_TEXT).map(clip_keys::rename_hf),
    };
    if let Some(text) = text {
        return (Some(Component::Text), text);
    }
    if layout.family == Family::Sdxl {
        if let Some(rest) = key.strip_prefix(SDXL_TEXT_2) {
            let renamed = clip_keys::rename_open_clip(rest, layout.text_2_layers, true);
            return (Some(Component::Text2), renamed);
        }
    }
    let known = SCHEDULE_BUFFERS.contains(&key)
        || MARKERS.contains(&key)
        || TRAINING_STATE.iter().any(|p| key.starts_with(p));
    (
        None,
        if known {
            Rename::Unused
        } else {
            Rename::Unknown
        },
    )
}

fn opt(name: Option<String>, transform: Transform) -> Rename {
    match name {
        Some(n) => Rename::to(&n, transform),
        None => Rename::Unknown,
    }
}

/// How many `decoder.up.{i}` levels the VAE keys hold (diffusers reverses their order).
pub(crate) fn vae_levels<'a>(vae_keys: impl Iterator<Item = &'a str>) -> usize {
    vae_keys
        .filter_map(|k| {
            k.strip_prefix("decoder.up.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map_or(0, |m| m + 1)
}
