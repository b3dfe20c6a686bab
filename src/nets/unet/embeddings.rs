//! Timestep embeddings (diffusers `Timesteps` + `TimestepEmbedding`).

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;
use seedling_kernels::linear::{linear, Linear};

/// Sinusoidal embedding of each value (one row per value), as diffusers'
/// `get_timestep_embedding` (after "Attention Is All You Need", §3.5): frequencies
/// `exp(-ln(10000) · i / (half − shift))`, `[cos | sin]` when `flip_sin_to_cos`, else
/// `[sin | cos]`. Computed in f32 (diffusers does too) and cast to the model dtype afterwards.
pub(crate) fn sinusoidal_embedding(
    values: &[f64],
    channels: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
    device: &Device,
    dtype: DType,
) -> Result<Tensor> {
    let half = channels / 2;
    let mut data = vec![0f32; values.len() * channels];
    for (row, value) in data.chunks_mut(channels).zip(values) {
        for i in 0..half {
            let exponent = -(10000f32.ln()) * i as f32 / (half as f32 - freq_shift as f32);
            let arg = *value as f32 * exponent.exp();
            let (first, second) = if flip_sin_to_cos {
                (arg.cos(), arg.sin())
            } else {
                (arg.sin(), arg.cos())
            };
            row[i] = first;
            row[half + i] = second;
        }
        // An odd channel count leaves the last column zero, as diffusers pads.
    }
    Tensor::from_vec(data, (values.len(), channels), device)?.to_dtype(dtype)
}

/// A linear layer applied to each row of `[rows, features]` on its own. A product's rows are
/// independent with seedling's micro-kernels, but the gemm crate (CPUs without AVX2) and
/// candle's other backends take a different path for one row than for several, which changes
/// the last bits; row by row, an image's embedding is the same whatever batch it runs in.
pub(crate) fn linear_per_row(linear: &Linear, xs: &Tensor) -> Result<Tensor> {
    let rows = xs.dim(0)?;
    if rows == 1 {
        return linear.forward(xs);
    }
    let out = (0..rows)
        .map(|r| linear.forward(&xs.narrow(0, r, 1)?))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&out, 0)
}

/// `linear_1 → SiLU → linear_2`.
pub(crate) struct TimestepEmbedding {
    linear_1: Linear,
    linear_2: Linear,
}

impl TimestepEmbedding {
    pub(crate) fn new(vs: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Self> {
        Ok(Self {
            linear_1: linear(in_dim, out_dim, vs.pp("linear_1"))?,
            linear_2: linear(out_dim, out_dim, vs.pp("linear_2"))?,
        })
    }
}

impl Module for TimestepEmbedding {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.linear_2
            .forward(&candle_nn::ops::silu(&self.linear_1.forward(xs)?)?)
    }
}
