//! What every sampler is: the `Sampler` trait, diffusers' scheduler protocol.

use crate::noise::BatchNoise;
use candle_core::Tensor;

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
