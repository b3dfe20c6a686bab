//! ComfyUI's model sampling for ε-prediction models: comfy/model_sampling.py
//! `ModelSamplingDiscrete` (the discrete sigma table, `timestep(sigma)`, `sigma(t)`) and `EPS`
//! (`calculate_input`, `calculate_denoised`, `noise_scaling`), plus the float32 torch ops
//! ComfyUI's schedulers are written in (`torch.linspace` on the CPU).
//!
//! Precision. ComfyUI builds the table in float64 (comfy/ldm/modules/diffusionmodules/util.py
//! `make_beta_schedule("linear")` = `torch.linspace(√start, √end, 1000, float64) ** 2`, then
//! `cumprod` and the sigmas in float64) and stores `sigmas` and `log_sigmas` as float32
//! (`set_sigmas`: `sigmas.float()`, `sigmas.log().float()`). Everything after that is float32
//! tensor arithmetic, which we repeat op by op in `f32` (Rust's `f32` ops, `ln` and `exp` are
//! the IEEE / libm operations torch's CPU scalar kernels use), so the schedules come out
//! float32-exact: `schedulers::tests` checks every sigma of the fixture cases bit for bit.

use candle_core::Tensor;

/// SD1/SD2 (ε) `sampling_settings`: ComfyUI's defaults, `linear_start` 0.00085, `linear_end`
/// 0.012, 1000 timesteps (model_sampling.py `ModelSamplingDiscrete.__init__`).
pub(crate) const LINEAR_START: f64 = 0.00085;
pub(crate) const LINEAR_END: f64 = 0.012;
pub(crate) const TIMESTEPS: usize = 1000;

/// comfy/model_sampling.py `ModelSamplingDiscrete` with the `EPS` prediction (sigma_data 1).
#[derive(Debug, Clone)]
pub(crate) struct ModelSampling {
    /// `sigmas`, float32, ascending (index = training timestep).
    sigmas: Vec<f32>,
    /// `log_sigmas`: log of the float64 sigmas, rounded to float32.
    log_sigmas: Vec<f32>,
}

impl ModelSampling {
    /// SD1's table: `make_beta_schedule("linear", 1000, 0.00085, 0.012)`.
    pub(crate) fn sd1() -> Self {
        Self::linear(LINEAR_START, LINEAR_END, TIMESTEPS)
    }

    /// `_register_schedule(beta_schedule="linear", ...)`: betas = linspace(√start, √end, n)²
    /// in float64, alphas_cumprod = cumprod(1 − betas) in float64 (torch's CPU cumprod
    /// multiplies in order), sigmas = ((1 − ᾱ)/ᾱ)^0.5.
    pub(crate) fn linear(linear_start: f64, linear_end: f64, timesteps: usize) -> Self {
        let roots = linspace_f64(linear_start.sqrt(), linear_end.sqrt(), timesteps);
        let mut acc = 1.0f64;
        let sigmas64: Vec<f64> = roots
            .iter()
            .map(|r| {
                acc *= 1.0 - r * r;
                ((1.0 - acc) / acc).sqrt()
            })
            .collect();
        Self {
            sigmas: sigmas64.iter().map(|s| *s as f32).collect(),
            log_sigmas: sigmas64.iter().map(|s| s.ln() as f32).collect(),
        }
    }

    /// The float32 table, ascending.
    pub(crate) fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// `sigma_min` = `sigmas[0]`.
    pub(crate) fn sigma_min(&self) -> f32 {
        self.sigmas[0]
    }

    /// `sigma_max` = `sigmas[-1]`.
    pub(crate) fn sigma_max(&self) -> f32 {
        self.sigmas[self.sigmas.len() - 1]
    }

    /// `timestep(sigma)`: the training timestep whose log-sigma is nearest to log(sigma)
    /// (`argmin` of the float32 distances, the first on a tie). ComfyUI hands the UNet this
    /// integer, never an interpolated timestep (comfy/model_base.py `_apply_model`).
    pub(crate) fn timestep(&self, sigma: f32) -> usize {
        let log_sigma = sigma.ln();
        let mut best = (0, f32::INFINITY);
        for (i, l) in self.log_sigmas.iter().enumerate() {
            let d = (log_sigma - l).abs();
            if d < best.1 {
                best = (i, d);
            }
        }
        best.0
    }

    /// `sigma(t)`: t clamped to 0..=T−1, log-sigma interpolated linearly between floor(t) and
    /// ceil(t) with w = frac(t), all in float32: `((1 − w)·ls[lo] + w·ls[hi]).exp()`.
    pub(crate) fn sigma(&self, t: f32) -> f32 {
        let t = t.clamp(0.0, (self.sigmas.len() - 1) as f32);
        let (lo, hi) = (t.floor() as usize, t.ceil() as usize);
        let w = t.fract();
        ((1.0 - w) * self.log_sigmas[lo] + w * self.log_sigmas[hi]).exp()
    }

    /// comfy/samplers.py `Sampler.max_denoise`: sigmas[0] is (within rel 1e-5, Python's
    /// `math.isclose`) or above the largest model sigma.
    pub(crate) fn max_denoise(&self, first_sigma: f32) -> bool {
        let (max, s) = (f64::from(self.sigma_max()), f64::from(first_sigma));
        (max - s).abs() <= 1e-5 * max.abs().max(s.abs()) || s > max
    }

