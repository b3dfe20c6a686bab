//! diffusers `DPMSolverMultistepScheduler` with algorithm_type "dpmsolver++", solver_type
//! "midpoint" and solver_order 2: DPM-Solver++(2M), Lu et al. 2022, "DPM-Solver++: Fast Solver
//! for Guided Sampling of Diffusion Probabilistic Models", Algorithm 2.
//!
//! In the variance-preserving parametrisation of a noise level σ: α = 1/√(σ²+1), σ_vp = σ·α,
//! λ = ln α − ln σ_vp (= −ln σ). The model output is turned into the data prediction x̂₀; a
//! step from s to t with h = λ_t − λ_s is
//!   first order (DDIM):  x_t = (σ_vp,t/σ_vp,s)·x − α_t(e^−h − 1)·x̂₀
//!   second order:        … − ½·α_t(e^−h − 1)·(x̂₀ − x̂₀′)/r,  r = (λ_s − λ_s′)/h
//! with x̂₀′ the data prediction of the previous step. The first step is first order (no
//! history); the last step is first order when `final_sigmas_type` is "zero" (always, in
//! diffusers 0.42), when `euler_at_final`, or with `lower_order_final` and fewer than 15 steps.
//! No noise is drawn.

use super::config::{PredictionType, ResolvedConfig};
use super::protocol::Sampler;
use super::schedule::{
    multistep_schedule, BetaSchedule, FinalSigmas, Multistep, MultistepSchedule,
};
use super::steps::{alpha_sigma_lambda, check_step, data_prediction, lincomb};
use crate::noise::BatchNoise;
use candle_core::{DType, Tensor};

pub(crate) struct DpmPp2m {
    schedule: MultistepSchedule,
    prediction: PredictionType,
    lower_order_final: bool,
    euler_at_final: bool,
    final_sigma_zero: bool,
    /// The data prediction of the previous step (the multistep history, order 2).
    previous: Option<Tensor>,
}

impl DpmPp2m {
    pub(crate) fn new(c: &ResolvedConfig, steps: usize) -> crate::Result<Self> {
        Ok(Self {
            schedule: multistep_schedule(
                &c.schedule_params(),
                steps,
                Multistep::DpmSolver {
                    cosine_betas: c.beta_schedule == BetaSchedule::SquaredCosCapV2,
                },
            )?,
            prediction: c.prediction_type,
            lower_order_final: c.lower_order_final,
            euler_at_final: c.euler_at_final,
            final_sigma_zero: c.final_sigmas == FinalSigmas::Zero,
            previous: None,
        })
    }

    /// diffusers' `lower_order_final` condition of `step` for the last step.
    fn first_order_at(&self, i: usize) -> bool {
        let n = self.schedule.timesteps.len();
        i == n - 1
            && (self.euler_at_final || (self.lower_order_final && n < 15) || self.final_sigma_zero)
    }
}

impl Sampler for DpmPp2m {
    fn timesteps(&self) -> &[f64] {
        &self.schedule.timesteps
    }

    fn init_noise_sigma(&self) -> f64 {
        1.0
    }

    fn sigmas(&self) -> Option<&[f64]> {
        Some(&self.schedule.sigmas)
    }

    /// The multistep solvers do not scale the model input.
    fn scale_model_input(&self, sample: &Tensor, i: usize) -> candle_core::Result<Tensor> {
        check_step(i, self.schedule.timesteps.len())?;
        Ok(sample.clone())
    }

    /// DPMSolverMultistepScheduler.step: first order without history or at the final step,
    /// else the second-order multistep update (midpoint form).
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
        if i == 0 {
            // Step 0 starts a new run: no history.
            self.previous = None;
        } else if self.previous.is_none() {
            candle_core::bail!("DPM++ 2M steps must run in order from step 0 (got step {i} first)");
        }
        let sigmas = &self.schedule.sigmas;
        let x0 = data_prediction(self.prediction, sigmas[i], &model_output, &sample)?;
        let (alpha_t, sigma_t, lambda_t) = alpha_sigma_lambda(sigmas[i + 1]);
        let (_, sigma_s0, lambda_s0) = alpha_sigma_lambda(sigmas[i]);
        let h = lambda_t - lambda_s0;
        // −α_t(e^−h − 1); at σ_t = 0 this is 1 (h = ∞) and σ_t/σ_s0 = 0: the step returns x̂₀.
        let phi = -alpha_t * ((-h).exp() - 1.0);
        let first_order = self.previous.is_none() || self.first_order_at(i);
        let next = match (&self.previous, first_order) {
            (Some(m1), false) => {
                let (_, _, lambda_s1) = alpha_sigma_lambda(sigmas[i - 1]);
                let r0 = (lambda_s0 - lambda_s1) / h;
                // x̂₀ weight: φ(1 + ½/r0), previous x̂₀ weight: −½φ/r0.
                let d = lincomb(phi * (1.0 + 0.5 / r0), &x0, -0.5 * phi / r0, m1)?;
                (sample.affine(sigma_t / sigma_s0, 0.0)? + d)?
            }
            _ => lincomb(sigma_t / sigma_s0, &sample, phi, &x0)?,
        };
        self.previous = Some(x0);
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{SamplerKind, SchedulerConfig};
    use candle_core::Device;

