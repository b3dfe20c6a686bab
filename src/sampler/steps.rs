//! Step arithmetic several samplers share: the data prediction x̂₀ in its two notations
//! (DDPM's sqrt(ᾱ), sqrt(1 − ᾱ) and the noise level σ of the sigma-based solvers), the Euler
//! samplers' ODE derivative and input scaling, and a·x + b·y on latents. Each sampler file
//! holds only what is its own; what two or more use is here, so that no sampler imports another.

use super::config::PredictionType;
use candle_core::Tensor;

/// Refuses a step index the sampler was not set up for (a caller bug, reported as an error).
pub(super) fn check_step(i: usize, steps: usize) -> candle_core::Result<()> {
    if i >= steps {
        candle_core::bail!("step {i} is out of range: this sampler was set up for {steps} steps");
    }
    Ok(())
}

/// a·x + b·y on f32 tensors, the f64 coefficients applied by `affine`.
pub(super) fn lincomb(a: f64, x: &Tensor, b: f64, y: &Tensor) -> candle_core::Result<Tensor> {
    x.affine(a, 0.0)? + y.affine(b, 0.0)?
}

/// x̂₀ from the model output, given sqrt(ᾱ) = `a` and sqrt(1 − ᾱ) = `b` (DDPM/DDIM notation):
/// epsilon: (x − b·ε)/a; v_prediction: a·x − b·v (Salimans & Ho 2022); sample: the output.
pub(super) fn predicted_x0(
    prediction: PredictionType,
    a: f64,
    b: f64,
    sample: &Tensor,
    model_output: &Tensor,
) -> candle_core::Result<Tensor> {
    match prediction {
        PredictionType::Epsilon => lincomb(1.0 / a, sample, -b / a, model_output),
        PredictionType::VPrediction => lincomb(a, sample, -b, model_output),
        PredictionType::Sample => Ok(model_output.clone()),
    }
}

/// α, σ_vp and λ of a noise level σ (diffusers `_sigma_to_alpha_sigma_t`, then
/// λ = log α − log σ_vp). σ = 0 gives α = 1, σ_vp = 0, λ = +∞.
pub(super) fn alpha_sigma_lambda(sigma: f64) -> (f64, f64, f64) {
    let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
    let sigma_vp = sigma * alpha;
    (alpha, sigma_vp, alpha.ln() - sigma_vp.ln())
}

/// The data prediction x̂₀ from the model output at noise level σ (diffusers
/// `convert_model_output` for the x₀-predicting solvers):
/// epsilon: x̂₀ = (x − σ_vp·ε)/α; v_prediction: x̂₀ = α·x − σ_vp·v; sample: x̂₀ = output.
pub(super) fn data_prediction(
    prediction: PredictionType,
    sigma: f64,
    model_output: &Tensor,
    sample: &Tensor,
) -> candle_core::Result<Tensor> {
    let (alpha, sigma_vp, _) = alpha_sigma_lambda(sigma);
    predicted_x0(prediction, alpha, sigma_vp, sample, model_output)
}

/// Coefficients (a, b) of the ODE derivative d = (x − x̂₀) / σ = a·x + b·model_output, where x̂₀
/// is diffusers' `pred_original_sample` for the prediction type:
/// epsilon: x̂₀ = x − σ·ε, so d = ε;
/// v_prediction: x̂₀ = −σ/√(σ²+1)·v + x/(σ²+1), so d = σ/(σ²+1)·x + v/√(σ²+1);
/// sample: x̂₀ = model_output, so d = (x − model_output)/σ.
pub(super) fn derivative_coefficients(prediction: PredictionType, sigma: f64) -> (f64, f64) {
    let s2p1 = sigma * sigma + 1.0;
    match prediction {
        PredictionType::Epsilon => (0.0, 1.0),
        PredictionType::VPrediction => (sigma / s2p1, 1.0 / s2p1.sqrt()),
        PredictionType::Sample => (1.0 / sigma, -1.0 / sigma),
    }
}

/// `sample / sqrt(sigma² + 1)`: the UNet input of the Euler samplers.
pub(super) fn euler_scale_input(sample: &Tensor, sigma: f64) -> candle_core::Result<Tensor> {
    sample.affine(1.0 / (sigma * sigma + 1.0).sqrt(), 0.0)
}
