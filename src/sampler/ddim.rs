//! diffusers `DDIMScheduler` (Song et al. 2020, "Denoising Diffusion Implicit Models"):
//! eq. (12) for the step, eq. (16) for the noise scale sigma_t(eta). With eta > 0 one noise
//! tensor is drawn at every step, the last included.
//!
//! diffusers quirk kept on purpose: the "previous" timestep is always
//! `t - num_train_timesteps // steps`, whatever the spacing. With "leading" that is the next
//! timestep; with "trailing" (when T % steps != 0) or "linspace" it is not (10 linspace steps:
//! 999 → 899 while the next timestep is 888), so DDIM then steps to a slightly different noise
//! level than the one the model sees next. We reproduce it to match diffusers' images.

use super::config::{PredictionType, ResolvedConfig};
use super::protocol::Sampler;
use super::schedule::{spaced_timesteps, TimestepSpacing};
use super::steps::{check_step, lincomb, predicted_x0};
use crate::noise::BatchNoise;
use crate::Error;
use candle_core::{DType, Tensor};

/// The schedule scalars of one DDIM step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct DdimStep {
    /// alphas_cumprod[t]
    pub alpha_prod_t: f64,
    /// alphas_cumprod[t_prev], or the final alpha (1 with set_alpha_to_one, else
    /// alphas_cumprod[0]) once t_prev < 0.
    pub alpha_prod_t_prev: f64,
    /// sigma_t = eta · sqrt((1 − ᾱ_prev)/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_prev)), eq. (16).
    pub std_dev_t: f64,
}

pub(crate) struct Ddim {
    timesteps: Vec<f64>,
    steps: Vec<DdimStep>,
    eta: f64,
    prediction: PredictionType,
    clip_sample_range: Option<f64>,
}

impl Ddim {
    pub(crate) fn new(c: &ResolvedConfig, steps: usize, eta: f64) -> crate::Result<Self> {
        if !(eta.is_finite() && eta >= 0.0) {
            return Err(Error::Invalid(format!(
                "eta {eta} is not valid for DDIM; use a value from 0 (deterministic) to 1"
            )));
        }
        let t_max = c.num_train_timesteps;
        let mut timesteps = spaced_timesteps(c.timestep_spacing, t_max, steps, c.steps_offset)?;
        if c.timestep_spacing == TimestepSpacing::Linspace {
            // DDIM rounds np.linspace (half to even, as numpy) to integer timesteps.
            timesteps.iter_mut().for_each(|t| *t = t.round_ties_even());
        }
        let alphas_cumprod = c.alphas_cumprod();
        let final_alpha = if c.set_alpha_to_one {
            1.0
        } else {
            alphas_cumprod[0]
        };
        let stride = (t_max / steps) as i64;
        let table: Vec<DdimStep> = timesteps
            .iter()
            .map(|t| {
                let t = *t as i64;
                let prev = t - stride;
                let alpha_prod_t = alphas_cumprod[t as usize];
                let alpha_prod_t_prev = if prev >= 0 {
                    alphas_cumprod[prev as usize]
                } else {
                    final_alpha
                };
                let variance = (1.0 - alpha_prod_t_prev) / (1.0 - alpha_prod_t)
                    * (1.0 - alpha_prod_t / alpha_prod_t_prev);
                DdimStep {
                    alpha_prod_t,
                    alpha_prod_t_prev,
                    std_dev_t: eta * variance.sqrt(),
                }
            })
            .collect();
        check_table(&table, &timesteps, eta, c.prediction_type)?;
        Ok(Self {
            timesteps,
            steps: table,
            eta,
            prediction: c.prediction_type,
            clip_sample_range: c.clip_sample_range,
        })
    }

    /// The schedule scalars of step `i`.
    #[cfg(test)]
    fn step_scalars(&self, i: usize) -> DdimStep {
        self.steps[i]
    }
}

