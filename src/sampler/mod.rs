//! Samplers (diffusers calls them schedulers): one file per sampler behind the `Sampler` trait.
//! Schedule math (betas, alphas, sigmas, timesteps) is in f64; latents stay f32 tensors.
//! A sampler never owns randomness: every draw comes from the `BatchNoise` passed to `step`.
//!
//! Dependencies go one way: `kind` and `schedule` need nothing here; `config` reads the model's
//! scheduler config into plain values (using `schedule` for the betas); `steps` holds the step
//! arithmetic several samplers share; each sampler file uses those and `protocol` (the trait);
//! `build` picks the sampler. This file only declares and re-exports.

mod build;
pub mod config;
mod ddim;
mod dpmpp_2m;
mod euler;
mod euler_ancestral;
// ComfyUI's samplers and schedulers (issue 25): a library, not yet used by recipes or the CLI.
#[allow(dead_code)]
pub(crate) mod kdiffusion;
mod kind;
mod lcm;
mod pndm;
mod protocol;
pub mod schedule;
mod steps;
mod unipc;

pub use build::build;
pub use config::SchedulerConfig;
pub use kind::{SamplerKind, ScheduleKind};
pub use protocol::Sampler;