    fn dpm(json: &str, steps: usize) -> DpmPp2m {
        let c = SchedulerConfig::from_json(json)
            .unwrap()
            .resolve(SamplerKind::DpmPp2m)
            .unwrap();
        DpmPp2m::new(&c, steps).unwrap()
    }

    #[test]
    fn second_order_step_matches_the_paper_by_hand() {
        // DPM-Solver++(2M), Lu et al. 2022 Algorithm 2, written out with λ = −ln σ (exact for
        // α = 1/√(σ²+1)) and v_prediction's x̂₀ = α·x − σ_vp·v (no fixture runs DPM++ with v).
        let json = r#"{"beta_schedule": "scaled_linear", "beta_start": 0.00085,
                       "beta_end": 0.012, "prediction_type": "v_prediction"}"#;
        let mut d = dpm(json, 6);
        let dev = Device::Cpu;
        let (x, v) = ([1.5f64, -0.25], [0.5f64, 2.0]);
        let xs = Tensor::new(&[x.map(|a| a as f32)], &dev).unwrap();
        let vs = Tensor::new(&[v.map(|a| a as f32)], &dev).unwrap();
        let mut noise = BatchNoise::new(vec![]);
        let s = d.schedule.sigmas.clone();
        let x0 = |k: usize, sigma: f64| {
            let a = 1.0 / (sigma * sigma + 1.0).sqrt();
            a * x[k] - sigma * a * v[k]
        };
        d.step(&vs, 0, &xs, &mut noise).unwrap();
        let got: Vec<f32> = d
            .step(&vs, 1, &xs, &mut noise)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let a = |sigma: f64| 1.0 / (sigma * sigma + 1.0).sqrt();
        let (lt, ls0, ls1) = (-s[2].ln(), -s[1].ln(), -s[0].ln());
        let h = lt - ls0;
        let r = (ls0 - ls1) / h;
        for k in 0..2 {
            let (d0, d1) = (x0(k, s[1]), (x0(k, s[1]) - x0(k, s[0])) / r);
            let want = (s[2] * a(s[2])) / (s[1] * a(s[1])) * x[k]
                - a(s[2]) * ((-h).exp() - 1.0) * d0
                - 0.5 * a(s[2]) * ((-h).exp() - 1.0) * d1;
            assert!(
                (got[k] as f64 - want).abs() < 1e-5 * (1.0 + want.abs()),
                "{k}"
            );
        }
    }

    #[test]
    fn last_step_to_sigma_zero_returns_the_data_prediction() {
        let mut d = dpm("{}", 3);
        let dev = Device::Cpu;
        let xs = Tensor::new(&[2.0f32, -1.0], &dev).unwrap();
        let eps = Tensor::new(&[0.5f32, 0.25], &dev).unwrap();
        let mut noise = BatchNoise::new(vec![]);
        d.step(&eps, 0, &xs, &mut noise).unwrap();
        d.step(&eps, 1, &xs, &mut noise).unwrap();
        let got: Vec<f32> = d.step(&eps, 2, &xs, &mut noise).unwrap().to_vec1().unwrap();
        let sigma = d.schedule.sigmas[2];
        for (k, (x, e)) in [(2.0f64, 0.5f64), (-1.0, 0.25)].into_iter().enumerate() {
            let want = x * (sigma * sigma + 1.0).sqrt() - sigma * e;
            assert!((got[k] as f64 - want).abs() < 1e-5, "{k}");
        }
    }

    #[test]
    fn leading_spacing_uses_steps_plus_one() {
        // np.arange(0, 4) * (1000 // 4) reversed without its 0, + steps_offset 1.
        let d = dpm(r#"{"timestep_spacing": "leading", "steps_offset": 1}"#, 3);
        assert_eq!(d.timesteps(), &[751.0, 501.0, 251.0]);
        // np.linspace(0, 999, 4).round() reversed without its 0.
        let d = dpm("{}", 3);
        assert_eq!(d.timesteps(), &[999.0, 666.0, 333.0]);
    }
}