/// Refuses schedules where diffusers would divide by zero or take the root of a negative number
/// (it would produce NaN latents): ᾱ_t = 1 (zero beta), ᾱ_t = 0 with epsilon prediction (zero
/// terminal SNR is meant for v_prediction), or eta so large that 1 − ᾱ_prev − σ_t² < 0.
fn check_table(
    table: &[DdimStep],
    timesteps: &[f64],
    eta: f64,
    prediction: PredictionType,
) -> crate::Result<()> {
    for (s, t) in table.iter().zip(timesteps) {
        if s.alpha_prod_t >= 1.0 {
            return Err(Error::Model(format!(
                "alphas_cumprod is 1 at timestep {t} (a zero beta); DDIM cannot step from it. \
                 Check trained_betas / beta_start in scheduler_config.json"
            )));
        }
        if s.alpha_prod_t <= 0.0 && prediction == PredictionType::Epsilon {
            return Err(Error::Model(format!(
                "alphas_cumprod is 0 at timestep {t} (rescale_betas_zero_snr), where an epsilon \
                 model gives no information about the image; use a v_prediction model or \
                 timestep_spacing 'leading'"
            )));
        }
        if 1.0 - s.alpha_prod_t_prev - s.std_dev_t * s.std_dev_t < 0.0 {
            return Err(Error::Invalid(format!(
                "eta {eta} is too large for DDIM at timestep {t}; use a value from 0 to 1"
            )));
        }
    }
    Ok(())
}

impl Sampler for Ddim {
    fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    fn init_noise_sigma(&self) -> f64 {
        1.0
    }

    /// DDIM does not scale the model input.
    fn scale_model_input(&self, sample: &Tensor, i: usize) -> candle_core::Result<Tensor> {
        check_step(i, self.timesteps.len())?;
        Ok(sample.clone())
    }

    /// DDIMScheduler.step (use_clipped_model_output = False, as the pipelines call it):
    /// x̂₀ and ε̂ from the model output, x̂₀ clipped if configured, then eq. (12):
    /// x_prev = sqrt(ᾱ_prev)·x̂₀ + sqrt(1 − ᾱ_prev − σ_t²)·ε̂ + σ_t·z.
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
        let (sqrt_a, sqrt_b) = (s.alpha_prod_t.sqrt(), (1.0 - s.alpha_prod_t).sqrt());
        let x0 = predicted_x0(self.prediction, sqrt_a, sqrt_b, &sample, &model_output)?;
        let eps = match self.prediction {
            PredictionType::Epsilon => model_output,
            // ε̂ = sqrt(ᾱ)·v + sqrt(1−ᾱ)·x
            PredictionType::VPrediction => lincomb(sqrt_b, &sample, sqrt_a, &model_output)?,
            // ε̂ = (x − sqrt(ᾱ)·x̂₀) / sqrt(1−ᾱ), from the unclipped x̂₀ as in diffusers
            PredictionType::Sample => {
                lincomb(1.0 / sqrt_b, &sample, -sqrt_a / sqrt_b, &model_output)?
            }
        };
        let x0 = match self.clip_sample_range {
            Some(r) => x0.clamp(-r, r)?,
            None => x0,
        };
        let direction = (1.0 - s.alpha_prod_t_prev - s.std_dev_t * s.std_dev_t).sqrt();
        let prev = lincomb(s.alpha_prod_t_prev.sqrt(), &x0, direction, &eps)?;
        if self.eta > 0.0 {
            let z = noise.draw_tensor(eps.dims(), eps.device())?;
            return prev + z.affine(s.std_dev_t, 0.0)?;
        }
        Ok(prev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::NoiseSource;
    use crate::sampler::{SamplerKind, SchedulerConfig};
    use candle_core::Device;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Returns a constant, counting calls through a shared counter.
    struct Counting(f32, Rc<Cell<usize>>);
    impl NoiseSource for Counting {
        fn randn(&mut self, n: usize) -> Vec<f32> {
            self.1.set(self.1.get() + 1);
            vec![self.0; n]
        }
    }

    const SD: &str = r#"{"beta_schedule": "scaled_linear", "beta_start": 0.00085,
                         "beta_end": 0.012, "steps_offset": 1, "clip_sample": false,
                         "set_alpha_to_one": false}"#;

