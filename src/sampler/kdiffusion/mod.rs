//! ComfyUI's samplers and schedulers, for regenerating ComfyUI images exactly (issue 25, first
//! step: a library, not yet wired into recipes, the CLI or replay). Everything here mirrors a
//! ComfyUI 0.3.64 file (commit a125cd84, github.com/Comfy-Org/ComfyUI):
//!
//! * `sigmas` — comfy/model_sampling.py `ModelSamplingDiscrete` + `EPS`: the discrete sigma
//!   table, `timestep(sigma)` (nearest integer timestep, what the UNet gets), `sigma(t)`,
//!   `noise_scaling` (the initial latent) and the ε ↔ x̂₀ conversion.
//! * `schedulers` — comfy/samplers.py's schedulers (normal, karras, exponential, sgm_uniform,
//!   simple, ddim_uniform, beta) and `KSampler.calculate_sigmas`.
//! * `common`, `euler`, `heun`, `dpmpp`, `lms` — comfy/k_diffusion/sampling.py's samplers
//!   (k-diffusion by Katherine Crowson, as ComfyUI carries it) over a denoiser callback
//!   `(x, sigma) -> denoised` and an explicit noise source.
//! * `unipc` — comfy/extra_samplers/uni_pc.py (`uni_pc` = B(h) = h, `uni_pc_bh2`).
//!
//! `guided_denoise` is the denoiser ComfyUI's KSampler hands those samplers for an ε model:
//! comfy/model_base.py `_apply_model` (input scaling, integer timestep, x − ε·σ) under
//! comfy/samplers.py `sampling_function` / `cfg_function` (uncond + (cond − uncond)·cfg, the
//! negative pass skipped when cfg is 1).
//!
//! Noise. A sampler never owns randomness: ancestral draws come from the `BatchNoise` it is
//! given, one draw of the latent's shape per noisy step. ComfyUI's `default_noise_sampler` is
//! a *fresh* CPU generator seeded with the KSampler seed, so its draws restart the stream of
//! the initial noise (`prepare_noise`): the first ancestral draw equals the initial noise. To
//! reproduce ComfyUI, hand the sampler a new `TorchCpuNoise` for the seed, not the one the
//! initial noise came from (diffusers, by contrast, continues one generator; both are checked
//! in `parity_tests`). ComfyUI draws a batch as one tensor from one generator; seedling's
//! `BatchNoise` draws per image, which is the same for a batch of one.
//!
//! Tests (`parity_tests`, ../shared/fixtures): every ComfyUI fixture schedule is reproduced bit
//! for bit, torch's CPU stream reproduces ComfyUI's noise draws, and with the real tiny-sd UNet
//! the samplers reproduce diffusers' Euler, Euler ancestral and DPM++ 2M runs to ~5e-6. The
//! end-to-end comparisons with ComfyUI's KSampler outputs are ignored for now: ComfyUI's run of
//! the (patched) tiny-sd model differs from diffusers' and seedling's by ~30% whatever the
//! sampler (see `COMFY_GAP` there).

mod common;
mod dpmpp;
mod euler;
mod heun;
mod lms;
pub(crate) mod schedulers;
pub(crate) mod sigmas;
mod unipc;

#[cfg(test)]
mod parity_tests;

pub(crate) use common::Model;
pub(crate) use schedulers::{ksampler_sigmas, Scheduler};
pub(crate) use sigmas::ModelSampling;

use crate::noise::BatchNoise;
use candle_core::Tensor;

/// A ComfyUI sampler name (the KSampler node's `sampler_name`) this module implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KSampler {
    Euler,
    EulerAncestral,
    Heun,
    Dpm2,
    Dpm2Ancestral,
    Lms,
    Dpmpp2m,
    UniPc,
    UniPcBh2,
}

impl KSampler {
    pub(crate) const ALL: [KSampler; 9] = [
        KSampler::Euler,
        KSampler::EulerAncestral,
        KSampler::Heun,
        KSampler::Dpm2,
        KSampler::Dpm2Ancestral,
        KSampler::Lms,
        KSampler::Dpmpp2m,
        KSampler::UniPc,
        KSampler::UniPcBh2,
    ];

    /// ComfyUI's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            KSampler::Euler => "euler",
            KSampler::EulerAncestral => "euler_ancestral",
            KSampler::Heun => "heun",
            KSampler::Dpm2 => "dpm_2",
            KSampler::Dpm2Ancestral => "dpm_2_ancestral",
            KSampler::Lms => "lms",
            KSampler::Dpmpp2m => "dpmpp_2m",
            KSampler::UniPc => "uni_pc",
            KSampler::UniPcBh2 => "uni_pc_bh2",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// comfy/samplers.py `KSampler.DISCARD_PENULTIMATE_SIGMA_SAMPLERS`.
    pub(crate) fn discards_penultimate_sigma(self) -> bool {
        matches!(
            self,
            KSampler::Dpm2 | KSampler::Dpm2Ancestral | KSampler::UniPc | KSampler::UniPcBh2
        )
    }

    /// Whether the sampler draws noise after the initial latent.
    pub(crate) fn is_ancestral(self) -> bool {
        matches!(self, KSampler::EulerAncestral | KSampler::Dpm2Ancestral)
    }

