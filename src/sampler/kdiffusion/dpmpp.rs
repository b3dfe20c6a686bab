//! comfy/k_diffusion/sampling.py `sample_dpmpp_2m`: DPM-Solver++(2M) (Lu et al. 2022) in
//! t = −log σ, float32 scalar math as ComfyUI's 0-dim tensors do it.

use super::common::Model;
use super::sigmas::mul_scalar;
use candle_core::Tensor;

/// `sample_dpmpp_2m`: the first step and the step to σ = 0 are first order
/// (x ← (σ_{i+1}/σ_i)·x − expm1(−h)·x̂₀); the others extrapolate x̂₀ from the previous one with
/// r = h_last / h: (1 + 1/(2r))·x̂₀ − 1/(2r)·x̂₀_prev.
pub(crate) fn sample_dpmpp_2m(
    model: &mut Model,
    mut x: Tensor,
    sigmas: &[f32],
) -> candle_core::Result<Tensor> {
    let t_fn = |sigma: f32| -sigma.ln();
    let sigma_fn = |t: f32| (-t).exp();
    let mut old_denoised: Option<Tensor> = None;
    for i in 0..sigmas.len().saturating_sub(1) {
        let denoised = model(&x, sigmas[i])?;
        let (t, t_next) = (t_fn(sigmas[i]), t_fn(sigmas[i + 1]));
        let h = t_next - t;
        let ratio = sigma_fn(t_next) / sigma_fn(t);
        let phi = (-h).exp_m1();
        let target = match &old_denoised {
            Some(old) if sigmas[i + 1] != 0.0 => {
                let h_last = t - t_fn(sigmas[i - 1]);
                let r = h_last / h;
                let k = 1.0 / (2.0 * r);
                (mul_scalar(&denoised, 1.0 + k)? - mul_scalar(old, k)?)?
            }
            _ => denoised.clone(),
        };
        x = (mul_scalar(&x, ratio)? - mul_scalar(&target, phi)?)?;
        old_denoised = Some(denoised);
    }
    Ok(x)
}
