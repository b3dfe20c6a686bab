//! diffusers `LCMScheduler` (Luo et al. 2023, "Latent Consistency Models", Algorithm 1
//! multistep sampling; the boundary-condition scalings of Song et al. 2023, "Consistency
//! Models", eq. (7) with σ_data = 0.5).
//!
//! Timesteps come from the distillation schedule, not from `timestep_spacing`: with
//! k = T // original_inference_steps the model knows t = k·j − 1 for j = 1..=original steps;
//! `steps` of them are taken at indices floor(linspace(0, original, steps, endpoint=False)) of
//! that list reversed (4 of 50: 999, 759, 499, 259). Each step predicts x̂₀, applies the
//! consistency scalings c_skip, c_out at t·timestep_scaling, and (except at the last step)
//! re-noises to the next timestep with a fresh draw: x' = √ᾱ_next·denoised + √(1−ᾱ_next)·z.

use super::config::{PredictionType, ResolvedConfig};
use super::protocol::Sampler;
use super::steps::{check_step, lincomb, predicted_x0};
use crate::noise::BatchNoise;
use crate::Error;
use candle_core::{DType, Tensor};

/// The schedule scalars of one LCM step.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LcmStep {
    alpha_t: f64,
    /// ᾱ of the next timestep (unused at the last step).
    alpha_next: f64,
    c_skip: f64,
    c_out: f64,
}

pub(crate) struct Lcm {
    timesteps: Vec<f64>,
    steps: Vec<LcmStep>,
    prediction: PredictionType,
    clip_sample_range: Option<f64>,
}

/// Song et al. 2023 eq. (7) as diffusers' `get_scalings_for_boundary_condition_discrete`:
/// s = t·timestep_scaling, c_skip = σ_d²/(s² + σ_d²), c_out = s/√(s² + σ_d²), σ_d = 0.5.
fn boundary_scalings(t: f64, timestep_scaling: f64) -> (f64, f64) {
    const SIGMA_DATA: f64 = 0.5;
    let s = t * timestep_scaling;
    let d2 = SIGMA_DATA * SIGMA_DATA;
    (d2 / (s * s + d2), s / (s * s + d2).sqrt())
}

/// LCMScheduler.set_timesteps (strength 1, no custom timesteps).
fn lcm_timesteps(c: &ResolvedConfig, steps: usize) -> crate::Result<Vec<f64>> {
    let orig = c.original_inference_steps;
    if steps == 0 || steps > orig {
        return Err(Error::Invalid(format!(
            "{steps} steps is out of range for LCM: use 1 to {orig} steps (the model's \
             original_inference_steps; LCM is meant for 2 to 8)"
        )));
    }
    let k = c.num_train_timesteps / orig;
    // lcm_origin_timesteps reversed: k·j − 1 for j = orig..=1.
    let origin: Vec<usize> = (1..=orig).rev().map(|j| j * k - 1).collect();
    // np.linspace(0, orig, steps, endpoint=False) = i · (orig / steps), floored.
    let step = orig as f64 / steps as f64;
    Ok((0..steps)
        .map(|i| origin[(i as f64 * step).floor() as usize] as f64)
        .collect())
}

impl Lcm {
    pub(crate) fn new(c: &ResolvedConfig, steps: usize) -> crate::Result<Self> {
        let timesteps = lcm_timesteps(c, steps)?;
        let alphas_cumprod = c.alphas_cumprod();
        let table: Vec<LcmStep> = timesteps
            .iter()
            .enumerate()
            .map(|(i, t)| {
                // The last step "goes" to its own timestep; its alpha_next is not used.
                let next = timesteps.get(i + 1).unwrap_or(t);
                let (c_skip, c_out) = boundary_scalings(*t, c.timestep_scaling);
                LcmStep {
                    alpha_t: alphas_cumprod[*t as usize],
                    alpha_next: alphas_cumprod[*next as usize],
                    c_skip,
                    c_out,
                }
            })
            .collect();
        if let Some(s) = table.iter().find(|s| {
            s.alpha_t <= 0.0 && c.prediction_type == PredictionType::Epsilon || s.alpha_t >= 1.0
        }) {
            return Err(Error::Model(format!(
                "alphas_cumprod is {} at an LCM timestep, where the prediction cannot be \
                 inverted; check the beta settings in scheduler_config.json",
                s.alpha_t
            )));
        }
        Ok(Self {
            timesteps,
            steps: table,
            prediction: c.prediction_type,
            clip_sample_range: c.clip_sample_range,
        })
    }
}

