//! diffusers `UniPCMultistepScheduler` with its defaults: predict_x0, solver_type "bh2",
//! solver_order ≤ 2, lower_order_final, the corrector on every step (Zhao et al. 2023,
//! "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion Models",
//! Algorithms 1–2 with B(h) = e^h − 1).
//!
//! Notation as in `dpmpp_2m` (α, σ_vp, λ of a noise level; x̂₀ the data prediction). With
//! hh = −h (h = λ_t − λ_s0), φ₁ = e^hh − 1 and B = e^hh − 1 (bh2):
//!   UniP (predictor, step s0 → t):  x_t = (σ_vp,t/σ_vp,s0)·x − α_t·φ₁·m0 − α_t·B·Σ ρᵖ_k·D_k
//!   UniC (corrector, at the start of the next step, with the new model output m_t):
//!     x_t^c = (σ_vp,t/σ_vp,s0)·x − α_t·φ₁·m0 − α_t·B·(Σ ρᶜ_k·D_k + ρᶜ_last·(m_t − m0))
//! where D_k = (m_k − m0)/r_k, r_k = (λ_k − λ_s0)/h for the older outputs m_k. Order 2 fixes
//! ρᵖ = ½; the corrector's ρᶜ solves R·ρ = b with R rows r^0, r^1 (order 1: ρᶜ = ½), and
//! b_k from φ_k recursion: φ = φ₁/hh − 1; b₁ = φ/B; φ ← φ/hh − ½; b₂ = 2φ/B.
//! The corrected sample is what the predictor then starts from (and what the next corrector
//! calls x). Step i's order is min(solver_order, steps − i, steps done + 1). No noise is drawn.

use super::config::{PredictionType, ResolvedConfig};
use super::protocol::Sampler;
use super::schedule::{multistep_schedule, Multistep, MultistepSchedule};
use super::steps::{alpha_sigma_lambda, check_step, data_prediction, lincomb};
use crate::noise::BatchNoise;
use candle_core::{DType, Tensor};

pub(crate) struct UniPc {
    schedule: MultistepSchedule,
    prediction: PredictionType,
    solver_order: usize,
    /// Data predictions of the last steps, oldest first (at most `solver_order`).
    outputs: Vec<Tensor>,
    /// The (corrected) sample the previous step's predictor started from, and its order.
    last: Option<(Tensor, usize)>,
}

/// φ₁ and B(h) = e^hh − 1 of bh2, and the b vector's first two entries (see the module docs).
fn bh2_terms(h: f64) -> (f64, f64, f64, f64) {
    let hh = -h;
    let h_phi_1 = hh.exp_m1();
    let b_h = hh.exp_m1();
    let phi_1 = h_phi_1 / hh - 1.0;
    let b1 = phi_1 / b_h;
    let phi_2 = phi_1 / hh - 0.5;
    let b2 = phi_2 * 2.0 / b_h;
    (h_phi_1, b_h, b1, b2)
}

impl UniPc {
    pub(crate) fn new(c: &ResolvedConfig, steps: usize) -> crate::Result<Self> {
        Ok(Self {
            schedule: multistep_schedule(&c.schedule_params(), steps, Multistep::UniPc)?,
            prediction: c.prediction_type,
            solver_order: c.solver_order,
            outputs: Vec::new(),
            last: None,
        })
    }

    fn lambda(&self, i: usize) -> f64 {
        alpha_sigma_lambda(self.schedule.sigmas[i]).2
    }

    /// The part shared by UniP and UniC: (σ_vp,t/σ_vp,s0)·x − α_t·φ₁·m0 and the factors
    /// needed for the rest, for a step from sigma index `s0` to `t`.
    fn base(&self, s0: usize, t: usize, x: &Tensor, m0: &Tensor) -> candle_core::Result<Base> {
        let (alpha_t, sigma_t, lambda_t) = alpha_sigma_lambda(self.schedule.sigmas[t]);
        let (_, sigma_s0, lambda_s0) = alpha_sigma_lambda(self.schedule.sigmas[s0]);
        let h = lambda_t - lambda_s0;
        let (h_phi_1, b_h, b1, b2) = bh2_terms(h);
        let x_t = lincomb(sigma_t / sigma_s0, x, -alpha_t * h_phi_1, m0)?;
        Ok(Base {
            x_t,
            h,
            lambda_s0,
            weight: -alpha_t * b_h,
            b1,
            b2,
        })
    }

    /// UniP from sigma index i to i + 1 of `order` (history in `self.outputs`).
    fn predict(&self, i: usize, x: &Tensor, order: usize) -> candle_core::Result<Tensor> {
        let m0 = &self.outputs[self.outputs.len() - 1];
        let base = self.base(i, i + 1, x, m0)?;
        if order == 1 {
            return Ok(base.x_t);
        }
        let m1 = &self.outputs[self.outputs.len() - 2];
        let rk = (self.lambda(i - 1) - base.lambda_s0) / base.h;
        // − α_t·B·½·(m1 − m0)/r
        let c = base.weight * 0.5 / rk;
        base.x_t + lincomb(c, m1, -c, m0)?
    }

