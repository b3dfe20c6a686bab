//! diffusers `EulerDiscreteScheduler` (Karras et al. 2022, "Elucidating the Design Space of
//! Diffusion-Based Generative Models", Algorithm 2 with s_churn = 0, as the Stable Diffusion
//! pipelines call it).

use super::config::{PredictionType, ResolvedConfig};
use super::protocol::Sampler;
use super::schedule::{euler_schedule, EulerSchedule};
use super::steps::{check_step, derivative_coefficients, euler_scale_input, lincomb};
use crate::noise::BatchNoise;
use candle_core::{DType, Tensor};

pub(crate) struct Euler {
    schedule: EulerSchedule,
    prediction: PredictionType,
}

impl Euler {
    pub(crate) fn new(c: &ResolvedConfig, steps: usize) -> crate::Result<Self> {
        let schedule = euler_schedule(&c.schedule_params(), steps)?;
        if c.prediction_type == PredictionType::Sample {
            if let Some(i) = (0..steps).find(|i| schedule.sigmas[*i] <= 0.0) {
                return Err(crate::Error::Model(format!(
                    "prediction_type 'sample' needs sigma > 0 at every step, but step {i} has \
                     sigma 0; check trained_betas"
                )));
            }
        }
        Ok(Self {
            schedule,
            prediction: c.prediction_type,
        })
    }
}

impl Sampler for Euler {
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

    /// EulerDiscreteScheduler.step with s_churn = 0 (so sigma_hat = sigma, no noise):
    /// x' = x + (σ_{i+1} − σ_i)·d.
    fn step(
        &mut self,
        model_output: &Tensor,
        i: usize,
        sample: &Tensor,
        _noise: &mut BatchNoise,
    ) -> candle_core::Result<Tensor> {
        check_step(i, self.schedule.timesteps.len())?;
        let sample = sample.to_dtype(DType::F32)?;
        let model_output = model_output.to_dtype(DType::F32)?;
        let sigma = self.schedule.sigmas[i];
        let dt = self.schedule.sigmas[i + 1] - sigma;
        let (a, b) = derivative_coefficients(self.prediction, sigma);
        lincomb(1.0 + dt * a, &sample, dt * b, &model_output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::schedule::sigmas_from_alphas_cumprod;
    use crate::sampler::{SamplerKind, SchedulerConfig};
    use candle_core::Device;

    fn euler(json: &str, steps: usize) -> Euler {
        let c = SchedulerConfig::from_json(json)
            .unwrap()
            .resolve(SamplerKind::Euler)
            .unwrap();
        Euler::new(&c, steps).unwrap()
    }

    const SD: &str = r#"{"beta_schedule": "scaled_linear", "beta_start": 0.00085,
                         "beta_end": 0.012, "steps_offset": 1}"#;

    #[test]
    fn v_prediction_step_matches_the_diffusers_formula() {
        // No fixture runs Euler with v_prediction, so one step is checked against diffusers'
        // EulerDiscreteScheduler.step written out literally:
        //   pred_original_sample = model_output * (-sigma / (sigma**2 + 1) ** 0.5)
        //                          + sample / (sigma**2 + 1)
        //   derivative = (sample - pred_original_sample) / sigma
        //   prev_sample = sample + derivative * (sigma_next - sigma)
        let json = r#"{"beta_schedule": "scaled_linear", "beta_start": 0.00085,
                       "beta_end": 0.012, "prediction_type": "v_prediction"}"#;
        let mut e = euler(json, 5);
        let (x, v) = ([1.5f64, -0.25, 3.0], [0.5f64, 2.0, -1.0]);
        let dev = Device::Cpu;
        let xs = Tensor::new(&[x.map(|a| a as f32)], &dev).unwrap();
        let vs = Tensor::new(&[v.map(|a| a as f32)], &dev).unwrap();
        let mut noise = BatchNoise::new(vec![]);
        for i in [0, 2, 4] {
            let (sigma, next) = (e.schedule.sigmas[i], e.schedule.sigmas[i + 1]);
            let got: Vec<f32> = e
                .step(&vs, i, &xs, &mut noise)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            for k in 0..3 {
                let x0 =
                    v[k] * (-sigma / (sigma * sigma + 1.0).sqrt()) + x[k] / (sigma * sigma + 1.0);
                let d = (x[k] - x0) / sigma;
                let want = x[k] + d * (next - sigma);
                assert!(
                    (got[k] as f64 - want).abs() < 1e-5 * (1.0 + want.abs()),
                    "{i} {k}"
                );
            }
        }
    }

