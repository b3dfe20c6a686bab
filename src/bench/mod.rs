//! `seedling bench`: times the stages of generation on one set of networks (a model's, or a
//! built-in architecture with random weights) — text encoding, one UNet step with and without
//! guidance, VAE decode, and a short generation end to end — each min/median over repeats, with
//! the peak resident memory of each stage (issue 5).
//!
//! Every stage runs once untimed first (first-touch page faults, allocator warm-up, CUDA kernel
//! loading), then `repeats` timed runs. On CUDA each run ends with a device synchronize, so the
//! time is the work's, not the launch's.

pub mod memory;

use crate::nets::clip::ClipTextModel;
use crate::nets::text_encoder::{sdxl_conditioning, Conditioning};
use crate::nets::unet::{AddedCond, UNet};
use crate::noise::{BatchNoise, RngKind};
use crate::pipeline::to_rgb8;
use crate::sampler::{self, SamplerKind, ScheduleKind, SchedulerConfig};
use crate::Result;
use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use std::time::Instant;

/// The networks to time, borrowed from a loaded model or from random-weight ones.
pub struct BenchNets<'a> {
    /// One text encoder (SD 1.x/2.x) or two (SDXL).
    pub text: Vec<&'a ClipTextModel>,
    pub unet: &'a UNet,
    pub vae: &'a crate::nets::vae::VaeDecoder,
    pub latent_channels: usize,
    pub latent_factor: usize,
    pub scaling_factor: f64,
    pub scheduler: SchedulerConfig,
    pub dtype: DType,
    pub vae_dtype: DType,
    pub device: Device,
}

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct BenchSettings {
    pub width: usize,
    pub height: usize,
    pub repeats: usize,
    /// Denoising steps of the end-to-end run (Euler).
    pub steps: usize,
    /// Guidance scale of the end-to-end run; at most 1 runs the conditional pass alone, as the
    /// pipeline does (sd-turbo's one step without guidance).
    pub guidance: f64,
}

impl BenchSettings {
    /// Whether the end-to-end run is guided (two images per UNet pass), as the pipeline decides.
    fn guided(&self) -> bool {
        self.guidance > 1.0
    }
}

/// One stage's timings.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: String,
    pub min_s: f64,
    pub median_s: f64,
    pub runs_s: Vec<f64>,
    /// Peak resident memory of the process during the stage (Linux only).
    pub peak_rss_bytes: Option<u64>,
    /// Resident memory when the stage began (everything loaded before it, the networks'
    /// weights included): `peak_rss_bytes` minus this is what the stage itself adds.
    pub start_rss_bytes: Option<u64>,
}

/// Runs every stage, calling `report` after each (so a long run shows progress).
pub fn run(
    nets: &BenchNets,
    settings: &BenchSettings,
    report: &mut dyn FnMut(&Stage),
) -> Result<Vec<Stage>> {
    let ids = token_ids(nets)?;
    let mut stages = Vec::new();
    let mut stage = |name: String, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        let s = time_stage(name, settings.repeats, &nets.device, f)?;
        report(&s);
        stages.push(s);
        Ok(())
    };
    stage("text encoding (1 prompt)".into(), &mut || {
        encode(nets, &ids).map(|_| ())
    })?;
    let cond = encode(nets, &ids)?;
    for batch in [2, 1] {
        let (latents, context, added) = unet_inputs(nets, settings, &cond, batch)?;
        let what = if batch == 2 {
            "with guidance"
        } else {
            "no guidance"
        };
        stage(format!("unet step, batch {batch} ({what})"), &mut || {
            nets.unet
                .forward(&latents, 500.0, &context, added.as_ref())?
                .to_dtype(DType::F32)?;
            Ok(())
        })?;
    }
    let vae = VaeInput {
        vae: nets.vae,
        shape: latent_shape(nets, settings, 1),
        dtype: nets.vae_dtype,
        device: &nets.device,
    };
    let mut decode = vae.decode()?;
    stage("vae decode".into(), &mut decode)?;
    let guidance = if settings.guided() {
        "guidance"
    } else {
        "no guidance"
    };
    stage(
        format!("end to end ({} steps, {guidance})", settings.steps),
        &mut || end_to_end(nets, settings, &ids).map(|_| ()),
    )?;
    Ok(stages)
}

/// What a VAE decode stage decodes: zero latents of one image.
pub struct VaeInput<'a> {
    pub vae: &'a crate::nets::vae::VaeDecoder,
    /// [1, latent channels, height / factor, width / factor].
    pub shape: [usize; 4],
    pub dtype: DType,
    pub device: &'a Device,
}

impl VaeInput<'_> {
    fn decode(&self) -> Result<impl FnMut() -> Result<()> + '_> {
        let latents =
            Tensor::zeros(&self.shape[..], DType::F32, self.device)?.to_dtype(self.dtype)?;
        Ok(move || {
            self.vae.decode(&latents)?.to_dtype(DType::F32)?;
            Ok(())
        })
    }
}

/// The VAE decode alone, in a process that loaded only the VAE (`seedling bench --vae-only`):
/// its peak memory is the decoder's weights and activations, not the other networks'.
pub fn run_vae_alone(input: &VaeInput, repeats: usize) -> Result<Stage> {
    let mut decode = input.decode()?;
    time_stage(
        "vae decode (VAE alone)".into(),
        repeats,
        input.device,
        &mut decode,
    )
}

/// The token ids every text stage encodes: `<start>`, a few word tokens, `<end>`, padded with
/// `<end>` to 77 as CLIP's tokenizer pads SD 1.x prompts. The content does not change the cost.
fn token_ids(nets: &BenchNets) -> Result<Vec<u32>> {
    let len = nets.text[0].max_positions();
    let mut ids = vec![49407u32; len];
    ids[0] = 49406;
    for (i, id) in ids.iter_mut().enumerate().take(9).skip(1) {
        *id = 320 + i as u32;
    }
    Ok(ids)
}

