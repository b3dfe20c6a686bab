//! The second-order samplers of comfy/k_diffusion/sampling.py: `sample_heun` (Karras et al.
//! 2022, Algorithm 2 without churn), `sample_dpm_2` (DPM-Solver-2 style midpoint in log σ) and
//! `sample_dpm_2_ancestral` (ε models). Each makes two model calls per step but the last
//! (to σ = 0), which is an Euler step.

use super::common::{ancestral_step, euler_step, scaled_noise, to_d, Model};
use crate::noise::BatchNoise;
use candle_core::Tensor;

/// `sample_heun` with s_churn = 0: the Euler predictor x₂ = x + d·dt, then the trapezoid
/// x + (d + d₂)/2·dt with d₂ at σ_{i+1}.
pub(crate) fn sample_heun(
    model: &mut Model,
    mut x: Tensor,
    sigmas: &[f32],
) -> candle_core::Result<Tensor> {
    for i in 0..sigmas.len().saturating_sub(1) {
        let (sigma, next) = (sigmas[i], sigmas[i + 1]);
        let denoised = model(&x, sigma)?;
        let d = to_d(&x, sigma, &denoised)?;
        let dt = next - sigma;
        if next == 0.0 {
            x = euler_step(&x, &d, dt)?;
        } else {
            let x2 = euler_step(&x, &d, dt)?;
            let denoised2 = model(&x2, next)?;
            let d2 = to_d(&x2, next, &denoised2)?;
            let d_prime = ((d + d2)? / 2.0)?;
            x = euler_step(&x, &d_prime, dt)?;
        }
    }
    Ok(x)
}

/// `sigma.log().lerp(other.log(), 0.5).exp()` in float32: torch's `lerp` for weight ≥ 0.5 is
/// `end − (end − start)·(1 − weight)`.
fn log_midpoint(sigma: f32, other: f32) -> f32 {
    let (start, end) = (sigma.ln(), other.ln());
    (end - (end - start) * 0.5).exp()
}

/// `sample_dpm_2` with s_churn = 0: a half step (in log σ) to σ_mid, then the full step with
/// the derivative there.
pub(crate) fn sample_dpm_2(
    model: &mut Model,
    mut x: Tensor,
    sigmas: &[f32],
) -> candle_core::Result<Tensor> {
    for i in 0..sigmas.len().saturating_sub(1) {
        let (sigma, next) = (sigmas[i], sigmas[i + 1]);
        let denoised = model(&x, sigma)?;
        let d = to_d(&x, sigma, &denoised)?;
        if next == 0.0 {
            x = euler_step(&x, &d, next - sigma)?;
        } else {
            let mid = log_midpoint(sigma, next);
            let x2 = euler_step(&x, &d, mid - sigma)?;
            let denoised2 = model(&x2, mid)?;
            let d2 = to_d(&x2, mid, &denoised2)?;
            x = euler_step(&x, &d2, next - sigma)?;
        }
    }
    Ok(x)
}

/// `sample_dpm_2_ancestral`: the DPM-2 step down to sigma_down, then noise of size sigma_up
/// (drawn only when sigma_down > 0).
pub(crate) fn sample_dpm_2_ancestral(
    model: &mut Model,
    mut x: Tensor,
    sigmas: &[f32],
    eta: f32,
    s_noise: f32,
    noise: &mut BatchNoise,
) -> candle_core::Result<Tensor> {
    for i in 0..sigmas.len().saturating_sub(1) {
        let sigma = sigmas[i];
        let denoised = model(&x, sigma)?;
        let (down, up) = ancestral_step(sigma, sigmas[i + 1], eta);
        let d = to_d(&x, sigma, &denoised)?;
        if down == 0.0 {
            x = euler_step(&x, &d, down - sigma)?;
        } else {
            let mid = log_midpoint(sigma, down);
            let x2 = euler_step(&x, &d, mid - sigma)?;
            let denoised2 = model(&x2, mid)?;
            let d2 = to_d(&x2, mid, &denoised2)?;
            let stepped = euler_step(&x, &d2, down - sigma)?;
            x = (&stepped + scaled_noise(noise, &stepped, s_noise, up)?)?;
        }
    }
    Ok(x)
}