    fn ddim(json: &str, steps: usize, eta: f64) -> Ddim {
        let c = SchedulerConfig::from_json(json)
            .unwrap()
            .resolve(SamplerKind::Ddim)
            .unwrap();
        Ddim::new(&c, steps, eta).unwrap()
    }

    fn run(d: &mut Ddim, z: f32, x: &[f32], out: &[f32]) -> (Vec<Vec<f32>>, usize) {
        let count = Rc::new(Cell::new(0));
        let mut noise = BatchNoise::new(vec![Box::new(Counting(z, count.clone()))]);
        let dev = Device::Cpu;
        let mut xs = Tensor::new(x, &dev).unwrap().unsqueeze(0).unwrap();
        let os = Tensor::new(out, &dev).unwrap().unsqueeze(0).unwrap();
        let mut all = vec![];
        for i in 0..d.timesteps().len() {
            xs = d.step(&os, i, &xs, &mut noise).unwrap();
            all.push(xs.flatten_all().unwrap().to_vec1().unwrap());
        }
        (all, count.get())
    }

    #[test]
    fn eta_zero_draws_nothing_and_eta_positive_draws_every_step() {
        let (x, e) = ([0.5f32, -1.0, 2.0], [0.1f32, 0.2, -0.3]);
        let (_, n0) = run(&mut ddim(SD, 7, 0.0), 1.0, &x, &e);
        assert_eq!(n0, 0);
        let (_, n1) = run(&mut ddim(SD, 7, 0.5), 1.0, &x, &e);
        assert_eq!(n1, 7);
        // set_alpha_to_one: the last step has sigma_t = 0 but still draws.
        let json = SD.replace(
            r#""set_alpha_to_one": false"#,
            r#""set_alpha_to_one": true"#,
        );
        let d = ddim(&json, 4, 1.0);
        assert_eq!(d.step_scalars(3).std_dev_t, 0.0);
        let (_, n) = run(&mut ddim(&json, 4, 1.0), 1.0, &x, &e);
        assert_eq!(n, 4);
    }

    #[test]
    fn eta_step_matches_the_paper_formula_by_hand() {
        // One step written out from Song et al. eq. (12) and (16), as DDIMScheduler.step does,
        // with alphas_cumprod from its definition (scaled_linear betas, cumprod of 1 - beta):
        //   sigma_t = eta * sqrt((1 - a_prev) / (1 - a_t)) * sqrt(1 - a_t / a_prev)
        //   x0 = (x - sqrt(1 - a_t) * eps) / sqrt(a_t)
        //   x_prev = sqrt(a_prev) * x0 + sqrt(1 - a_prev - sigma_t^2) * eps + sigma_t * z
        // 10 leading steps with steps_offset 1: step 3 goes from t = 601 to t = 501.
        let betas: Vec<f64> = (0..1000)
            .map(|i| {
                let (s, e) = (0.00085f64.sqrt(), 0.012f64.sqrt());
                (s + (e - s) * i as f64 / 999.0).powi(2)
            })
            .collect();
        let a = |t: usize| betas[..=t].iter().map(|b| 1.0 - b).product::<f64>();
        let (a_t, a_prev, eta) = (a(601), a(501), 0.7);
        let sigma = eta * ((1.0 - a_prev) / (1.0 - a_t)).sqrt() * (1.0 - a_t / a_prev).sqrt();
        let mut d = ddim(SD, 10, eta);
        assert_eq!(d.timesteps()[3], 601.0);
        // float32-stored alphas (see schedule.rs) against exact f64 ones: ~1e-6 relative.
        let got = d.step_scalars(3);
        assert!(
            (got.std_dev_t / sigma - 1.0).abs() < 1e-5,
            "{got:?} vs {sigma}"
        );
        let (x, eps, z) = (1.25f64, -0.5f64, 0.8f32);
        let x0 = (x - (1.0 - a_t).sqrt() * eps) / a_t.sqrt();
        let want =
            a_prev.sqrt() * x0 + (1.0 - a_prev - sigma * sigma).sqrt() * eps + sigma * z as f64;
        let count = Rc::new(Cell::new(0));
        let mut noise = BatchNoise::new(vec![Box::new(Counting(z, count.clone()))]);
        let dev = Device::Cpu;
        let xs = Tensor::new(&[[x as f32]], &dev).unwrap();
        let es = Tensor::new(&[[eps as f32]], &dev).unwrap();
        let out: Vec<f32> = d
            .step(&es, 3, &xs, &mut noise)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!((out[0] as f64 - want).abs() < 1e-5, "{} vs {want}", out[0]);
        assert_eq!(count.get(), 1);
    }

