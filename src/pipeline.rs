//! The denoising loop: prompt embeddings → initial noise → sampler steps → VAE decode → RGB.
//!
//! Follows diffusers' `StableDiffusionPipeline.__call__`: classifier-free guidance runs the
//! unconditional and conditional inputs as one UNet batch `[uncond, cond]` and combines
//! `uncond + cfg · (cond − uncond)`; guidance ≤ 1 runs the conditional pass alone. Latents and
//! sampler math stay f32; only the networks run in the model dtype.

use crate::models::embedding::Embedding;
use crate::models::{ModelInfo, WeightFiles};
use crate::nets::unet::AddedCond;
use crate::nets::Components;
use crate::noise::BatchNoise;
use crate::provenance::sha256_hex;
use crate::recipe::{ModelDType, Recipe};
use crate::sampler::{self, SchedulerConfig};
use crate::{Error, ErrorKind, Message, Result, Setting};
use candle_core::{DType, Device, Tensor};
use image::RgbImage;
use std::sync::Arc;

/// What a progress callback tells the pipeline: go on, or stop after this step (Ctrl-C).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// What the pipeline reports while it runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress {
    /// Denoising step `done` of `total` finished.
    Step { done: usize, total: usize },
    /// The VAE is decoding.
    Decoding,
}

/// One generated image and the facts its provenance records.
pub(crate) struct Generated {
    pub image: RgbImage,
    /// sha256 of the initial noise (f32 LE, before `init_noise_sigma`).
    pub noise_sha256: String,
}

/// A loaded model, reusable across recipes of the same model and dtype.
pub(crate) struct Pipeline {
    components: Components,
    scheduler: SchedulerConfig,
    latent_channels: usize,
    latent_factor: usize,
    scaling_factor: f64,
    force_zeros_for_empty_prompt: bool,
    model_dtype: ModelDType,
}

impl Pipeline {
    pub(crate) fn load(
        info: &ModelInfo,
        weights: &WeightFiles,
        dtype: ModelDType,
        device: &Device,
        deltas: &crate::nets::lora::Deltas,
    ) -> Result<Self> {
        Ok(Self {
            components: Components::load_with(info, weights, dtype, device, deltas)?,
            scheduler: info.scheduler.clone(),
            latent_channels: info.unet.in_channels,
            latent_factor: info.latent_factor() as usize,
            scaling_factor: info.vae.scaling_factor,
            force_zeros_for_empty_prompt: info.force_zeros_for_empty_prompt,
            model_dtype: dtype,
        })
    }

