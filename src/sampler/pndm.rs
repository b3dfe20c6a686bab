//! diffusers `PNDMScheduler` with `skip_prk_steps` (Stable Diffusion's configs): the
//! pseudo linear multistep method (PLMS) of Liu et al. 2022, "Pseudo Numerical Methods for
//! Diffusion Models on Manifolds", eq. (12) for the transfer step and the Adams–Bashforth
//! weights of Algorithm 2, without the Runge-Kutta warm-up.
//!
//! diffusers' schedule for n ≥ 2 steps has n + 1 entries: the second timestep repeats
//! (10 leading steps: 901, 801, 801, 701, …, 1). Step 0 goes 901 → 801 with ε₀; step 1 runs
//! the UNet at 801 on that result, then redoes 901 → 801 from step 0's *input* with the mean
//! (ε₀ + ε₁)/2 (a Heun-like second-order start). Later steps use the linear multistep
//! combinations of the last 2, 3, then 4 outputs (ε₁ is never part of that history). As in
//! DDIM, the "previous" timestep is always t − T // n whatever the spacing. No noise is drawn.

use super::config::{PredictionType, ResolvedConfig};
use super::protocol::Sampler;
use super::schedule::{spaced_timesteps, TimestepSpacing};
use super::steps::{check_step, lincomb};
use crate::noise::BatchNoise;
use crate::Error;
use candle_core::{DType, Tensor};

/// alphas_cumprod at the timestep a step starts from and the one it goes to.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Transfer {
    alpha_t: f64,
    alpha_prev: f64,
}

pub(crate) struct Pndm {
    timesteps: Vec<f64>,
    transfers: Vec<Transfer>,
    prediction: PredictionType,
    /// Raw model outputs of the multistep history (diffusers `ets`, at most 4).
    ets: Vec<Tensor>,
    /// Step 0's input sample, which step 1 steps from again.
    first_sample: Option<Tensor>,
    /// Steps taken (diffusers `counter`).
    done: usize,
}

impl Pndm {
    pub(crate) fn new(c: &ResolvedConfig, steps: usize) -> crate::Result<Self> {
        let t_max = c.num_train_timesteps;
        // diffusers' `_timesteps` are ascending; `spaced_timesteps` gives them descending.
        // Its "linspace" is rounded to integers, as in DDIM.
        let mut base = spaced_timesteps(c.timestep_spacing, t_max, steps, c.steps_offset)?;
        if c.timestep_spacing == TimestepSpacing::Linspace {
            base.iter_mut().for_each(|t| *t = t.round_ties_even());
        }
        // plms_timesteps = (_ts[:-1] ++ _ts[-2:-1] ++ _ts[-1:])[::-1]: the second repeats.
        let mut timesteps = base.clone();
        if steps >= 2 {
            timesteps.insert(1, base[1]);
        }
        let ratio = (t_max / steps) as i64;
        let alphas_cumprod = c.alphas_cumprod();
        let final_alpha = if c.set_alpha_to_one {
            1.0
        } else {
            alphas_cumprod[0]
        };
        let alpha_at = |t: i64| -> crate::Result<f64> {
            if t < 0 {
                return Ok(final_alpha);
            }
            alphas_cumprod.get(t as usize).copied().ok_or_else(|| {
                Error::Model(format!(
                    "PNDM would step from timestep {t}, outside the trained range 0..={}; \
                     check timestep_spacing and steps_offset in scheduler_config.json",
                    t_max - 1
                ))
            })
        };
        let transfers = timesteps
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let t = *t as i64;
                // Step 1 redoes step 0's transfer: from t + T // n to t.
                let (from, to) = if i == 1 {
                    (t + ratio, t)
                } else {
                    (t, t - ratio)
                };
                Ok(Transfer {
                    alpha_t: alpha_at(from)?,
                    alpha_prev: alpha_at(to)?,
                })
            })
            .collect::<crate::Result<Vec<_>>>()?;
        if let Some(t) = transfers.iter().find(|s| s.alpha_t >= 1.0) {
            return Err(Error::Model(format!(
                "alphas_cumprod is {} at a PNDM step (a zero beta); check trained_betas / \
                 beta_start in scheduler_config.json",
                t.alpha_t
            )));
        }
        Ok(Self {
            timesteps,
            transfers,
            prediction: c.prediction_type,
            ets: Vec::new(),
            first_sample: None,
            done: 0,
        })
    }

    /// diffusers `_get_prev_sample`, eq. (12) of Liu et al.:
    /// x_prev = √(ᾱ_prev/ᾱ_t)·x − (ᾱ_prev − ᾱ_t)·ε / (ᾱ_t·√(1−ᾱ_prev) + √(ᾱ_t(1−ᾱ_t)ᾱ_prev)),
    /// with ε = √ᾱ_t·v + √(1−ᾱ_t)·x for v_prediction.
    fn transfer(&self, i: usize, sample: &Tensor, output: &Tensor) -> candle_core::Result<Tensor> {
        let Transfer {
            alpha_t,
            alpha_prev,
        } = self.transfers[i];
        let (beta_t, beta_prev) = (1.0 - alpha_t, 1.0 - alpha_prev);
        let eps = match self.prediction {
            PredictionType::VPrediction => lincomb(alpha_t.sqrt(), output, beta_t.sqrt(), sample)?,
            _ => output.clone(),
        };
        let sample_coeff = (alpha_prev / alpha_t).sqrt();
        let denom = alpha_t * beta_prev.sqrt() + (alpha_t * beta_t * alpha_prev).sqrt();
        lincomb(sample_coeff, sample, -(alpha_prev - alpha_t) / denom, &eps)
    }
}