    #[test]
    fn v_prediction_step_matches_the_diffusers_formula_by_hand() {
        // The sd2v parity case has no per-step trace, so v_prediction is covered by one step
        // written out from DDIMScheduler.step:
        //   x0  = sqrt(a_t) * x - sqrt(1 - a_t) * v
        //   eps = sqrt(a_t) * v + sqrt(1 - a_t) * x
        //   x_prev = sqrt(a_prev) * x0 + sqrt(1 - a_prev) * eps        (eta = 0)
        // with a_t, a_prev = alphas_cumprod[901], alphas_cumprod[801] computed here in f64.
        let json = SD.replace("}", r#", "prediction_type": "v_prediction"}"#);
        let mut d = ddim(&json, 10, 0.0);
        let betas: Vec<f64> = (0..1000)
            .map(|i| {
                let (s, e) = (0.00085f64.sqrt(), 0.012f64.sqrt());
                (s + (e - s) * i as f64 / 999.0).powi(2)
            })
            .collect();
        let a = |t: usize| betas[..=t].iter().map(|b| 1.0 - b).product::<f64>();
        let (a_t, a_prev) = (a(901), a(801));
        let (x, v) = ([0.7f64, -2.0], [1.1f64, 0.3]);
        let dev = Device::Cpu;
        let xs = Tensor::new(&[x.map(|a| a as f32)], &dev).unwrap();
        let vs = Tensor::new(&[v.map(|a| a as f32)], &dev).unwrap();
        let out: Vec<f32> = d
            .step(&vs, 0, &xs, &mut BatchNoise::new(vec![]))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for k in 0..2 {
            let x0 = a_t.sqrt() * x[k] - (1.0 - a_t).sqrt() * v[k];
            let eps = a_t.sqrt() * v[k] + (1.0 - a_t).sqrt() * x[k];
            let want = a_prev.sqrt() * x0 + (1.0 - a_prev).sqrt() * eps;
            assert!(
                (out[k] as f64 - want).abs() < 1e-5,
                "{k}: {} vs {want}",
                out[k]
            );
        }
    }

    #[test]
    fn clip_sample_clamps_the_predicted_x0() {
        // clip_sample (the DDIM default) clamps x0 to ±clip_sample_range before eq. (12).
        let json = r#"{"beta_schedule": "scaled_linear", "beta_start": 0.00085,
                       "beta_end": 0.012, "clip_sample_range": 0.5, "set_alpha_to_one": false}"#;
        let mut d = ddim(json, 10, 0.0);
        let s = d.step_scalars(0);
        let (x, eps) = (3.0f64, 0.1f64);
        let x0 =
            ((x - (1.0 - s.alpha_prod_t).sqrt() * eps) / s.alpha_prod_t.sqrt()).clamp(-0.5, 0.5);
        let want = s.alpha_prod_t_prev.sqrt() * x0 + (1.0 - s.alpha_prod_t_prev).sqrt() * eps;
        let dev = Device::Cpu;
        let out: Vec<f32> = d
            .step(
                &Tensor::new(&[eps as f32], &dev).unwrap(),
                0,
                &Tensor::new(&[x as f32], &dev).unwrap(),
                &mut BatchNoise::new(vec![]),
            )
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!((out[0] as f64 - want).abs() < 1e-6, "{} vs {want}", out[0]);
    }

