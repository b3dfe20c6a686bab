//! Samplers (diffusers calls them schedulers): one file per sampler behind the `Sampler` trait.
//! Schedule math (betas, alphas, sigmas, timesteps) is in f64; latents stay f32 tensors.
//! A sampler never owns randomness: every draw comes from the `BatchNoise` passed to `step`.

pub mod config;
mod ddim;
mod euler;
mod euler_ancestral;
pub mod schedule;

pub use config::SchedulerConfig;

use crate::noise::BatchNoise;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The samplers a recipe can name. Recorded in the recipe as `sampler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SamplerKind {
    /// diffusers `DDIMScheduler` (with `eta`).
    #[serde(rename = "ddim")]
    Ddim,
    /// diffusers `EulerDiscreteScheduler`.
    #[serde(rename = "euler")]
    Euler,
    /// diffusers `EulerAncestralDiscreteScheduler`.
    #[serde(rename = "euler_a")]
    EulerAncestral,
}

impl SamplerKind {
    pub const ALL: [SamplerKind; 3] = [
        SamplerKind::Ddim,
        SamplerKind::Euler,
        SamplerKind::EulerAncestral,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Ddim => "ddim",
            SamplerKind::Euler => "euler",
            SamplerKind::EulerAncestral => "euler_a",
        }
    }

    /// The diffusers class whose behaviour this sampler reproduces.
    pub fn diffusers_class(self) -> &'static str {
        match self {
            SamplerKind::Ddim => "DDIMScheduler",
            SamplerKind::Euler => "EulerDiscreteScheduler",
            SamplerKind::EulerAncestral => "EulerAncestralDiscreteScheduler",
        }
    }

    /// The sampler that reproduces a diffusers scheduler class, if we have one.
    pub fn from_diffusers_class(class: &str) -> Option<SamplerKind> {
        SamplerKind::ALL
            .into_iter()
            .find(|k| k.diffusers_class() == class)
    }

    /// Whether `step` draws noise (so the `eta`/stream matters).
    pub fn is_stochastic(self, eta: f64) -> bool {
        match self {
            SamplerKind::Ddim => eta > 0.0,
            SamplerKind::Euler => false,
            SamplerKind::EulerAncestral => true,
        }
    }
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SamplerKind {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        SamplerKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                crate::Error::Invalid(format!(
                    "unknown sampler '{s}'; use one of: {}",
                    SamplerKind::ALL.map(|k| k.name()).join(", ")
                ))
            })
    }
}

/// How the noise levels of the steps are spaced. Recorded in the recipe as `schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// The model's scheduler config as it is (its `timestep_spacing`).
    #[default]
    Default,
    /// Karras et al. 2022 (eq. 5, ρ = 7) noise levels, diffusers' `use_karras_sigmas=True`.
    Karras,
}

impl ScheduleKind {
    pub const ALL: [ScheduleKind; 2] = [ScheduleKind::Default, ScheduleKind::Karras];

    pub fn name(self) -> &'static str {
        match self {
            ScheduleKind::Default => "default",
            ScheduleKind::Karras => "karras",
        }
    }
}

impl fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScheduleKind {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        ScheduleKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                crate::Error::Invalid(format!(
                    "unknown schedule '{s}'; use one of: {}",
                    ScheduleKind::ALL.map(|k| k.name()).join(", ")
                ))
            })
    }
}

/// One sampler, set up for a number of steps. Mirrors the diffusers scheduler protocol:
/// `latents = init_noise * init_noise_sigma`; then for each step `i`:
/// `out = unet(scale_model_input(latents, i), timesteps[i])`, `latents = step(out, i, latents)`.
pub trait Sampler {
    /// The UNet timestep of each step (may be fractional for Euler's linspace spacing).
    fn timesteps(&self) -> &[f64];

    /// Factor applied to the initial noise (diffusers `init_noise_sigma`).
    fn init_noise_sigma(&self) -> f64;

    /// The UNet input for step `i` (diffusers `scale_model_input`).
    fn scale_model_input(&self, sample: &Tensor, i: usize) -> candle_core::Result<Tensor>;

    /// Advances `sample` (f32 latents) by step `i` given the (guided) model output.
    /// Any noise it needs is drawn from `noise`, one draw per noise tensor.
    fn step(
        &mut self,
        model_output: &Tensor,
        i: usize,
        sample: &Tensor,
        noise: &mut BatchNoise,
    ) -> candle_core::Result<Tensor>;
}

/// Builds the sampler `kind` for `steps` steps from the model's scheduler config, as
/// `<Class>.from_config(scheduler_config)` + `set_timesteps(steps)` would in diffusers.
pub fn build(
    kind: SamplerKind,
    schedule: ScheduleKind,
    config: &SchedulerConfig,
    steps: usize,
    eta: f64,
) -> crate::Result<Box<dyn Sampler>> {
    if schedule == ScheduleKind::Karras {
        return Err(crate::Error::Invalid(format!(
            "the karras schedule is not available for {kind} yet; use --schedule default"
        )));
    }
    let resolved = config.resolve(kind)?;
    Ok(match kind {
        SamplerKind::Ddim => Box::new(ddim::Ddim::new(&resolved, steps, eta)?),
        SamplerKind::Euler => Box::new(euler::Euler::new(&resolved, steps)?),
        SamplerKind::EulerAncestral => {
            Box::new(euler_ancestral::EulerAncestral::new(&resolved, steps)?)
        }
    })
}