    /// The KSampler's sigmas for `steps` steps of `scheduler` at denoise 1.
    pub(crate) fn sigmas(
        self,
        ms: &ModelSampling,
        scheduler: Scheduler,
        steps: usize,
    ) -> crate::Result<Vec<f32>> {
        ksampler_sigmas(ms, scheduler, steps, self.discards_penultimate_sigma())
    }

    /// Runs the sampler from `x` (the already scaled initial latent, see
    /// `ModelSampling::noise_scaling`) over `sigmas`, with ComfyUI's defaults (eta 1,
    /// s_noise 1, lms order 4); ancestral draws come from `noise`.
    pub(crate) fn sample(
        self,
        model: &mut Model,
        x: Tensor,
        sigmas: &[f32],
        noise: &mut BatchNoise,
    ) -> candle_core::Result<Tensor> {
        match self {
            KSampler::Euler => euler::sample_euler(model, x, sigmas),
            KSampler::EulerAncestral => {
                euler::sample_euler_ancestral(model, x, sigmas, 1.0, 1.0, noise)
            }
            KSampler::Heun => heun::sample_heun(model, x, sigmas),
            KSampler::Dpm2 => heun::sample_dpm_2(model, x, sigmas),
            KSampler::Dpm2Ancestral => {
                heun::sample_dpm_2_ancestral(model, x, sigmas, 1.0, 1.0, noise)
            }
            KSampler::Lms => lms::sample_lms(model, x, sigmas, 4),
            KSampler::Dpmpp2m => dpmpp::sample_dpmpp_2m(model, x, sigmas),
            KSampler::UniPc => unipc::sample_unipc(model, x, sigmas, unipc::Variant::Bh1),
            KSampler::UniPcBh2 => unipc::sample_unipc(model, x, sigmas, unipc::Variant::Bh2),
        }
    }
}

/// Whether ComfyUI runs the negative pass: comfy/samplers.py `sampling_function` skips it when
/// `math.isclose(cfg, 1.0)` (rel_tol 1e-9).
pub(crate) fn cfg_is_one(cfg: f64) -> bool {
    (cfg - 1.0).abs() <= 1e-9 * cfg.abs().max(1.0)
}

/// ComfyUI's guided x̂₀ for an ε model at (x, sigma). `eps(input, t)` runs the UNet on
/// `input` at integer timestep `t`; with guidance the input is `[x_in; x_in]` (batch doubled)
/// and the caller's context must hold the positive rows first, then the negative ones.
/// comfy/model_base.py `_apply_model`: input x/√(σ²+1), t = `timestep(σ)`, x̂₀ = x − ε·σ;
/// comfy/samplers.py `cfg_function`: uncond + (cond − uncond)·cfg.
pub(crate) fn guided_denoise(
    ms: &ModelSampling,
    eps: &mut dyn FnMut(&Tensor, f64) -> candle_core::Result<Tensor>,
    x: &Tensor,
    sigma: f32,
    cfg: f64,
) -> candle_core::Result<Tensor> {
    let input = ms.calculate_input(sigma, x)?;
    let t = ms.timestep(sigma) as f64;
    if cfg_is_one(cfg) {
        let out = eps(&input, t)?;
        return ms.calculate_denoised(sigma, &out, x);
    }
    let b = x.dim(0)?;
    let out = eps(&Tensor::cat(&[&input, &input], 0)?, t)?;
    let cond = ms.calculate_denoised(sigma, &out.narrow(0, 0, b)?, x)?;
    let uncond = ms.calculate_denoised(sigma, &out.narrow(0, b, b)?, x)?;
    &uncond + sigmas::mul_scalar(&(&cond - &uncond)?, cfg as f32)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// With x̂₀ ≡ 0 the probability-flow ODE is dx/dσ = x/σ, whose solution x·σ'/σ every one of
    /// these samplers reproduces exactly (up to float32 rounding) on each step to a non-zero σ
    /// (Euler, Heun and DPM-2 are exact on this linear ODE, LMS because its coefficients sum to
    /// the step and x/σ stays constant, DPM-Solver++ and UniPC because their x̂₀ terms vanish);
    /// the ancestral ones with eta 0 are Euler and DPM-2. A schedule ending in 0 then gives
    /// x̂₀ = 0, but for UniPC, which ComfyUI stops at σ = 0.001.
    #[test]
    fn zero_denoiser_follows_the_exact_ode_solution() {
        let sigmas = [14.6f32, 9.1, 5.5, 3.2, 1.7, 0.9, 0.45];
        let x0 = Tensor::new(&[[1.5f32, -2.0, 0.25]], &Device::Cpu).unwrap();
        let want = 1.5 * 0.45 / 14.6;
        for sampler in KSampler::ALL {
            // eta 0 still draws (with weight 0), as k-diffusion does.
            let mut noise = noise_for(sampler);
            let mut calls = 0;
            let mut zero = |x: &Tensor, _sigma: f32| {
                calls += 1;
                x.zeros_like()
            };
            let out = match sampler {
                KSampler::EulerAncestral => euler::sample_euler_ancestral(
                    &mut zero,
                    x0.clone(),
                    &sigmas,
                    0.0,
                    1.0,
                    &mut noise,
                ),
                KSampler::Dpm2Ancestral => heun::sample_dpm_2_ancestral(
                    &mut zero,
                    x0.clone(),
                    &sigmas,
                    0.0,
                    1.0,
                    &mut noise,
                ),
                _ => sampler.sample(&mut zero, x0.clone(), &sigmas, &mut noise),
            }
            .unwrap();
            let got: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
            assert!(
                (f64::from(got[0]) - want).abs() < 1e-6,
                "{}: {} vs {want}",
                sampler.name(),
                got[0]
            );
            let two_calls = matches!(
                sampler,
                KSampler::Heun | KSampler::Dpm2 | KSampler::Dpm2Ancestral
            );
            assert_eq!(calls, if two_calls { 12 } else { 6 }, "{}", sampler.name());
            // To σ = 0 the result is x̂₀ itself (UniPC: x at σ = 0.001).
            let mut zero = |x: &Tensor, _sigma: f32| x.zeros_like();
            let end = sampler
                .sample(
                    &mut zero,
                    x0.clone(),
                    &[2.0, 1.0, 0.0],
                    &mut noise_for(sampler),
                )
                .unwrap();
            let end: Vec<f32> = end.flatten_all().unwrap().to_vec1().unwrap();
            let want_end = match sampler {
                KSampler::UniPc | KSampler::UniPcBh2 => 1.5 * 0.001 / 2.0,
                _ => 0.0,
            };
            assert!(
                (f64::from(end[0]) - want_end).abs() < 1e-6,
                "{}: {end:?}",
                sampler.name()
            );
        }
    }

    /// A stream for the ancestral samplers (one draw per noisy step), none for the others.
    fn noise_for(sampler: KSampler) -> BatchNoise {
        if sampler.is_ancestral() {
            BatchNoise::single(crate::noise::RngKind::TorchCpu, 0)
        } else {
            BatchNoise::new(vec![])
        }
    }

    #[test]
    fn names_round_trip() {
        for s in KSampler::ALL {
            assert_eq!(KSampler::from_name(s.name()), Some(s));
        }
        for s in Scheduler::ALL {
            assert_eq!(Scheduler::from_name(s.name()), Some(s));
        }
        assert!(cfg_is_one(1.0) && !cfg_is_one(1.01) && !cfg_is_one(7.5));
    }
}