    /// `EPS.noise_scaling(sigmas[0], noise, latent_image = 0, max_denoise)` as
    /// comfy/samplers.py `KSAMPLER.sample` calls it: the initial latent is
    /// noise·sqrt(1 + σ²) for a full denoise, else noise·σ (float32 scalar math).
    pub(crate) fn noise_scaling(
        &self,
        first_sigma: f32,
        noise: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let scale = if self.max_denoise(first_sigma) {
            (1.0 + first_sigma * first_sigma).sqrt()
        } else {
            first_sigma
        };
        mul_scalar(noise, scale)
    }

    /// `EPS.calculate_input`: the UNet input x / (σ² + 1)^0.5.
    pub(crate) fn calculate_input(&self, sigma: f32, x: &Tensor) -> candle_core::Result<Tensor> {
        div_scalar(x, (sigma * sigma + 1.0).sqrt())
    }

    /// `EPS.calculate_denoised`: x − ε·σ.
    pub(crate) fn calculate_denoised(
        &self,
        sigma: f32,
        eps: &Tensor,
        x: &Tensor,
    ) -> candle_core::Result<Tensor> {
        x - mul_scalar(eps, sigma)?
    }
}

/// A float32 tensor times a float32 scalar, as torch multiplies by a 0-dim float32 tensor
/// (candle's `affine` multiplies by the scalar as f32; adding 0 changes nothing).
pub(crate) fn mul_scalar(x: &Tensor, s: f32) -> candle_core::Result<Tensor> {
    x.affine(f64::from(s), 0.0)
}

/// A float32 tensor divided by a float32 scalar: a true division, as torch's `x / sigma`
/// (candle's `x / f64` would multiply by the reciprocal, a different rounding).
pub(crate) fn div_scalar(x: &Tensor, s: f32) -> candle_core::Result<Tensor> {
    x.broadcast_div(&Tensor::new(s, x.device())?.to_dtype(x.dtype())?)
}

/// `torch.linspace(start, end, n)` in float32 on the CPU (ATen `linspace_kernel`): step =
/// (end − start)/(n − 1) in float32; the first half counts up from `start`
/// (`start + step·i`), the second half back from `end` (`end − step·(n − 1 − i)`), each value
/// a fused multiply-add rounded once (torch's build contracts `a + b·c` into an FMA). Pinned
/// by the fixtures: without the FMA, karras' ramp `linspace(0, 1, 10)[6]` is 0.66666663
/// instead of 0.6666667 and sgm_uniform's `linspace(999, 0, 12)[3]` 726.54541 instead of
/// 726.54547, each moving a sigma by 7 ulps; counting from `start` alone breaks exponential.
pub(crate) fn linspace_f32(start: f32, end: f32, n: usize) -> Vec<f32> {
    match n {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (end - start) / (n - 1) as f32;
            let half = n / 2;
            (0..n)
                .map(|i| {
                    if i < half {
                        step.mul_add(i as f32, start)
                    } else {
                        (-step).mul_add((n - 1 - i) as f32, end)
                    }
                })
                .collect()
        }
    }
}

/// `torch.linspace(start, end, n, dtype=float64)`, the same two-sided formula in f64.
pub(crate) fn linspace_f64(start: f64, end: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (end - start) / (n - 1) as f64;
            let half = n / 2;
            (0..n)
                .map(|i| {
                    if i < half {
                        start + step * i as f64
                    } else {
                        end - step * (n - 1 - i) as f64
                    }
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd1_table_ends_and_round_trip() {
        let ms = ModelSampling::sd1();
        // The fixtures' simple-scheduler first sigma is sigmas[-1] itself; `sigma(t)` goes
        // through the float32 log table and comes back an ulp or two away.
        assert_eq!(f64::from(ms.sigma_max()), 14.614_641_189_575_195);
        assert_eq!(f64::from(ms.sigma_min()), 0.029_167_158_529_162_407);
        assert_eq!(f64::from(ms.sigma(999.0)), 14.614_640_235_900_879);
        assert_eq!(f64::from(ms.sigma(0.0)), 0.029_167_160_391_807_556);
        assert_eq!(ms.timestep(ms.sigma_max()), 999);
        assert_eq!(ms.timestep(ms.sigma_min()), 0);
        for t in [0usize, 1, 250, 500, 998, 999] {
            assert_eq!(ms.timestep(ms.sigma(t as f32)), t, "t = {t}");
        }
        // Out-of-range timesteps clamp.
        assert_eq!(ms.sigma(-3.0), ms.sigma(0.0));
        assert_eq!(ms.sigma(1e6), ms.sigma(999.0));
    }

    #[test]
    fn max_denoise_uses_a_relative_tolerance() {
        let ms = ModelSampling::sd1();
        assert!(ms.max_denoise(14.614_64));
        assert!(ms.max_denoise(20.0));
        assert!(!ms.max_denoise(14.5));
    }

    #[test]
    fn linspace_is_two_sided() {
        assert_eq!(linspace_f32(999.0, 0.0, 10), {
            let mut v: Vec<f32> = (0..10).map(|i| 999.0 - 111.0 * i as f32).collect();
            v[9] = 0.0;
            v
        });
        let l = linspace_f32(0.0, 1.0, 10);
        assert_eq!((l[0], l[6], l[9]), (0.0, 0.666_666_7, 1.0));
        assert_eq!(
            f64::from(linspace_f32(999.0, 0.0, 12)[3]),
            726.545_471_191_406_2
        );
        assert_eq!(linspace_f64(2.0, 3.0, 1), vec![2.0]);
    }
}
