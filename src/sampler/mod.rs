//! Samplers (diffusers calls them schedulers): one file per sampler behind the `Sampler` trait.
//! Schedule math (betas, alphas, sigmas, timesteps) is in f64; latents stay f32 tensors.
//! A sampler never owns randomness: every draw comes from the `BatchNoise` passed to `step`.

pub mod config;
mod ddim;
mod dpmpp_2m;
mod euler;
mod euler_ancestral;
mod lcm;
mod pndm;
pub mod schedule;
mod steps;
mod unipc;

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
    /// diffusers `DPMSolverMultistepScheduler` with algorithm_type "dpmsolver++" and
    /// solver_order 2 (DPM-Solver++(2M), Lu et al. 2022).
    #[serde(rename = "dpmpp_2m")]
    DpmPp2m,
    /// diffusers `UniPCMultistepScheduler` (bh2, predict_x0; Zhao et al. 2023).
    #[serde(rename = "unipc")]
    UniPc,
    /// diffusers `PNDMScheduler` with `skip_prk_steps` (PLMS; Liu et al. 2022).
    #[serde(rename = "pndm")]
    Pndm,
    /// diffusers `LCMScheduler` (Luo et al. 2023): fresh noise every step but the last.
    #[serde(rename = "lcm")]
    Lcm,
}

impl SamplerKind {
    pub const ALL: [SamplerKind; 7] = [
        SamplerKind::Ddim,
        SamplerKind::Euler,
        SamplerKind::EulerAncestral,
        SamplerKind::DpmPp2m,
        SamplerKind::UniPc,
        SamplerKind::Pndm,
        SamplerKind::Lcm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Ddim => "ddim",
            SamplerKind::Euler => "euler",
            SamplerKind::EulerAncestral => "euler_a",
            SamplerKind::DpmPp2m => "dpmpp_2m",
            SamplerKind::UniPc => "unipc",
            SamplerKind::Pndm => "pndm",
            SamplerKind::Lcm => "lcm",
        }
    }

    /// The diffusers class whose behaviour this sampler reproduces.
    pub fn diffusers_class(self) -> &'static str {
        match self {
            SamplerKind::Ddim => "DDIMScheduler",
            SamplerKind::Euler => "EulerDiscreteScheduler",
            SamplerKind::EulerAncestral => "EulerAncestralDiscreteScheduler",
            SamplerKind::DpmPp2m => "DPMSolverMultistepScheduler",
            SamplerKind::UniPc => "UniPCMultistepScheduler",
            SamplerKind::Pndm => "PNDMScheduler",
            SamplerKind::Lcm => "LCMScheduler",
        }
    }

    /// The sampler that reproduces a diffusers scheduler class, if we have one. A
    /// `DPMSolverMultistepScheduler` config maps to dpmpp_2m whatever its algorithm_type and
    /// solver_order (dpmpp_2m fixes both, as the sampler name says).
    pub fn from_diffusers_class(class: &str) -> Option<SamplerKind> {
        SamplerKind::ALL
            .into_iter()
            .find(|k| k.diffusers_class() == class)
    }

    /// Whether `step` draws noise (so the `eta`/stream matters). LCM draws at every step but
    /// the last.
    pub fn is_stochastic(self, eta: f64) -> bool {
        match self {
            SamplerKind::Ddim => eta > 0.0,
            SamplerKind::Euler => false,
            SamplerKind::EulerAncestral | SamplerKind::Lcm => true,
            SamplerKind::DpmPp2m | SamplerKind::UniPc | SamplerKind::Pndm => false,
        }
    }
}

