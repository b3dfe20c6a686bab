//! diffusers `EulerAncestralDiscreteScheduler`: an Euler step down to sigma_down, then fresh
//! noise of size sigma_up (k-diffusion's `sample_euler_ancestral` with eta = 1; Karras et al.
//! 2022). Noise is drawn at every step, the last included (where sigma_up is 0).

use super::config::{PredictionType, ResolvedConfig};
use super::protocol::Sampler;
use super::schedule::{euler_schedule, EulerSchedule};
use super::steps::{check_step, derivative_coefficients, euler_scale_input, lincomb};
use crate::noise::BatchNoise;
use candle_core::{DType, Tensor};

pub(crate) struct EulerAncestral {
    schedule: EulerSchedule,
    prediction: PredictionType,
}

/// sigma_up = sqrt(σ_to² (σ_from² − σ_to²) / σ_from²), sigma_down = sqrt(σ_to² − sigma_up²).
pub(super) fn ancestral_sigmas(sigma_from: f64, sigma_to: f64) -> (f64, f64) {
    let (from2, to2) = (sigma_from * sigma_from, sigma_to * sigma_to);
    let up = (to2 * (from2 - to2) / from2).sqrt();
    let down = (to2 - up * up).sqrt();
    (up, down)
}

impl EulerAncestral {
    pub(crate) fn new(c: &ResolvedConfig, steps: usize) -> crate::Result<Self> {
        // The resolver refuses "sample" for this class (diffusers raises NotImplementedError).
        Ok(Self {
            schedule: euler_schedule(&c.schedule_params(), steps)?,
            prediction: c.prediction_type,
        })
    }
}

impl Sampler for EulerAncestral {
    fn timesteps(&self) -> &[f64] {
        &self.schedule.timesteps
    }

    fn init_noise_sigma(&self) -> f64 {
        self.schedule.init_noise_sigma
    }

    fn sigmas(&self) -> Option<&[f64]> {
        Some(&self.schedule.sigmas)
    }

    fn scale_model_input(&self, sample: &Tensor, i: usize) -> candle_core::Result<Tensor> {
        check_step(i, self.schedule.timesteps.len())?;
        euler_scale_input(sample, self.schedule.sigmas[i])
    }

    /// EulerAncestralDiscreteScheduler.step: x' = x + (sigma_down − σ)·d + sigma_up·z, with one
    /// noise draw z of the model output's shape.
    fn step(
        &mut self,
        model_output: &Tensor,
        i: usize,
        sample: &Tensor,
        noise: &mut BatchNoise,
    ) -> candle_core::Result<Tensor> {
        check_step(i, self.schedule.timesteps.len())?;
        let sample = sample.to_dtype(DType::F32)?;
        let model_output = model_output.to_dtype(DType::F32)?;
        let sigma = self.schedule.sigmas[i];
        let (up, down) = ancestral_sigmas(sigma, self.schedule.sigmas[i + 1]);
        let dt = down - sigma;
        let (a, b) = derivative_coefficients(self.prediction, sigma);
        let z = noise.draw_tensor(model_output.dims(), model_output.device())?;
        lincomb(1.0 + dt * a, &sample, dt * b, &model_output)? + z.affine(up, 0.0)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::NoiseSource;
    use crate::sampler::{SamplerKind, SchedulerConfig};
    use candle_core::Device;

    /// Replays fixed values, counting the draws.
    struct Replay(Vec<f32>, usize);
    impl NoiseSource for Replay {
        fn randn(&mut self, n: usize) -> Vec<f32> {
            self.1 += 1;
            self.0[..n].to_vec()
        }
    }

    #[test]
    fn v_prediction_step_matches_the_diffusers_formula() {
        // Written out from EulerAncestralDiscreteScheduler.step (diffusers 0.42):
        //   x0 = v * (-sigma / (sigma**2 + 1) ** 0.5) + x / (sigma**2 + 1)
        //   sigma_up = (to**2 * (from**2 - to**2) / from**2) ** 0.5
        //   sigma_down = (to**2 - sigma_up**2) ** 0.5
        //   prev = x + (x - x0) / sigma * (sigma_down - sigma) + z * sigma_up
        let c = SchedulerConfig::from_json(
            r#"{"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                "prediction_type": "v_prediction"}"#,
        )
        .unwrap()
        .resolve(SamplerKind::EulerAncestral)
        .unwrap();
        let mut e = EulerAncestral::new(&c, 4).unwrap();
        let (x, v, z) = ([1.5f64, -0.25], [0.5f64, 2.0], [0.3f32, -1.2]);
        let dev = Device::Cpu;
        let xs = Tensor::new(&[x.map(|a| a as f32)], &dev).unwrap();
        let vs = Tensor::new(&[v.map(|a| a as f32)], &dev).unwrap();
        let mut noise = BatchNoise::new(vec![Box::new(Replay(z.to_vec(), 0))]);
        let (from, to) = (e.schedule.sigmas[1], e.schedule.sigmas[2]);
        let got: Vec<f32> = e
            .step(&vs, 1, &xs, &mut noise)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let up = (to * to * (from * from - to * to) / (from * from)).sqrt();
        let down = (to * to - up * up).sqrt();
        for k in 0..2 {
            let x0 = v[k] * (-from / (from * from + 1.0).sqrt()) + x[k] / (from * from + 1.0);
            let want = x[k] + (x[k] - x0) / from * (down - from) + z[k] as f64 * up;
            assert!(
                (got[k] as f64 - want).abs() < 1e-5 * (1.0 + want.abs()),
                "{k}"
            );
        }
    }

    #[test]
    fn last_step_draws_noise_with_zero_weight() {
        let (up, down) = ancestral_sigmas(0.03, 0.0);
        assert_eq!((up, down), (0.0, 0.0));
        let (up, down) = ancestral_sigmas(2.0, 1.0);
        // up² + down² = to²
        assert!((up * up + down * down - 1.0).abs() < 1e-15);
        assert!((up - (0.75f64).sqrt()).abs() < 1e-15);
    }
}