    /// UniC at the start of step i: corrects `this_sample` (the predictor's result, at sigma
    /// index i) with the new data prediction `model_t`; `x` is the sample the predictor started
    /// from at i − 1.
    fn correct(
        &self,
        i: usize,
        x: &Tensor,
        model_t: &Tensor,
        order: usize,
    ) -> candle_core::Result<Tensor> {
        let m0 = &self.outputs[self.outputs.len() - 1];
        let base = self.base(i - 1, i, x, m0)?;
        let (rho_d, rho_last) = if order == 1 {
            (0.0, 0.5)
        } else {
            let rk = (self.lambda(i - 2) - base.lambda_s0) / base.h;
            // R = [[1, 1], [rk, 1]], R·ρ = b.
            let rho0 = (base.b1 - base.b2) / (1.0 - rk);
            (rho0 / rk, base.b1 - rho0)
        };
        // − α_t·B·(ρ0·(m1 − m0)/r + ρ_last·(m_t − m0))
        let w = base.weight;
        let mut out = (base.x_t + lincomb(w * rho_last, model_t, -w * (rho_last + rho_d), m0)?)?;
        if order == 2 {
            let m1 = &self.outputs[self.outputs.len() - 2];
            out = (out + m1.affine(w * rho_d, 0.0)?)?;
        }
        Ok(out)
    }
}

struct Base {
    x_t: Tensor,
    h: f64,
    lambda_s0: f64,
    /// −α_t·B(h)
    weight: f64,
    b1: f64,
    b2: f64,
}

impl Sampler for UniPc {
    fn timesteps(&self) -> &[f64] {
        &self.schedule.timesteps
    }

    fn init_noise_sigma(&self) -> f64 {
        1.0
    }

    fn sigmas(&self) -> Option<&[f64]> {
        Some(&self.schedule.sigmas)
    }

    /// UniPC does not scale the model input.
    fn scale_model_input(&self, sample: &Tensor, i: usize) -> candle_core::Result<Tensor> {
        check_step(i, self.schedule.timesteps.len())?;
        Ok(sample.clone())
    }

    /// UniPCMultistepScheduler.step: corrector (from step 1 on), history update, predictor.
    fn step(
        &mut self,
        model_output: &Tensor,
        i: usize,
        sample: &Tensor,
        _noise: &mut BatchNoise,
    ) -> candle_core::Result<Tensor> {
        let n = self.schedule.timesteps.len();
        check_step(i, n)?;
        if i == 0 {
            // Step 0 starts a new run: no history.
            self.outputs.clear();
            self.last = None;
        } else if self.last.is_none() {
            candle_core::bail!("UniPC steps must run in order from step 0 (got step {i} first)");
        }
        let sample = sample.to_dtype(DType::F32)?;
        let model_output = model_output.to_dtype(DType::F32)?;
        let model_t = data_prediction(
            self.prediction,
            self.schedule.sigmas[i],
            &model_output,
            &sample,
        )?;
        let sample = match (&self.last, i) {
            (Some((x, order)), 1..) => self.correct(i, x, &model_t, *order)?,
            _ => sample,
        };
        self.outputs.push(model_t);
        if self.outputs.len() > self.solver_order {
            self.outputs.remove(0);
        }
        // lower_order_final, then the warm-up: the order cannot exceed the history.
        let order = self.solver_order.min(n - i).min(self.outputs.len());
        let next = self.predict(i, &sample, order)?;
        self.last = Some((sample, order));
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bh2_terms_follow_the_phi_recursion() {
        // φ₁(hh)·hh = e^hh − 1; b₁ = (φ₁ − 1)/B… written out for h = 0.7 in closed form:
        // b1 = ((e^-h − 1)/(−h) − 1)/(e^-h − 1), b2 = 2·(((e^-h − 1)/(−h) − 1)/(−h) − ½)/(e^-h − 1).
        let h = 0.7f64;
        let e = (-h).exp() - 1.0;
        let (h_phi_1, b_h, b1, b2) = bh2_terms(h);
        assert!((h_phi_1 - e).abs() < 1e-15 && (b_h - e).abs() < 1e-15);
        let p1 = e / -h - 1.0;
        assert!((b1 - p1 / e).abs() < 1e-14);
        assert!((b2 - 2.0 * (p1 / -h - 0.5) / e).abs() < 1e-14);
        // As h → 0, ρ for order 1 tends to b1 → ½ (the trapezoidal rule).
        let (_, _, b1, _) = bh2_terms(1e-6);
        assert!((b1 - 0.5).abs() < 1e-5, "{b1}");
    }
}