#[cfg(test)]
mod convergence_tests {
    use super::*;
    use candle_core::Device;

    /// For data ~ N(0, 1) the ideal denoiser is x̂₀ = x/(1 + σ²) and the ODE's solution is
    /// x(σ) = x_T·√(1 + σ²)/√(1 + σ_T²). Errors at 10, 20, 40 karras steps (ending at
    /// σ = 0.03, no final 0) give each sampler's empirical order, which must be its theoretical
    /// one: 1 for Euler, 2 for Heun, DPM-2 and DPM++ 2M, 4 for LMS (3.1, 3.5 measured on the
    /// way), 3 for UniPC-3 (5.7/5.3, then 3.2/3.3 measured). A wrong coefficient shows up here
    /// as a lost order, where a run on the real UNet would only look slightly different.
    #[test]
    fn gaussian_data_convergence_orders() {
        let x_t = Tensor::new(&[[1.0f32, -0.5, 2.0, 0.25]], &Device::Cpu).unwrap();
        for sampler in KSampler::ALL.into_iter().filter(|s| !s.is_ancestral()) {
            let mut errors = Vec::new();
            for n in [10usize, 20, 40] {
                let mut sigmas = schedulers::karras(n, 0.03, 14.6, 7.0);
                sigmas.pop();
                let mut ideal = |x: &Tensor, sigma: f32| {
                    x.affine(1.0 / (1.0 + f64::from(sigma) * f64::from(sigma)), 0.0)
                };
                let mut noise = BatchNoise::new(vec![]);
                let out = sampler
                    .sample(&mut ideal, x_t.clone(), &sigmas, &mut noise)
                    .unwrap();
                let (s0, s1) = (f64::from(sigmas[0]), f64::from(sigmas[n - 1]));
                let want = 2.0 * (1.0 + s1 * s1).sqrt() / (1.0 + s0 * s0).sqrt();
                let got: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
                errors.push((f64::from(got[2]) - want).abs() / want);
            }
            let orders: Vec<f64> = errors.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
            println!(
                "{}: relative errors {errors:?}, orders {orders:.2?}",
                sampler.name()
            );
            let expected = match sampler {
                KSampler::Euler => 0.9,
                KSampler::Heun | KSampler::Dpm2 | KSampler::Dpmpp2m => 1.9,
                KSampler::Lms => 3.3,
                KSampler::UniPc | KSampler::UniPcBh2 => 2.9,
                KSampler::EulerAncestral | KSampler::Dpm2Ancestral => unreachable!(),
            };
            assert!(
                orders[1] > expected,
                "{}: order {orders:?} below {expected}",
                sampler.name()
            );
        }
    }
}