fn encode(nets: &BenchNets, ids: &[u32]) -> Result<Conditioning> {
    let t = Tensor::new(ids, &nets.device)?.unsqueeze(0)?;
    match nets.text.as_slice() {
        [one] => Ok(Conditioning {
            context: one.forward(&t)?.last_hidden_state,
            pooled: None,
        }),
        [first, second] => sdxl_conditioning([first, second], [&t, &t], [&[], &[]], ids),
        _ => Err(crate::Error::Invalid(
            "bench needs one or two text encoders".into(),
        )),
    }
}

fn latent_shape(nets: &BenchNets, s: &BenchSettings, batch: usize) -> [usize; 4] {
    latent_dims(
        nets.latent_channels,
        nets.latent_factor,
        (s.width, s.height),
        batch,
    )
}

/// The latents of `batch` images of `width`×`height` pixels, `factor` pixels per latent:
/// [batch, channels, height / factor, width / factor].
pub fn latent_dims(
    channels: usize,
    factor: usize,
    (width, height): (usize, usize),
    batch: usize,
) -> [usize; 4] {
    [batch, channels, height / factor, width / factor]
}

/// A UNet batch: latents, `batch` rows of context, and SDXL's added conditioning.
fn unet_inputs(
    nets: &BenchNets,
    s: &BenchSettings,
    cond: &Conditioning,
    batch: usize,
) -> Result<(Tensor, Tensor, Option<AddedCond>)> {
    let latents = Tensor::zeros(&latent_shape(nets, s, batch)[..], nets.dtype, &nets.device)?;
    let rows = vec![&cond.context; batch];
    let context = Tensor::cat(&rows, 0)?;
    let added = match &cond.pooled {
        Some(pooled) => Some(AddedCond::for_size(
            &vec![pooled; batch],
            s.height as u32,
            s.width as u32,
        )?),
        None => None,
    };
    Ok((latents, context, added))
}

/// A whole generation as the pipeline runs it, from token ids: the prompts encoded (the
/// negative one too when guided), the initial noise drawn on the host, `steps` Euler steps, the
/// VAE decode and the 8-bit conversion.
fn end_to_end(nets: &BenchNets, s: &BenchSettings, ids: &[u32]) -> Result<image::RgbImage> {
    let guided = s.guided();
    let cond = encode(nets, ids)?;
    // Unconditional first, as the pipeline batches them.
    let prompts = if guided {
        vec![encode(nets, ids)?, cond]
    } else {
        vec![cond]
    };
    let contexts: Vec<&Tensor> = prompts.iter().map(|p| &p.context).collect();
    let context = Tensor::cat(&contexts, 0)?;
    let pooled: Option<Vec<&Tensor>> = prompts.iter().map(|p| p.pooled.as_ref()).collect();
    let added = pooled
        .map(|p| AddedCond::for_size(&p, s.height as u32, s.width as u32))
        .transpose()?;
    let mut sampler = sampler::build(
        SamplerKind::Euler,
        ScheduleKind::Default,
        &nets.scheduler,
        s.steps,
        0.0,
    )?;
    let mut noise = BatchNoise::new(vec![RngKind::Chacha.source(0)]);
    let shape = latent_shape(nets, s, 1);
    let init = Tensor::from_vec(noise.draw(&shape), &shape[..], &Device::Cpu)?;
    let mut latents = (init.to_device(&nets.device)? * sampler.init_noise_sigma())?;
    for i in 0..sampler.timesteps().len() {
        let t = sampler.timesteps()[i];
        let input = Tensor::cat(&vec![&latents; prompts.len()], 0)?;
        let input = sampler.scale_model_input(&input, i)?.to_dtype(nets.dtype)?;
        let out = nets
            .unet
            .forward(&input, t, &context, added.as_ref())?
            .to_dtype(DType::F32)?;
        let prediction = if guided {
            let (u, c) = (out.narrow(0, 0, 1)?, out.narrow(0, 1, 1)?);
            (&u + ((c - &u)? * s.guidance)?)?
        } else {
            out
        };
        latents = sampler.step(&prediction, i, &latents, &mut noise)?;
    }
    let latents = (latents / nets.scaling_factor)?.to_dtype(nets.vae_dtype)?;
    let decoded = nets.vae.decode(&latents)?.to_dtype(DType::F32)?;
    to_rgb8(&decoded)
}

/// One untimed run, then `repeats` timed ones, each ended by a device synchronize.
fn time_stage(
    name: String,
    repeats: usize,
    device: &Device,
    f: &mut dyn FnMut() -> Result<()>,
) -> Result<Stage> {
    memory::reset_peak();
    let start_rss_bytes = memory::current_bytes();
    f()?;
    device.synchronize()?;
    let mut runs = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        f()?;
        device.synchronize()?;
        runs.push(start.elapsed().as_secs_f64());
    }
    let (min_s, median_s) = min_median(&runs);
    Ok(Stage {
        name,
        min_s,
        median_s,
        runs_s: runs,
        peak_rss_bytes: memory::peak_bytes(),
        start_rss_bytes,
    })
}

/// Minimum and median (the mean of the middle two for an even count).
pub(crate) fn min_median(runs: &[f64]) -> (f64, f64) {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    (sorted[0], median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_and_median_of_odd_and_even_counts() {
        assert_eq!(min_median(&[3.0, 1.0, 2.0]), (1.0, 2.0));
        assert_eq!(min_median(&[4.0, 1.0, 3.0, 2.0]), (1.0, 2.5));
        assert!(min_median(&[]).0.is_nan());
    }
}
