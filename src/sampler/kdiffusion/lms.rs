//! comfy/k_diffusion/sampling.py `sample_lms` and `linear_multistep_coeff`: the linear
//! multistep method of order 4 over the sigma schedule (Adams–Bashforth with variable steps).

use super::common::{to_d, Model};
use super::sigmas::mul_scalar;
use candle_core::Tensor;
use std::collections::VecDeque;

/// `linear_multistep_coeff(order, t, i, j)`: ∫ from t[i] to t[i+1] of the Lagrange basis
/// polynomial ℓ_j(τ) = Π_{k≠j} (τ − t[i−k]) / (t[i−j] − t[i−k]), k in 0..order.
///
/// k-diffusion integrates it with `scipy.integrate.quad(epsrel=1e-4)`, whose first 21-point
/// Gauss–Kronrod pass is already exact for a polynomial of degree ≤ 3. We use 4-point
/// Gauss–Legendre (exact to degree 7) in f64: the same integral, deterministic, agreeing with
/// scipy to rounding (~1e-16 relative). One difference stays: under numpy 2 the integrand's
/// float32 sigmas keep its arithmetic in float32 in k-diffusion, which moves the coefficient by
/// ~1e-7 relative; the coefficient is rounded to float32 when it multiplies a tensor anyway.
pub(crate) fn linear_multistep_coeff(order: usize, t: &[f64], i: usize, j: usize) -> f64 {
    assert!(
        order >= 1 && order - 1 <= i,
        "order {order} too high for step {i}"
    );
    const NODES: [f64; 4] = [
        -0.861_136_311_594_052_6,
        -0.339_981_043_584_856_3,
        0.339_981_043_584_856_3,
        0.861_136_311_594_052_6,
    ];
    const WEIGHTS: [f64; 4] = [
        0.347_854_845_137_453_8,
        0.652_145_154_862_546_1,
        0.652_145_154_862_546_1,
        0.347_854_845_137_453_8,
    ];
    let basis = |tau: f64| {
        (0..order)
            .filter(|k| *k != j)
            .map(|k| (tau - t[i - k]) / (t[i - j] - t[i - k]))
            .product::<f64>()
    };
    let (a, b) = (t[i], t[i + 1]);
    let (half, mid) = ((b - a) / 2.0, (a + b) / 2.0);
    half * NODES
        .iter()
        .zip(WEIGHTS)
        .map(|(x, w)| w * basis(mid + half * x))
        .sum::<f64>()
}

/// `sample_lms(order=4)`: keeps the last `order` derivatives; a step to σ = 0 returns the
/// denoised latent; otherwise x ← x + Σ_j c_j·d_{i−j}, with cur_order = min(i + 1, order).
pub(crate) fn sample_lms(
    model: &mut Model,
    mut x: Tensor,
    sigmas: &[f32],
    order: usize,
) -> candle_core::Result<Tensor> {
    let t: Vec<f64> = sigmas.iter().map(|s| f64::from(*s)).collect();
    let mut ds: VecDeque<Tensor> = VecDeque::with_capacity(order + 1);
    for i in 0..sigmas.len().saturating_sub(1) {
        let denoised = model(&x, sigmas[i])?;
        ds.push_back(to_d(&x, sigmas[i], &denoised)?);
        if ds.len() > order {
            ds.pop_front();
        }
        if sigmas[i + 1] == 0.0 {
            x = denoised;
        } else {
            let cur_order = (i + 1).min(order);
            // Python's sum(coeff * d for ...) adds the newest derivative's term first.
            let mut sum: Option<Tensor> = None;
            for (j, d) in ds.iter().rev().enumerate().take(cur_order) {
                let c = linear_multistep_coeff(cur_order, &t, i, j) as f32;
                let term = mul_scalar(d, c)?;
                sum = Some(match sum {
                    None => term,
                    Some(s) => (s + term)?,
                });
            }
            if let Some(sum) = sum {
                x = (x + sum)?;
            }
        }
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_one_is_the_euler_step_and_coefficients_sum_to_the_step() {
        let t = [14.6, 7.3, 3.7, 1.8, 0.9, 0.46];
        // ℓ_0 = 1 for order 1: the integral is the step itself.
        assert!((linear_multistep_coeff(1, &t, 0, 0) - (7.3 - 14.6)).abs() < 1e-14);
        // Σ_j ℓ_j = 1 for every order, so the coefficients sum to t[i+1] − t[i].
        for order in 1..=4 {
            let i = 4;
            let s: f64 = (0..order)
                .map(|j| linear_multistep_coeff(order, &t, i, j))
                .sum();
            assert!((s - (t[i + 1] - t[i])).abs() < 1e-13, "order {order}: {s}");
        }
    }

    #[test]
    fn order_two_matches_the_closed_form() {
        // ℓ_0(τ) = (τ − t₀)/(t₁ − t₀) on [t₁, t₂] for i = 1, j = 0 (k = 1 only):
        // ∫ = ((t₂ − t₀)² − (t₁ − t₀)²) / (2 (t₁ − t₀)).
        let t = [10.0f64, 6.0, 3.5];
        let want = ((t[2] - t[0]).powi(2) - (t[1] - t[0]).powi(2)) / (2.0 * (t[1] - t[0]));
        assert!((linear_multistep_coeff(2, &t, 1, 0) - want).abs() < 1e-13);
    }
}