    /// Renders several recipes with one UNet call per step. They must agree on everything but
    /// prompt, negative prompt, seed, rng and variation (see `batchable`). Each image has its
    /// own noise stream, and the VAE decodes one image at a time, so an image is the same
    /// whatever batch it runs in (tests/it/batch.rs checks it).
    /// `embeddings[i]` are the textual inversions recipe `i`'s prompts may name.
    pub(crate) fn generate_batch(
        &self,
        recipes: &[Recipe],
        embeddings: &[Vec<Arc<Embedding>>],
        progress: &mut dyn FnMut(Progress) -> Flow,
    ) -> Result<Vec<Generated>> {
        let Some(first) = recipes.first() else {
            return Ok(Vec::new());
        };
        if let Some(other) = recipes.iter().find(|r| !batchable(first, r)) {
            return Err(Error::Invalid(format!(
                "seed {} cannot share a batch with seed {}: they differ in more than prompt, seed and noise",
                other.seed, first.seed
            )));
        }
        if first.dtype != self.model_dtype {
            return Err(Error::Invalid(format!(
                "the pipeline was loaded in {} but the recipe asks for {}",
                self.model_dtype, first.dtype
            )));
        }
        let c = &self.components;
        let b = recipes.len();
        let guided = first.cfg > 1.0;
        if embeddings.len() != recipes.len() {
            return Err(Error::Invalid(format!(
                "{} recipes but embeddings for {}",
                recipes.len(),
                embeddings.len()
            )));
        }
        let (context, added) = self.conditioning(recipes, embeddings, guided)?;
        let mut sampler = sampler::build(
            first.sampler,
            first.schedule,
            &self.scheduler,
            first.steps as usize,
            first.eta,
        )?;
        let shape = [
            b,
            self.latent_channels,
            first.height as usize / self.latent_factor,
            first.width as usize / self.latent_factor,
        ];
        let mut noise = BatchNoise::new(recipes.iter().map(noise_source).collect());
        let init = noise.draw(&shape);
        let per_image = init.len() / b;
        let noise_sha256: Vec<String> = init
            .chunks(per_image)
            .map(|n| sha256_hex(&f32_le_bytes(n)))
            .collect();
        let mut latents = (Tensor::from_vec(init, &shape[..], &Device::Cpu)?
            .to_device(&c.device)?
            * sampler.init_noise_sigma())?;

        let calls = sampler.timesteps().len();
        for i in 0..calls {
            let t = sampler.timesteps()[i];
            let input = if guided {
                Tensor::cat(&[&latents, &latents], 0)?
            } else {
                latents.clone()
            };
            let input = sampler.scale_model_input(&input, i)?.to_dtype(c.dtype)?;
            let out = c
                .unet
                .forward(&input, t, &context, added.as_ref())?
                .to_dtype(DType::F32)?;
            let guided_out = if guided {
                let (uncond, cond) = (out.narrow(0, 0, b)?, out.narrow(0, b, b)?);
                (&uncond + ((cond - &uncond)? * first.cfg)?)?
            } else {
                out
            };
            latents = sampler.step(&guided_out, i, &latents, &mut noise)?;
            if let Some(p) = step_progress(i, calls, first.steps as usize) {
                if progress(p) == Flow::Stop {
                    return Err(Error::Interrupted);
                }
            }
        }

        progress(Progress::Decoding);
        let latents = (latents / self.scaling_factor)?.to_dtype(c.vae_dtype)?;
        let mut out = Vec::with_capacity(b);
        for (row, noise_sha256) in noise_sha256.into_iter().enumerate() {
            let decoded = c
                .vae
                .decode(&latents.narrow(0, row, 1)?)?
                .to_dtype(DType::F32)?;
            out.push(Generated {
                image: to_rgb8(&decoded)?,
                noise_sha256,
            });
        }
        Ok(out)
    }

    /// The UNet's conditioning for a batch: `[uncond…, cond…]` rows with guidance (the
    /// negative prompt, "" when none, as diffusers), else `[cond…]`; and for SDXL the pooled
    /// embeddings and size ids of the same rows. SDXL with `force_zeros_for_empty_prompt` uses
    /// all-zero negative conditioning when the negative prompt is empty.
    fn conditioning(
        &self,
        recipes: &[Recipe],
        embeddings: &[Vec<Arc<Embedding>>],
        guided: bool,
    ) -> Result<(Tensor, Option<AddedCond>)> {
        let text = &self.components.text;
        let mut rows = Vec::with_capacity(recipes.len() * 2);
        let conds = recipes
            .iter()
            .zip(embeddings)
            .map(|(r, e)| text.condition(&r.prompt, "prompt", r.truncate_prompt, e))
            .collect::<Result<Vec<_>>>()?;
        if guided {
            for ((r, e), cond) in recipes.iter().zip(embeddings).zip(&conds) {
                rows.push(
                    if r.negative_prompt.is_empty() && self.force_zeros_for_empty_prompt {
                        cond.zeros_like()?
                    } else {
                        let negative = &r.negative_prompt;
                        text.condition(negative, "negative prompt", r.truncate_prompt, e)?
                    },
                );
            }
        }
        rows.extend(conds);
        let context = Tensor::cat(&rows.iter().map(|c| &c.context).collect::<Vec<_>>(), 0)?;
        let pooled: Option<Vec<&Tensor>> = rows.iter().map(|c| c.pooled.as_ref()).collect();
        let added = match pooled {
            Some(pooled) => Some(AddedCond::for_size(
                &pooled,
                recipes[0].height,
                recipes[0].width,
            )?),
            None => None,
        };
        Ok((context, added))
    }
}