/// The linear multistep combination of the history, newest last (Adams–Bashforth orders
/// 1–4: 1; (3, −1)/2; (23, −16, 5)/12; (55, −59, 37, −9)/24).
fn multistep(ets: &[Tensor]) -> candle_core::Result<Tensor> {
    let weights: &[f64] = match ets.len() {
        1 => &[1.0],
        2 => &[3.0 / 2.0, -1.0 / 2.0],
        3 => &[23.0 / 12.0, -16.0 / 12.0, 5.0 / 12.0],
        _ => &[55.0 / 24.0, -59.0 / 24.0, 37.0 / 24.0, -9.0 / 24.0],
    };
    let mut acc: Option<Tensor> = None;
    for (w, e) in weights.iter().zip(ets.iter().rev()) {
        let term = e.affine(*w, 0.0)?;
        acc = Some(match acc {
            Some(a) => (a + term)?,
            None => term,
        });
    }
    acc.ok_or_else(|| candle_core::Error::Msg("PNDM has no model output yet".into()))
}

impl Sampler for Pndm {
    fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    fn init_noise_sigma(&self) -> f64 {
        1.0
    }

    /// PNDM does not scale the model input.
    fn scale_model_input(&self, sample: &Tensor, i: usize) -> candle_core::Result<Tensor> {
        check_step(i, self.timesteps.len())?;
        Ok(sample.clone())
    }