    #[test]
    fn previous_timestep_ignores_the_spacing() {
        // diffusers: prev_timestep = t - T // steps for every spacing. 10 linspace steps:
        // timesteps 999, 888, ...; step 0 goes to alphas_cumprod[899], not [888].
        let json = SD.replace("}", r#", "timestep_spacing": "linspace"}"#);
        let d = ddim(&json, 10, 0.0);
        assert_eq!(d.timesteps()[..2], [999.0, 888.0]);
        let c = SchedulerConfig::from_json(&json)
            .unwrap()
            .resolve(SamplerKind::Ddim)
            .unwrap();
        let ac = c.alphas_cumprod();
        assert_eq!(d.step_scalars(0).alpha_prod_t_prev, ac[899]);
        // the last step (t = 0) uses the final alpha: alphas_cumprod[0] (set_alpha_to_one false)
        assert_eq!(d.step_scalars(9).alpha_prod_t_prev, ac[0]);
        // trailing, 3 steps: 999, 666, 332 with stride 333: 666 -> 333, not 332.
        let json = SD.replace("}", r#", "timestep_spacing": "trailing"}"#);
        let d = ddim(&json, 3, 0.0);
        assert_eq!(d.timesteps(), &[999.0, 666.0, 332.0]);
        assert_eq!(d.step_scalars(1).alpha_prod_t_prev, ac[333]);
    }

    #[test]
    fn linspace_rounds_half_to_even() {
        // np.linspace(0, 999, 3).round() = [0, 500, 999]: 499.5 rounds to the even 500.
        // np.linspace(0, 999, 7) has 166.5 -> 166, 499.5 -> 500, 832.5 -> 832.
        let json = SD.replace("}", r#", "timestep_spacing": "linspace"}"#);
        assert_eq!(ddim(&json, 3, 0.0).timesteps(), &[999.0, 500.0, 0.0]);
        assert_eq!(
            ddim(&json, 7, 0.0).timesteps(),
            &[999.0, 832.0, 666.0, 500.0, 333.0, 166.0, 0.0]
        );
    }

    #[test]
    fn bad_eta_and_zero_snr_epsilon_are_refused() {
        let c = SchedulerConfig::from_json(SD)
            .unwrap()
            .resolve(SamplerKind::Ddim)
            .unwrap();
        assert!(matches!(Ddim::new(&c, 10, -0.1), Err(Error::Invalid(_))));
        assert!(matches!(
            Ddim::new(&c, 10, f64::NAN),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(Ddim::new(&c, 10, 50.0), Err(Error::Invalid(_))));
        assert!(Ddim::new(&c, 10, 1.0).is_ok());
        let zsnr = SD.replace(
            "}",
            r#", "rescale_betas_zero_snr": true, "timestep_spacing": "trailing"}"#,
        );
        let c = SchedulerConfig::from_json(&zsnr)
            .unwrap()
            .resolve(SamplerKind::Ddim)
            .unwrap();
        assert!(matches!(Ddim::new(&c, 10, 0.0), Err(Error::Model(_))));
        let v = zsnr.replace("}", r#", "prediction_type": "v_prediction"}"#);
        let c = SchedulerConfig::from_json(&v)
            .unwrap()
            .resolve(SamplerKind::Ddim)
            .unwrap();
        assert!(Ddim::new(&c, 10, 0.0).is_ok());
    }
}
