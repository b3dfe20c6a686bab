//! comfy/extra_samplers/uni_pc.py: UniPC (Zhao et al. 2023) as ComfyUI runs it for `uni_pc`
//! (variant B(h) = h, "bh1") and `uni_pc_bh2` (B(h) = e^h − 1): `sample_unipc` (the VP
//! latent, the last sigma 0 replaced by 0.001), `UniPC.sample(method="multistep", order =
//! min(3, steps − 1), lower_order_final=True)` with `multistep_uni_pc_bh_update`, data
//! prediction, over `SigmaConvert` (α = 1/√(1 + σ²), σ_t = σ/√(1 + σ²), λ = −log σ).
//!
//! Scalar coefficients are f64 here (ComfyUI: float32 tensors, `torch.linalg.solve`), so this
//! is not float32-exact the way the k-diffusion ports are.

use super::common::Model;
use candle_core::Tensor;

/// Which B(h) the corrector and predictor use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    Bh1,
    Bh2,
}

/// `SigmaConvert`: (alpha, std, lambda) of a sigma.
fn schedule(sigma: f64) -> (f64, f64, f64) {
    let log_alpha = 0.5 * (1.0 / (sigma * sigma + 1.0)).ln();
    let log_std = 0.5 * (1.0 - (2.0 * log_alpha).exp()).ln();
    (log_alpha.exp(), log_std.exp(), log_alpha - log_std)
}

