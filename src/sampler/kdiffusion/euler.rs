//! comfy/k_diffusion/sampling.py `sample_euler` (Karras et al. 2022, Algorithm 2 without
//! churn) and `sample_euler_ancestral` (ε models; eta and s_noise as parameters, ComfyUI's
//! KSampler uses 1 and 1).

use super::common::{ancestral_step, euler_step, scaled_noise, to_d, Model};
use crate::noise::BatchNoise;
use candle_core::Tensor;

/// `sample_euler` with s_churn = 0: x ← x + d·(σ_{i+1} − σ_i), one model call per step.
pub(crate) fn sample_euler(
    model: &mut Model,
    mut x: Tensor,
    sigmas: &[f32],
) -> candle_core::Result<Tensor> {
    for i in 0..sigmas.len().saturating_sub(1) {
        let denoised = model(&x, sigmas[i])?;
        let d = to_d(&x, sigmas[i], &denoised)?;
        x = euler_step(&x, &d, sigmas[i + 1] - sigmas[i])?;
    }
    Ok(x)
}

/// `sample_euler_ancestral`: an Euler step down to sigma_down, then fresh noise of size
/// sigma_up. A step whose sigma_down is 0 returns the denoised latent and draws nothing, so
/// a schedule ending in 0 draws once per step but the last.
pub(crate) fn sample_euler_ancestral(
    model: &mut Model,
    mut x: Tensor,
    sigmas: &[f32],
    eta: f32,
    s_noise: f32,
    noise: &mut BatchNoise,
) -> candle_core::Result<Tensor> {
    for i in 0..sigmas.len().saturating_sub(1) {
        let denoised = model(&x, sigmas[i])?;
        let (down, up) = ancestral_step(sigmas[i], sigmas[i + 1], eta);
        if down == 0.0 {
            x = denoised;
        } else {
            let d = to_d(&x, sigmas[i], &denoised)?;
            let stepped = euler_step(&x, &d, down - sigmas[i])?;
            x = (stepped + scaled_noise(noise, &x, s_noise, up)?)?;
        }
    }
    Ok(x)
}