/// What to report after UNet call `call` (0-based) of `calls` for a recipe of `steps` steps:
/// the steps done of the steps asked for, or nothing after a call that finishes no step.
/// Every sampler makes one call per step but PNDM, whose first step takes two (a provisional
/// call, then the second-order redo; diffusers' `plms_timesteps` repeat a timestep), so its
/// calls outnumber its steps by one, at the start. Steps are what `--steps` asks for, what the
/// bar's total adds up and what diffusers' own progress bar counts (it skips PNDM's warm-up
/// call the same way); counting calls showed `step 1/26` for 25 steps.
pub(crate) fn step_progress(call: usize, calls: usize, steps: usize) -> Option<Progress> {
    let extra = calls.saturating_sub(steps);
    let done = (call + 1).checked_sub(extra).filter(|&d| d > 0)?;
    Some(Progress::Step {
        done,
        total: calls - extra,
    })
}

/// Whether two recipes can run in one batch: equal but for what each image draws on its own
/// (prompt, negative prompt, seed, rng, variation).
pub(crate) fn batchable(a: &Recipe, b: &Recipe) -> bool {
    let strip = |r: &Recipe| Recipe {
        prompt: String::new(),
        negative_prompt: String::new(),
        seed: 0,
        rng: Default::default(),
        variation_seed: None,
        variation_strength: 0.0,
        ..r.clone()
    };
    strip(a) == strip(b)
}

/// One image's noise stream: its seed, mixed with its variation seed when it has one.
fn noise_source(r: &Recipe) -> Box<dyn crate::noise::NoiseSource> {
    let variation = r.variation_seed.map(|v| (v, r.variation_strength));
    BatchNoise::image_source(r.rng, r.seed, variation)
}

/// Refuses a dtype the device cannot run, before anything loads: candle's CPU backend has no
/// bf16 matmul or convolution.
pub fn check_device_dtype(device: &Device, dtype: ModelDType) -> Result<()> {
    if device.is_cpu() && dtype == ModelDType::Bf16 {
        let message =
            Message::text("bf16 is not supported on the CPU (candle has no CPU bf16 matmul); use ")
                .set(Setting::field("dtype"), "f32")
                .then(" or f16, or bf16 with ")
                .set(Setting::Device, "cuda");
        return Err(Error::hint(ErrorKind::BadInput, message));
    }
    Ok(())
}

/// VAE output `[1, 3, H, W]` in −1..1 → 8-bit RGB, as diffusers' postprocess:
/// `clamp(x / 2 + 0.5, 0, 1)`, then `(x * 255).round()` (numpy rounds half to even; candle's
/// cast would truncate).
pub(crate) fn to_rgb8(decoded: &Tensor) -> Result<RgbImage> {
    let (_, channels, h, w) = decoded.dims4()?;
    if channels != 3 {
        return Err(Error::Model(format!(
            "the VAE produced {channels} channels, expected 3"
        )));
    }
    let chw: Vec<f32> = decoded.squeeze(0)?.flatten_all()?.to_vec1()?;
    let plane = h * w;
    let mut rgb = Vec::with_capacity(plane * 3);
    for p in 0..plane {
        for c in 0..3 {
            let x = (chw[c * plane + p] / 2.0 + 0.5).clamp(0.0, 1.0);
            rgb.push((x * 255.0).round_ties_even() as u8);
        }
    }
    RgbImage::from_raw(w as u32, h as u32, rgb)
        .ok_or_else(|| Error::Model("decoded image has an unexpected size".into()))
}

pub(crate) fn f32_le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_steps_not_unet_calls() {
        let reports = |calls, steps| -> Vec<Option<Progress>> {
            (0..calls).map(|c| step_progress(c, calls, steps)).collect()
        };
        let step = |done, total| Some(Progress::Step { done, total });
        // PNDM: 4 calls for 3 steps, the first step's two calls report once.
        assert_eq!(reports(4, 3), [None, step(1, 3), step(2, 3), step(3, 3)]);
        assert_eq!(reports(3, 3), [step(1, 3), step(2, 3), step(3, 3)]);
        // PNDM with one step makes one call.
        assert_eq!(reports(1, 1), [step(1, 1)]);
    }
}