impl SamplerKind {
    /// Whether the sampler steps through noise levels (sigmas), so that the Karras schedule
    /// applies. diffusers' EulerAncestralDiscreteScheduler has no `use_karras_sigmas`; ours
    /// takes Karras sigmas exactly as EulerDiscreteScheduler does (k-diffusion's
    /// `sample_euler_ancestral` with `get_sigmas_karras`, A1111's "Euler a" + "Karras").
    pub fn has_sigmas(self) -> bool {
        matches!(
            self,
            SamplerKind::Euler
                | SamplerKind::EulerAncestral
                | SamplerKind::DpmPp2m
                | SamplerKind::UniPc
        )
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

    /// The noise level of each step plus the final one (`timesteps().len() + 1` values), for the
    /// samplers that have sigmas in diffusers; None for the others.
    fn sigmas(&self) -> Option<&[f64]> {
        None
    }

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
/// `ScheduleKind::Karras` is diffusers' `use_karras_sigmas=True`; a config that already sets
/// it gets Karras sigmas with either schedule (the config is the model's default).
pub fn build(
    kind: SamplerKind,
    schedule: ScheduleKind,
    config: &SchedulerConfig,
    steps: usize,
    eta: f64,
) -> crate::Result<Box<dyn Sampler>> {
    let mut resolved = config.resolve(kind)?;
    if schedule == ScheduleKind::Karras {
        if !kind.has_sigmas() {
            let with_sigmas: Vec<&str> = SamplerKind::ALL
                .into_iter()
                .filter(|k| k.has_sigmas())
                .map(|k| k.name())
                .collect();
            return Err(crate::Error::Invalid(format!(
                "the karras schedule needs a sampler with noise levels (sigmas); {kind} has \
                 none. Use --schedule default, or one of: {}",
                with_sigmas.join(", ")
            )));
        }
        resolved.karras = true;
    }
    Ok(match kind {
        SamplerKind::Ddim => Box::new(ddim::Ddim::new(&resolved, steps, eta)?),
        SamplerKind::Euler => Box::new(euler::Euler::new(&resolved, steps)?),
        SamplerKind::EulerAncestral => {
            Box::new(euler_ancestral::EulerAncestral::new(&resolved, steps)?)
        }
        SamplerKind::DpmPp2m => Box::new(dpmpp_2m::DpmPp2m::new(&resolved, steps)?),
        SamplerKind::UniPc => Box::new(unipc::UniPc::new(&resolved, steps)?),
        SamplerKind::Pndm => Box::new(pndm::Pndm::new(&resolved, steps)?),
        SamplerKind::Lcm => Box::new(lcm::Lcm::new(&resolved, steps)?),
    })
}

#[cfg(test)]
mod tests {
    use super::config::ResolvedConfig;
    use super::schedule::{
        euler_schedule, multistep_schedule, BetaSchedule, Multistep, MultistepSchedule,
    };
    use super::*;

    #[test]
    fn unknown_sampler_lists_all_in_order() {
        let err = "dpm++".parse::<SamplerKind>().unwrap_err().to_string();
        assert!(
            err.ends_with("use one of: ddim, euler, euler_a, dpmpp_2m, unipc, pndm, lcm"),
            "{err}"
        );
        for k in SamplerKind::ALL {
            assert_eq!(k.name().parse::<SamplerKind>().unwrap(), k);
            assert_eq!(
                SamplerKind::from_diffusers_class(k.diffusers_class()),
                Some(k)
            );
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
        }
        assert_eq!(
            SamplerKind::from_diffusers_class("HeunDiscreteScheduler"),
            None
        );
    }

    #[test]
    fn karras_only_for_samplers_with_sigmas() {
        let cfg = SchedulerConfig::from_json(r#"{"skip_prk_steps": true}"#).unwrap();
        for kind in SamplerKind::ALL {
            let built = build(kind, ScheduleKind::Karras, &cfg, 4, 0.0);
            if kind.has_sigmas() {
                let s = built.unwrap();
                // Karras spacing: the first sigma is sigma_max, the last before 0 sigma_min.
                let sigmas = s.sigmas().unwrap();
                assert_eq!(sigmas.len(), 5, "{kind}");
            } else {
                let err = built.err().unwrap().to_string();
                assert!(
                    err.contains(kind.name()) && err.contains("--schedule default"),
                    "{err}"
                );
                assert!(err.contains("euler, euler_a, dpmpp_2m, unipc"), "{err}");
            }
        }
    }

    #[test]
    fn karras_changes_the_schedule() {
        let cfg = SchedulerConfig::from_json("{}").unwrap();
        for kind in [SamplerKind::Euler, SamplerKind::DpmPp2m, SamplerKind::UniPc] {
            let d = build(kind, ScheduleKind::Default, &cfg, 10, 0.0).unwrap();
            let k = build(kind, ScheduleKind::Karras, &cfg, 10, 0.0).unwrap();
            // Both start at the top of the training range (Karras: up to log-sigma
            // interpolation error) and differ in between.
            assert!((d.timesteps()[0] - k.timesteps()[0]).abs() < 1e-3, "{kind}");
            assert!(d.timesteps()[1..9] != k.timesteps()[1..9], "{kind}");
        }
    }

    // Schedules of resolved configs (`schedule` itself takes plain parameters).

    /// SD 1.5's betas resolved for `kind`, with Karras sigmas.
    fn sd(kind: SamplerKind, extra: &str) -> ResolvedConfig {
        let json = format!(
            r#"{{"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                 "skip_prk_steps": true {extra}}}"#
        );
        let mut c = SchedulerConfig::from_json(&json)
            .unwrap()
            .resolve(kind)
            .unwrap();
        c.karras = true;
        c
    }

    /// The multistep schedule of `c`'s class (DPM-Solver or UniPC), as its sampler builds it.
    fn multistep(c: &ResolvedConfig, steps: usize) -> MultistepSchedule {
        let solver = match c.kind {
            SamplerKind::UniPc => Multistep::UniPc,
            _ => Multistep::DpmSolver {
                cosine_betas: c.beta_schedule == BetaSchedule::SquaredCosCapV2,
            },
        };
        multistep_schedule(&c.schedule_params(), steps, solver).unwrap()
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= tol * w.abs().max(1.0),
                "{what}: {got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn euler_karras_matches_the_numpy_reference() {
        // Values printed by testdata/karras_reference.py (an independent numpy implementation
        // from the paper and diffusers' documented behaviour; see that file). "leading"
        // spacing: the Karras range ends at the interpolated sigma of timestep 1, not t = 0,
        // and the timesteps stay fractional.
        let c = sd(
            SamplerKind::Euler,
            r#", "timestep_spacing": "leading", "steps_offset": 1"#,
        );
        let e = euler_schedule(&c.schedule_params(), 6).unwrap();
        let want_sigmas = [
            5.906451702117916,
            2.79078631406478,
            1.2051021760801002,
            0.4640108336590629,
            0.1536244041650389,
            0.041314478963613496,
            0.0,
        ];
        assert_close(&e.sigmas, &want_sigmas, 1e-6, "sigmas");
        let want_t = [
            830.9999873840832,
            654.2946317365087,
            410.4855885492942,
            153.51215833968442,
            24.64932565199316,
            1.000000060425075,
        ];
        assert_close(&e.timesteps, &want_t, 1e-5, "timesteps");
        let s0 = want_sigmas[0];
        assert!((e.init_noise_sigma - (s0 * s0 + 1.0).sqrt()).abs() < 1e-5);
    }

    #[test]
    fn multistep_karras_matches_the_numpy_reference() {
        // testdata/karras_reference.py: the whole training range, rounded timesteps.
        let want_sigmas = [
            14.614648818969727,
            4.796544551849365,
            1.274105429649353,
            0.2479517161846161,
            0.029167532920837402,
            0.0,
        ];
        let want_t = [999.0, 786.0, 427.0, 59.0, 0.0];
        for kind in [SamplerKind::DpmPp2m, SamplerKind::UniPc] {
            let m = multistep(&sd(kind, ""), 5);
            assert_close(&m.sigmas, &want_sigmas, 1e-6, "sigmas");
            assert_eq!(m.timesteps, want_t);
        }
        // final_sigmas_type sigma_min: the last Karras sigma for UniPC, training sigma_min for
        // DPM-Solver (equal here, as the range ends at the training sigma_min).
        let m = multistep(
            &sd(SamplerKind::UniPc, r#", "final_sigmas_type": "sigma_min""#),
            5,
        );
        assert_eq!(m.sigmas[5], m.sigmas[4]);
    }

    #[test]
    fn euler_ancestral_karras_is_eulers() {
        let a = euler_schedule(&sd(SamplerKind::EulerAncestral, "").schedule_params(), 7).unwrap();
        let e = euler_schedule(&sd(SamplerKind::Euler, "").schedule_params(), 7).unwrap();
        assert_eq!((a.timesteps, a.sigmas), (e.timesteps, e.sigmas));
    }
}