    #[test]
    fn sample_prediction_step_matches_the_diffusers_formula() {
        // diffusers: pred_original_sample = model_output; derivative = (sample - x0) / sigma.
        let json = r#"{"prediction_type": "original_sample"}"#;
        let mut e = euler(json, 4);
        let dev = Device::Cpu;
        let xs = Tensor::new(&[2.0f32, -1.0], &dev).unwrap();
        let x0 = Tensor::new(&[0.5f32, 0.25], &dev).unwrap();
        let (sigma, next) = (e.schedule.sigmas[1], e.schedule.sigmas[2]);
        let got: Vec<f32> = e
            .step(&x0, 1, &xs, &mut BatchNoise::new(vec![]))
            .unwrap()
            .to_vec1()
            .unwrap();
        for (k, (x, p)) in [(2.0, 0.5), (-1.0, 0.25)].into_iter().enumerate() {
            let want = x + (x - p) / sigma * (next - sigma);
            assert!((got[k] as f64 - want).abs() < 1e-5, "{k}");
        }
    }

    #[test]
    fn leading_spacing_scales_initial_noise_by_sqrt_sigma_sq_plus_one() {
        // diffusers quirk: init_noise_sigma is sqrt(sigma_max² + 1) for "leading" only.
        let e = euler(&SD.replace("}", r#", "timestep_spacing": "leading"}"#), 10);
        let s = e.schedule.sigmas[0];
        assert_eq!(e.timesteps()[0], 901.0);
        assert!((e.init_noise_sigma() - (s * s + 1.0).sqrt()).abs() < 1e-12);
        let e = euler(&SD.replace("}", r#", "timestep_spacing": "trailing"}"#), 10);
        assert_eq!(e.init_noise_sigma(), e.schedule.sigmas[0]);
    }

    #[test]
    fn linspace_keeps_fractional_timesteps_and_interpolates_sigmas() {
        // np.linspace(0, 999, 7)[::-1] = [999, 832.5, 666, 499.5, 333, 166.5, 0].
        let e = euler(SD, 7);
        assert_eq!(
            e.timesteps(),
            &[999.0, 832.5, 666.0, 499.5, 333.0, 166.5, 0.0]
        );
        let c = SchedulerConfig::from_json(SD)
            .unwrap()
            .resolve(SamplerKind::Euler)
            .unwrap();
        let train = sigmas_from_alphas_cumprod(&c.alphas_cumprod());
        let mid = (train[832] + train[833]) / 2.0;
        assert!((e.schedule.sigmas[1] - mid).abs() < 1e-12 * mid);
        assert_eq!(e.schedule.sigmas[7], 0.0);
    }

    #[test]
    fn sigma_min_final_sigma() {
        let e = euler(
            &SD.replace("}", r#", "final_sigmas_type": "sigma_min"}"#),
            3,
        );
        let last = *e.schedule.sigmas.last().unwrap();
        assert_eq!(last, e.schedule.sigmas[2]); // linspace ends at t = 0, whose sigma is sigma_min
        assert!(last > 0.029 && last < 0.03);
    }

    #[test]
    fn step_index_out_of_range_is_an_error() {
        let mut e = euler(SD, 2);
        let x = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        assert!(e.step(&x, 2, &x, &mut BatchNoise::new(vec![])).is_err());
        assert!(e.scale_model_input(&x, 2).is_err());
    }
}