impl Sampler for Lcm {
    fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    fn init_noise_sigma(&self) -> f64 {
        1.0
    }

    /// LCM does not scale the model input.
    fn scale_model_input(&self, sample: &Tensor, i: usize) -> candle_core::Result<Tensor> {
        check_step(i, self.timesteps.len())?;
        Ok(sample.clone())
    }

    /// LCMScheduler.step: x̂₀ from the model output (clipped if configured),
    /// denoised = c_out·x̂₀ + c_skip·x; then one noise draw to go to the next timestep, except
    /// at the last step, which returns `denoised`.
    fn step(
        &mut self,
        model_output: &Tensor,
        i: usize,
        sample: &Tensor,
        noise: &mut BatchNoise,
    ) -> candle_core::Result<Tensor> {
        check_step(i, self.timesteps.len())?;
        let sample = sample.to_dtype(DType::F32)?;
        let model_output = model_output.to_dtype(DType::F32)?;
        let s = self.steps[i];
        let (sqrt_a, sqrt_b) = (s.alpha_t.sqrt(), (1.0 - s.alpha_t).sqrt());
        let x0 = predicted_x0(self.prediction, sqrt_a, sqrt_b, &sample, &model_output)?;
        let x0 = match self.clip_sample_range {
            Some(r) => x0.clamp(-r, r)?,
            None => x0,
        };
        let denoised = lincomb(s.c_out, &x0, s.c_skip, &sample)?;
        if i + 1 == self.timesteps.len() {
            return Ok(denoised);
        }
        let z = noise.draw_tensor(denoised.dims(), denoised.device())?;
        lincomb(
            s.alpha_next.sqrt(),
            &denoised,
            (1.0 - s.alpha_next).sqrt(),
            &z,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{SamplerKind, SchedulerConfig};

    fn resolved(json: &str) -> ResolvedConfig {
        SchedulerConfig::from_json(json)
            .unwrap()
            .resolve(SamplerKind::Lcm)
            .unwrap()
    }

    #[test]
    fn timesteps_follow_the_distillation_schedule() {
        // origin = [19, 39, …, 999] reversed; floor(linspace(0, 50, n, endpoint=False)):
        // n = 4: indices 0, 12, 25, 37; n = 3: 0, 16, 33; n = 1: 0.
        let c = resolved("{}");
        assert_eq!(
            lcm_timesteps(&c, 4).unwrap(),
            vec![999.0, 759.0, 499.0, 259.0]
        );
        assert_eq!(lcm_timesteps(&c, 3).unwrap(), vec![999.0, 679.0, 339.0]);
        assert_eq!(lcm_timesteps(&c, 1).unwrap(), vec![999.0]);
        assert!(lcm_timesteps(&c, 51).is_err());
        // original_inference_steps 8: k = 125, origin 124, 249, …, 999.
        let c = resolved(r#"{"original_inference_steps": 8}"#);
        assert_eq!(
            lcm_timesteps(&c, 4).unwrap(),
            vec![999.0, 749.0, 499.0, 249.0]
        );
    }

    #[test]
    fn boundary_scalings_by_hand() {
        // t = 259, scaling 10: s = 2590; c_skip = 0.25/(2590² + 0.25), c_out = 2590/√(2590² + 0.25)
        let (c_skip, c_out) = boundary_scalings(259.0, 10.0);
        assert!((c_skip - 0.25 / (2590.0f64.powi(2) + 0.25)).abs() < 1e-18);
        assert!((c_out - 2590.0 / (2590.0f64.powi(2) + 0.25).sqrt()).abs() < 1e-15);
        assert_eq!(boundary_scalings(0.0, 10.0), (1.0, 0.0));
    }
}