/// Solves the small dense system `a·x = b` (Gaussian elimination with partial pivoting).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|i, j| a[*i][col].abs().total_cmp(&a[*j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col].clone();
        for row in col + 1..n {
            let f = a[row][col] / pivot_row[col];
            for (v, p) in a[row].iter_mut().zip(&pivot_row).skip(col) {
                *v -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x
}

/// Σ_k w_k·t_k over tensors (None for no terms).
fn weighted_sum(weights: &[f64], tensors: &[Tensor]) -> candle_core::Result<Option<Tensor>> {
    let mut sum: Option<Tensor> = None;
    for (w, t) in weights.iter().zip(tensors) {
        let term = t.affine(*w, 0.0)?;
        sum = Some(match sum {
            None => term,
            Some(s) => (s + term)?,
        });
    }
    Ok(sum)
}

struct UniPc<'m, 'a> {
    model: &'m mut Model<'a>,
    variant: Variant,
}

impl UniPc<'_, '_> {
    /// `data_prediction_fn` through `predict_eps_sigma`: the VE denoiser at x·√(1 + σ²).
    fn model_fn(&mut self, x: &Tensor, sigma: f64) -> candle_core::Result<Tensor> {
        let x_ve = x.affine((sigma * sigma + 1.0).sqrt(), 0.0)?;
        (self.model)(&x_ve, sigma as f32)
    }

    /// `multistep_uni_pc_bh_update` with predict_x0 and x_t = None.
    fn update(
        &mut self,
        x: &Tensor,
        models: &[Tensor],
        ts: &[f64],
        t: f64,
        order: usize,
        use_corrector: bool,
    ) -> candle_core::Result<(Tensor, Option<Tensor>)> {
        let n = models.len();
        let (t_prev_0, model_prev_0) = (ts[n - 1], &models[n - 1]);
        let (_, sigma_prev_0, lambda_prev_0) = schedule(t_prev_0);
        let (alpha_t, sigma_t, lambda_t) = schedule(t);
        let h = lambda_t - lambda_prev_0;
        let mut rks = Vec::with_capacity(order);
        let mut d1s = Vec::with_capacity(order);
        for i in 1..order {
            let (_, _, lambda_prev_i) = schedule(ts[n - 1 - i]);
            let rk = (lambda_prev_i - lambda_prev_0) / h;
            rks.push(rk);
            d1s.push((&models[n - 1 - i] - model_prev_0)?.affine(1.0 / rk, 0.0)?);
        }
        rks.push(1.0);
        let hh = -h;
        let h_phi_1 = hh.exp_m1();
        let mut h_phi_k = h_phi_1 / hh - 1.0;
        let mut factorial = 1.0;
        let b_h = match self.variant {
            Variant::Bh1 => hh,
            Variant::Bh2 => hh.exp_m1(),
        };
        let mut r = Vec::with_capacity(order);
        let mut b = Vec::with_capacity(order);
        for i in 1..=order {
            r.push(
                rks.iter()
                    .map(|rk| rk.powi(i as i32 - 1))
                    .collect::<Vec<f64>>(),
            );
            b.push(h_phi_k * factorial / b_h);
            factorial *= (i + 1) as f64;
            h_phi_k = h_phi_k / hh - 1.0 / factorial;
        }
        let x_t_ = (x.affine(sigma_t / sigma_prev_0, 0.0)?
            - model_prev_0.affine(alpha_t * h_phi_1, 0.0)?)?;
        let mut x_t = x_t_.clone();
        if !d1s.is_empty() {
            let rhos_p = if order == 2 {
                vec![0.5]
            } else {
                let sub: Vec<Vec<f64>> = r[..order - 1]
                    .iter()
                    .map(|row| row[..order - 1].to_vec())
                    .collect();
                solve(sub, b[..order - 1].to_vec())
            };
            if let Some(pred) = weighted_sum(&rhos_p, &d1s)? {
                x_t = (&x_t_ - pred.affine(alpha_t * b_h, 0.0)?)?;
            }
        }
        if !use_corrector {
            return Ok((x_t, None));
        }
        let rhos_c = if order == 1 { vec![0.5] } else { solve(r, b) };
        let model_t = self.model_fn(&x_t, t)?;
        let d1_t = (&model_t - model_prev_0)?;
        let last = d1_t.affine(rhos_c[order - 1], 0.0)?;
        let corr = match weighted_sum(&rhos_c[..order - 1], &d1s)? {
            Some(c) => (c + last)?,
            None => last,
        };
        let x_t = (&x_t_ - corr.affine(alpha_t * b_h, 0.0)?)?;
        Ok((x_t, Some(model_t)))
    }
}

/// `sample_unipc(model, noise, sigmas, variant)`: `x` is the scaled initial latent (ComfyUI's
/// `noise_scaling` output), as for the k-diffusion samplers.
pub(crate) fn sample_unipc(
    model: &mut Model,
    x: Tensor,
    sigmas: &[f32],
    variant: Variant,
) -> candle_core::Result<Tensor> {
    let mut ts: Vec<f64> = sigmas.iter().map(|s| f64::from(*s)).collect();
    if ts.len() < 3 {
        candle_core::bail!("uni_pc needs at least 2 steps");
    }
    if let Some(last) = ts.last_mut() {
        if *last == 0.0 {
            *last = 0.001;
        }
    }
    let steps = ts.len() - 1;
    let order = 3.min(ts.len() - 2);
    let mut x = x.affine(1.0 / (1.0 + ts[0] * ts[0]).sqrt(), 0.0)?;
    let mut u = UniPc { model, variant };
    let mut models = vec![u.model_fn(&x, ts[0])?];
    let mut t_prev = vec![ts[0]];
    for step_index in 1..steps {
        if step_index < order {
            let (nx, model_x) = u.update(&x, &models, &t_prev, ts[step_index], step_index, true)?;
            x = nx;
            let model_x = match model_x {
                Some(m) => m,
                None => u.model_fn(&x, ts[step_index])?,
            };
            models.push(model_x);
            t_prev.push(ts[step_index]);
            continue;
        }
        let extra = usize::from(step_index == steps - 1);
        for (step, &t) in ts
            .iter()
            .enumerate()
            .take(step_index + extra + 1)
            .skip(step_index)
        {
            let step_order = order.min(steps + 1 - step);
            let use_corrector = step != steps;
            let (nx, model_x) = u.update(&x, &models, &t_prev, t, step_order, use_corrector)?;
            x = nx;
            models.rotate_left(1);
            t_prev.rotate_left(1);
            t_prev[order - 1] = t;
            if step < steps {
                models[order - 1] = match model_x {
                    Some(m) => m,
                    None => u.model_fn(&x, t)?,
                };
            }
        }
    }
    // x /= marginal_alpha(timesteps[-1])
    let (alpha_end, _, _) = schedule(ts[steps]);
    x.affine(1.0 / alpha_end, 0.0)
}
