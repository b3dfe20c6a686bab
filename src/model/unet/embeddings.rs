//! Timestep embeddings (diffusers `Timesteps` + `TimestepEmbedding`).

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

/// Sinusoidal embedding of the timestep, as diffusers' `get_timestep_embedding`
/// (after "Attention Is All You Need", §3.5): frequencies `exp(-ln(10000) · i / (half − shift))`,
/// `[cos | sin]` when `flip_sin_to_cos`, else `[sin | cos]`. Computed in f32 (diffusers does too)
/// and cast to the model dtype afterwards.
pub fn timestep_embedding(
    timestep: f64,
    batch: usize,
    channels: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
    device: &Device,
    dtype: DType,
) -> Result<Tensor> {
    let half = channels / 2;
    let mut row = vec![0f32; channels];
    for i in 0..half {
        let exponent = -(10000f32.ln()) * i as f32 / (half as f32 - freq_shift as f32);
        let arg = timestep as f32 * exponent.exp();
        let (first, second) = if flip_sin_to_cos {
            (arg.cos(), arg.sin())
        } else {
            (arg.sin(), arg.cos())
        };
        row[i] = first;
        row[half + i] = second;
    }
    // An odd channel count leaves the last column zero, as diffusers pads.
    let data: Vec<f32> = (0..batch).flat_map(|_| row.iter().copied()).collect();
    Tensor::from_vec(data, (batch, channels), device)?.to_dtype(dtype)
}

/// `linear_1 → SiLU → linear_2`.
pub struct TimestepEmbedding {
    linear_1: Linear,
    linear_2: Linear,
}

impl TimestepEmbedding {
    pub fn new(vs: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Self> {
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
