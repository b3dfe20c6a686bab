//! What the k-diffusion samplers share (comfy/k_diffusion/sampling.py): the denoiser type,
//! `to_d`, `get_ancestral_step` and the noise draw of an ancestral step.

use super::sigmas::{div_scalar, mul_scalar};
use crate::noise::BatchNoise;
use candle_core::Tensor;

/// The denoiser a sampler calls: `(x, sigma) -> denoised` (k-diffusion's `model(x, sigma *
/// s_in)`, here ComfyUI's CFG-guided x̂₀ prediction; see `mod.rs`).
pub(crate) type Model<'a> = dyn FnMut(&Tensor, f32) -> candle_core::Result<Tensor> + 'a;

/// `to_d(x, sigma, denoised)`: the Karras ODE derivative (x − x̂₀)/σ, a true float32 division.
pub(super) fn to_d(x: &Tensor, sigma: f32, denoised: &Tensor) -> candle_core::Result<Tensor> {
    div_scalar(&(x - denoised)?, sigma)
}

/// x + d·dt, float32.
pub(super) fn euler_step(x: &Tensor, d: &Tensor, dt: f32) -> candle_core::Result<Tensor> {
    x + mul_scalar(d, dt)?
}

/// `get_ancestral_step(sigma_from, sigma_to, eta)` in float32 (ComfyUI passes 0-dim float32
/// tensors): sigma_up = min(σ_to, η·(σ_to²(σ_from² − σ_to²)/σ_from²)^0.5),
/// sigma_down = (σ_to² − sigma_up²)^0.5. Returns (sigma_down, sigma_up); eta 0 gives (σ_to, 0).
pub(super) fn ancestral_step(sigma_from: f32, sigma_to: f32, eta: f32) -> (f32, f32) {
    if eta == 0.0 {
        return (sigma_to, 0.0);
    }
    let (from2, to2) = (sigma_from * sigma_from, sigma_to * sigma_to);
    let up = eta * (to2 * (from2 - to2) / from2).sqrt();
    // Python's min(a, b) keeps a unless b < a.
    let up = if up < sigma_to { up } else { sigma_to };
    let down = (to2 - up * up).sqrt();
    (down, up)
}

/// One `noise_sampler(sigma, sigma_next)` draw of x's shape, times s_noise·sigma_up
/// (`noise_sampler(...) * s_noise * sigma_up`, left to right in float32).
pub(super) fn scaled_noise(
    noise: &mut BatchNoise,
    like: &Tensor,
    s_noise: f32,
    sigma_up: f32,
) -> candle_core::Result<Tensor> {
    let z = noise.draw_tensor(like.dims(), like.device())?;
    mul_scalar(&mul_scalar(&z, s_noise)?, sigma_up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestral_step_splits_sigma_to() {
        let (down, up) = ancestral_step(2.0, 1.0, 1.0);
        assert!((up - 0.75f32.sqrt()).abs() < 1e-7);
        assert!((down * down + up * up - 1.0).abs() < 1e-6);
        assert_eq!(ancestral_step(0.03, 0.0, 1.0), (0.0, 0.0));
        assert_eq!(ancestral_step(2.0, 1.0, 0.0), (1.0, 0.0));
    }
}