    /// PNDMScheduler.step_plms (the `counter` there is our step index).
    fn step(
        &mut self,
        model_output: &Tensor,
        i: usize,
        sample: &Tensor,
        _noise: &mut BatchNoise,
    ) -> candle_core::Result<Tensor> {
        check_step(i, self.timesteps.len())?;
        if i == 0 {
            // Step 0 starts a new run: no history.
            self.done = 0;
            self.ets.clear();
            self.first_sample = None;
        }
        if i != self.done {
            candle_core::bail!(
                "PNDM steps must run in order: expected step {}, got {i}",
                self.done
            );
        }
        self.done += 1;
        let sample = sample.to_dtype(DType::F32)?;
        let model_output = model_output.to_dtype(DType::F32)?;
        if i == 1 {
            // (ε₀ + ε₁)/2 from step 0's input; ε₁ does not join the history.
            let Some(first) = self.first_sample.take() else {
                candle_core::bail!("PNDM step 1 needs step 0 first");
            };
            let mean = lincomb(0.5, &model_output, 0.5, &self.ets[0])?;
            return self.transfer(1, &first, &mean);
        }
        if self.ets.len() == 4 {
            self.ets.remove(0);
        }
        self.ets.push(model_output);
        if i == 0 {
            self.first_sample = Some(sample.clone());
        }
        let combined = multistep(&self.ets)?;
        self.transfer(i, &sample, &combined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{SamplerKind, SchedulerConfig};
    use candle_core::Device;

    const SD: &str = r#"{"beta_schedule": "scaled_linear", "beta_start": 0.00085,
                         "beta_end": 0.012, "steps_offset": 1, "skip_prk_steps": true}"#;

    fn pndm(json: &str, steps: usize) -> Pndm {
        let c = SchedulerConfig::from_json(json)
            .unwrap()
            .resolve(SamplerKind::Pndm)
            .unwrap();
        Pndm::new(&c, steps).unwrap()
    }

    #[test]
    fn second_timestep_repeats() {
        assert_eq!(pndm(SD, 3).timesteps(), &[667.0, 334.0, 334.0, 1.0]);
        // (_ts[:-1] ++ _ts[-2:-1] ++ _ts[-1:])[::-1] with _ts = [1, 501]: [501, 1, 1].
        assert_eq!(pndm(SD, 2).timesteps(), &[501.0, 1.0, 1.0]);
        assert_eq!(pndm(SD, 1).timesteps(), &[1.0]);
    }

    #[test]
    fn prk_steps_are_refused() {
        let c = SchedulerConfig::from_json(r#"{"skip_prk_steps": false}"#).unwrap();
        let err = c.resolve(SamplerKind::Pndm).unwrap_err().to_string();
        assert!(err.contains("skip_prk_steps"), "{err}");
        assert!(SchedulerConfig::from_json("{}")
            .unwrap()
            .resolve(SamplerKind::Pndm)
            .is_err());
    }

    #[test]
    fn first_two_steps_by_hand() {
        // Liu et al. eq. (12) with alphas_cumprod from the definition (scaled_linear betas):
        // step 0: 667 → 334 with ε₀ from x; step 1: again 667 → 334 from x with (ε₀ + ε₁)/2.
        let betas: Vec<f64> = (0..1000)
            .map(|i| {
                let (s, e) = (0.00085f64.sqrt(), 0.012f64.sqrt());
                (s + (e - s) * i as f64 / 999.0).powi(2)
            })
            .collect();
        let a = |t: usize| betas[..=t].iter().map(|b| 1.0 - b).product::<f64>();
        let (at, ap) = (a(667), a(334));
        let transfer = |x: f64, e: f64| {
            (ap / at).sqrt() * x
                - (ap - at) * e / (at * (1.0 - ap).sqrt() + (at * (1.0 - at) * ap).sqrt())
        };
        let mut p = pndm(SD, 3);
        let dev = Device::Cpu;
        let (x, e0, e1) = (1.25f64, -0.5f64, 0.75f64);
        let t = |v: f64| Tensor::new(&[v as f32], &dev).unwrap();
        let mut noise = BatchNoise::new(vec![]);
        let y0: Vec<f32> = p
            .step(&t(e0), 0, &t(x), &mut noise)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!((y0[0] as f64 - transfer(x, e0)).abs() < 1e-5);
        // The sample handed to step 1 is ignored: it restarts from step 0's input.
        let y1: Vec<f32> = p
            .step(&t(e1), 1, &t(99.0), &mut noise)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!((y1[0] as f64 - transfer(x, (e0 + e1) / 2.0)).abs() < 1e-5);
    }
}
