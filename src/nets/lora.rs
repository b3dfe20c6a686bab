//! LoRA applied where the networks read their weights: a `VarBuilder` whose named weights come
//! back as `W + Δ` (Δ from `models::lora`), so the networks' own `new(vs, …)` code is unchanged
//! and a model without LoRAs reads exactly the tensors it always did.
//!
//! The deltas are merged into the weights ("fused", as A1111's and ComfyUI's LoRA loaders do by
//! default) rather than run as a side branch (diffusers' `set_adapters`); the fixtures' README
//! measures the two within 1.1e-6 of each other in the image.

use crate::models::lora::{LoraLayer, Network};
use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use std::collections::{BTreeMap, HashMap};

/// Per network, weight name → the f32 change the LoRAs make to it.
pub type Deltas = BTreeMap<Network, HashMap<String, Tensor>>;

/// The summed deltas of `loras` (each resolved against the model, with its UNet and text
/// encoder strengths), per network; several LoRAs on one weight add up.
pub fn deltas<'a>(
    loras: impl IntoIterator<Item = (Vec<(Network, String, &'a LoraLayer)>, f64, f64)>,
) -> crate::Result<Deltas> {
    let mut out = Deltas::new();
    for (resolved, unet, text_encoder) in loras {
        for (net, name, layer) in resolved {
            let strength = match net {
                Network::Unet => unet,
                Network::TextEncoder | Network::TextEncoder2 => text_encoder,
            };
            let delta = layer.delta(strength)?;
            let slot = out.entry(net).or_default();
            let summed = match slot.remove(&name) {
                Some(before) => {
                    let delta = delta.reshape(before.shape())?;
                    (before + delta)?
                }
                None => delta,
            };
            slot.insert(name, summed);
        }
    }
    Ok(out)
}

/// The weights of `inner`, with `deltas` (weight name → f32 change, any shape with the weight's
/// element count) added to the ones they name.
struct Patched {
    inner: VarBuilder<'static>,
    deltas: HashMap<String, Tensor>,
}

impl Patched {
    /// `weight` with its delta added in f32, then in `dtype`.
    fn patch(&self, name: &str, weight: Tensor, dtype: DType) -> Result<Tensor> {
        match self.deltas.get(name) {
            None => weight.to_dtype(dtype),
            Some(delta) => {
                let delta = delta.to_device(weight.device())?.reshape(weight.shape())?;
                (weight.to_dtype(DType::F32)? + delta)?.to_dtype(dtype)
            }
        }
    }
}

impl SimpleBackend for Patched {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let w = self.inner.get_with_hints_dtype(s, name, h, dtype)?;
        self.patch(name, w, dtype)?.to_device(dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        let w = self.inner.get_unchecked_dtype(name, dtype)?;
        self.patch(name, w, dtype)?.to_device(dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner.contains_tensor(name)
    }
}

/// `vb` with `deltas` added to the weights they name (full names, as in the network's file);
/// `vb` itself when there are none, so a model without LoRAs takes the path it always took.
pub fn with_deltas(
    vb: VarBuilder<'static>,
    deltas: HashMap<String, Tensor>,
) -> VarBuilder<'static> {
    if deltas.is_empty() {
        return vb;
    }
    let (dtype, device) = (vb.dtype(), vb.device().clone());
    VarBuilder::from_backend(Box::new(Patched { inner: vb, deltas }), dtype, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::lora::{self, Network};
    use std::collections::BTreeMap;
    use std::path::Path;

    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
    }

    /// Through the patched builder a targeted weight reads `W + Δ` and every other tensor reads
    /// exactly as before; the fixture LoRA's 72 UNet layers all land.
    #[test]
    fn patched_weights_read_w_plus_delta_and_others_unchanged() {
        let dev = Device::Cpu;
        let unet = fixtures().join("tiny-sd/unet/diffusion_pytorch_model.safetensors");
        let plain = seedling_kernels::mmap::var_builder(&unet, DType::F32, &dev).unwrap();
        let file = lora::read(
            &fixtures().join("wild/loras/tiny-sd1-lora.safetensors"),
            &dev,
        )
        .unwrap();
        let tensors = candle_core::safetensors::load(&unet, &dev).unwrap();
        let names: Vec<(String, Vec<usize>)> = tensors
            .iter()
            .map(|(k, v)| (k.clone(), v.dims().to_vec()))
            .collect();
        let te = fixtures().join("tiny-sd/text_encoder/model.safetensors");
        let te_names = candle_core::safetensors::load(&te, &dev)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.dims().to_vec()))
            .collect();
        let targets = BTreeMap::from([(Network::Unet, names), (Network::TextEncoder, te_names)]);
        let resolved: Vec<_> = lora::resolve(&file, &targets)
            .unwrap()
            .into_iter()
            .filter(|(net, _, _)| *net == Network::Unet)
            .collect();
        assert_eq!(resolved.len(), 72);
        let deltas: HashMap<String, Tensor> = resolved
            .iter()
            .map(|(_, name, l)| (name.clone(), l.delta(0.8).unwrap()))
            .collect();
        let patched = with_deltas(plain.clone(), deltas.clone());
        for (name, t) in &tensors {
            let got = patched.get_unchecked_dtype(name, DType::F32).unwrap();
            let want = match deltas.get(name) {
                Some(d) => (t + d.reshape(t.shape()).unwrap()).unwrap(),
                None => t.clone(),
            };
            let diff = (got - &want).unwrap().abs().unwrap().flatten_all().unwrap();
            let diff = diff.max(0).unwrap().to_scalar::<f32>().unwrap();
            assert_eq!(diff, 0.0, "{name}");
            if deltas.contains_key(name) {
                let moved = (t - &want).unwrap().abs().unwrap().flatten_all().unwrap();
                assert!(
                    moved.max(0).unwrap().to_scalar::<f32>().unwrap() > 0.0,
                    "{name}"
                );
            }
        }
    }
}
