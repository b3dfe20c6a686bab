//! The samplers and schedules a recipe can name (its `sampler` and `schedule` fields).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The samplers a recipe can name. Recorded in the recipe as `sampler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
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
    pub(crate) fn diffusers_class(self) -> &'static str {
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
    pub(crate) fn has_sigmas(self) -> bool {
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
#[non_exhaustive]
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

#[cfg(test)]
mod tests {
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
}
