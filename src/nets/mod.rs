//! The networks (CLIP text encoders, UNet, VAE decoder) built from a model's configs, and
//! `Components`: a model's networks loaded from its weight files for one dtype and device.
//! Their CPU layers are `seedling_kernels`'.

pub mod arch;
pub(crate) mod checkpoint;
pub mod clip;
pub mod lora;
pub mod text_encoder;
pub mod unet;
pub mod vae;

use crate::models::lora::Network;
use crate::models::single_file::keys::KeyMap;
use crate::models::{ModelInfo, WeightFiles};
use crate::recipe::ModelDType;
use crate::{Error, Result};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use clip::ClipTextModel;
use std::path::PathBuf;
use std::sync::Arc;
use text_encoder::TextEncoder;
use unet::UNet;
use vae::VaeDecoder;

/// The networks of one model, loaded for one dtype on one device.
pub struct Components {
    pub text: TextEncoder,
    pub unet: UNet,
    pub vae: VaeDecoder,
    /// The VAE's dtype: f32 for f16 models whose config sets `force_upcast`.
    pub vae_dtype: DType,
    pub dtype: DType,
    pub device: Device,
}

/// A weight file's tensors, memory-mapped; under `map`'s names for a single-file layout.
fn mapped(
    path: &std::path::Path,
    map: Option<&Arc<KeyMap>>,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    match map {
        Some(map) => checkpoint::var_builder(path, map.clone(), dtype, device),
        None => seedling_kernels::mmap::var_builder(path, dtype, device),
    }
    .map_err(|e| Error::Model(format!("cannot read weights {}: {e}", path.display())))
}

/// A network whose weights do not fit its config.
fn mismatch(what: &str, path: &std::path::Path, e: candle_core::Error) -> Error {
    Error::Model(format!(
        "the {what} weights {} do not match its config: {e}",
        path.display()
    ))
}

impl Components {
    /// The VAE decoder alone (`seedling bench --vae-only`), and the dtype it runs in.
    pub fn load_vae(
        info: &ModelInfo,
        weights: &WeightFiles,
        dtype: DType,
        device: &Device,
    ) -> Result<(VaeDecoder, DType)> {
        // diffusers upcasts the VAE to f32 for f16 pipelines when the config sets force_upcast
        // (SD's VAE overflows in f16); bf16 has f32's range and stays as is.
        let vae_dtype = if info.vae.force_upcast && dtype == DType::F16 {
            DType::F32
        } else {
            dtype
        };
        let path = &weights.vae;
        let vae = VaeDecoder::new(
            mapped(path, weights.key_maps.vae.as_ref(), vae_dtype, device)?,
            info.vae.out_channels,
            &info.vae.to_candle()?,
        )
        .map_err(|e| mismatch("vae", path, e))?;
        Ok((vae, vae_dtype))
    }

    pub fn load(
        info: &ModelInfo,
        weights: &WeightFiles,
        dtype: ModelDType,
        device: &Device,
    ) -> Result<Self> {
        Self::load_with(info, weights, dtype, device, &lora::Deltas::new())
    }

    /// `load`, with LoRA `deltas` added to the weights of the networks they name.
    pub fn load_with(
        info: &ModelInfo,
        weights: &WeightFiles,
        dtype: ModelDType,
        device: &Device,
        deltas: &lora::Deltas,
    ) -> Result<Self> {
        let dtype = dtype.candle();
        let maps = &weights.key_maps;
        let vb = |path: &PathBuf, map: &Option<Arc<KeyMap>>, dtype: DType, net: Network| {
            let vb = mapped(path, map.as_ref(), dtype, device)?;
            Ok::<_, Error>(match deltas.get(&net) {
                Some(d) => lora::with_deltas(vb, d.clone()),
                None => vb,
            })
        };
        let text_vb = vb(
            &weights.text_encoder,
            &maps.text_encoder,
            dtype,
            Network::TextEncoder,
        )?;
        let clip = ClipTextModel::new(text_vb, &info.text).map_err(|e| match e {
            Error::Candle(e) => mismatch("text encoder", &weights.text_encoder, e),
            e => e,
        })?;
        let second = match (&info.second, &weights.text_encoder_2) {
            (Some((config, _)), Some(path)) => {
                let text_vb = vb(path, &maps.text_encoder_2, dtype, Network::TextEncoder2)?;
                let model = ClipTextModel::new(text_vb, config).map_err(|e| match e {
                    Error::Candle(e) => mismatch("second text encoder", path, e),
                    e => e,
                })?;
                let tokenizer = info
                    .tokenizer2()?
                    .expect("an SDXL model has a second tokenizer");
                Some((tokenizer.clone(), model))
            }
            _ => None,
        };
        let text = TextEncoder::new(info.tokenizer()?.clone(), clip, second, device.clone());
        let unet = UNet::new(
            vb(&weights.unet, &maps.unet, dtype, Network::Unet)?,
            &info.unet.spec()?,
        )
        .map_err(|e| mismatch("unet", &weights.unet, e))?;
        let (vae, vae_dtype) = Self::load_vae(info, weights, dtype, device)?;
        Ok(Self {
            text,
            unet,
            vae,
            vae_dtype,
            dtype,
            device: device.clone(),
        })
    }
}
