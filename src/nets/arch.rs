//! Built-in full-size architectures (`models/arch/*.json`): the config fields of SD 1.5, SD 2.1
//! and SDXL base that shape the networks, so `seedling bench --arch … --random-weights` can
//! measure real-size networks offline, without any download. bench/compare_diffusers.py builds
//! the same networks in diffusers from the same files.

use super::clip::ClipTextModel;
use super::unet::UNet;
use super::vae::VaeDecoder;
use crate::models::{reference, Family};
use crate::{Error, Result};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Sd15,
    Sd21,
    Sdxl,
}

impl Arch {
    pub(crate) const ALL: [Arch; 3] = [Arch::Sd15, Arch::Sd21, Arch::Sdxl];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Arch::Sd15 => "sd15",
            Arch::Sd21 => "sd21",
            Arch::Sdxl => "sdxl",
        }
    }

    pub fn configs(self) -> ArchConfigs {
        let family = match self {
            Arch::Sd15 => Family::Sd1,
            Arch::Sd21 => Family::Sd2,
            Arch::Sdxl => Family::Sdxl,
        };
        reference::configs(family)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown architecture '{s}'; use one of: {}",
                    Arch::ALL.map(|a| a.name()).join(", ")
                ))
            })
    }
}

pub use crate::models::reference::ArchConfigs;

/// An architecture's networks with random weights (candle-nn's initialisers: Kaiming-uniform
/// linears and convolutions, unit norms). Only for timing: the outputs mean nothing.
pub struct RandomNets {
    pub text: Vec<ClipTextModel>,
    pub unet: UNet,
    pub vae: VaeDecoder,
}

/// The `VarMap` that makes the weights is dropped once the networks are built: the modules
/// hold their own references to what they use, and an f32 CPU linear layer keeps only its
/// packed copy (`seedling_kernels::linear`), so the map would otherwise hold a second copy of
/// those weights.
pub fn random_nets(configs: &ArchConfigs, dtype: DType, device: &Device) -> Result<RandomNets> {
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, dtype, device);
    let mut text = vec![ClipTextModel::new(
        vb.pp("text_encoder"),
        &configs.text_encoder,
    )?];
    if let Some(second) = &configs.text_encoder_2 {
        // SDXL's second encoder is a CLIPTextModelWithProjection (its pooled output is used).
        text.push(ClipTextModel::with_projection(
            vb.pp("text_encoder_2"),
            second,
        )?);
    }
    let unet = UNet::new(vb.pp("unet"), &configs.unet.spec()?)?;
    let vae = vae_decoder(configs, vb)?;
    Ok(RandomNets { text, unet, vae })
}

/// The architecture's VAE decoder alone, with random weights (what `seedling bench --vae-only`
/// measures: its memory without the other networks').
pub struct RandomVae {
    pub vae: VaeDecoder,
}

pub fn random_vae(configs: &ArchConfigs, dtype: DType, device: &Device) -> Result<RandomVae> {
    let vars = VarMap::new();
    let vae = vae_decoder(configs, VarBuilder::from_varmap(&vars, dtype, device))?;
    Ok(RandomVae { vae })
}

fn vae_decoder(configs: &ArchConfigs, vb: VarBuilder) -> Result<VaeDecoder> {
    let vae = VaeDecoder::new(
        vb.pp("vae"),
        configs.vae.out_channels,
        &configs.vae.to_candle()?,
    )?;
    Ok(vae)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_architecture_parses_and_is_accepted() {
        for arch in Arch::ALL {
            let c = arch.configs();
            let spec = c.unet.spec().unwrap();
            c.vae.to_candle().unwrap();
            assert_eq!(spec.addition.is_some(), arch == Arch::Sdxl, "{arch}");
            assert_eq!(c.text_encoder_2.is_some(), arch == Arch::Sdxl, "{arch}");
            assert_eq!(c.vae.scale_factor(), 8);
            crate::sampler::SchedulerConfig::from_json(&c.scheduler.to_string()).unwrap();
        }
        assert!("sd3".parse::<Arch>().is_err());
    }
}
