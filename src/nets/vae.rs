//! The VAE decoder (diffusers `AutoencoderKL`: `post_quant_conv` and `decoder.*`), built from
//! the same config and weights as candle-transformers' `AutoEncoderKL`.
//!
//! Local so its convolutions use `seedling_kernels::conv` (the faster CPU kernel): the decode at
//! 512×512 is almost all 3×3 convolutions over 128–512 channels at full resolution, which
//! candle's CPU conv2d ran 2.6× slower than PyTorch (see bench/). Only decoding is needed (no
//! img2img yet), so the encoder is not built. The mid-block attention reads both checkpoint
//! namings (`to_q`/`to_k`/`to_v`/`to_out.0`, and the older `query`/`key`/`value`/`proj_attn`,
//! whose weights may be stored as 1×1 convolutions), as candle's does.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};
use candle_transformers::models::stable_diffusion::vae::AutoEncoderKLConfig;
use seedling_kernels::conv::{conv2d, resnet_shortcut, Conv2d};
use seedling_kernels::linear::Linear;
use seedling_kernels::norm::{group_norm, GroupNorm};
use seedling_kernels::sdpa;
use seedling_kernels::transpose::swap_last_two;

/// diffusers' VAE norms use eps 1e-6 (`AutoencoderKL` passes no `norm_eps`).
const EPS: f64 = 1e-6;

fn pad1() -> Conv2dConfig {
    Conv2dConfig {
        padding: 1,
        ..Default::default()
    }
}

/// `ResnetBlock2D` without a time embedding: (shortcut(x) + conv2(silu(norm2(conv1(silu(norm1 x)))))).
struct Resnet {
    norm1: GroupNorm,
    conv1: Conv2d,
    norm2: GroupNorm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl Resnet {
    fn new(vs: VarBuilder, cin: usize, cout: usize, groups: usize) -> Result<Self> {
        Ok(Self {
            norm1: group_norm(groups, cin, EPS, vs.pp("norm1"))?,
            conv1: conv2d(cin, cout, 3, pad1(), vs.pp("conv1"))?,
            norm2: group_norm(groups, cout, EPS, vs.pp("norm2"))?,
            conv2: conv2d(cout, cout, 3, pad1(), vs.pp("conv2"))?,
            shortcut: resnet_shortcut(cin, cout, vs)?,
        })
    }

    /// Takes the block's input by value, the caller holding no other handle to it: it is
    /// overwritten or dropped as soon as it is no longer needed. At 512×512 the last up block's
    /// first resnet then holds its 256-channel input (256 MiB), the shortcut's output and
    /// conv1's output (128 MiB each) at its peak, instead of also a normalised copy of the input,
    /// a normalised copy of conv1's output and a separate sum.
    fn forward(&self, xs: Tensor) -> Result<Tensor> {
        let (h, residual) = match &self.shortcut {
            Some(shortcut) => {
                let residual = shortcut.forward(&xs)?;
                // The input is not read again: normalise it where it is.
                let h = self.conv1.forward(&self.norm1.forward_silu_in_place(xs)?)?;
                (h, residual)
            }
            None => (self.conv1.forward(&self.norm1.forward_silu(&xs)?)?, xs),
        };
        // conv2's products are summed onto the skip connection, in its own storage.
        self.conv2
            .forward_onto(&self.norm2.forward_silu_in_place(h)?, residual)
    }
}

/// The mid block's single-head self-attention over pixels, with a residual.
struct Attention {
    norm: GroupNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
}

/// A linear layer whose weight may be saved as a 1×1 convolution (old checkpoints).
fn linear_or_1x1(vs: VarBuilder, channels: usize) -> Result<Linear> {
    let w = if vs.contains_tensor("weight") && vs.get_unchecked("weight")?.rank() == 4 {
        vs.get((channels, channels, 1, 1), "weight")?
            .reshape((channels, channels))?
    } else {
        vs.get((channels, channels), "weight")?
    };
    Linear::new(w, Some(vs.get(channels, "bias")?))
}

impl Attention {
    fn new(vs: VarBuilder, channels: usize, groups: usize) -> Result<Self> {
        let (q, k, v, out) = if vs.contains_tensor("query.weight") {
            ("query", "key", "value", "proj_attn")
        } else {
            ("to_q", "to_k", "to_v", "to_out.0")
        };
        Ok(Self {
            norm: group_norm(groups, channels, EPS, vs.pp("group_norm"))?,
            q: linear_or_1x1(vs.pp(q), channels)?,
            k: linear_or_1x1(vs.pp(k), channels)?,
            v: linear_or_1x1(vs.pp(v), channels)?,
            out: linear_or_1x1(vs.pp(out), channels)?,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        let x = swap_last_two(&self.norm.forward(xs)?.reshape((b, c, h * w))?)?;
        let (q, k, v) = (
            self.q.forward(&x)?,
            self.k.forward(&x)?,
            self.v.forward(&x)?,
        );
        let scale = 1.0 / (c as f64).sqrt();
        // diffusers' VAE attention (`AttnProcessor2_0`, `F.scaled_dot_product_attention`)
        // computes in the model dtype: no upcast.
        let attended = sdpa::attention(&q, &k, &v, scale, 1, sdpa::Scores::AsInputs)?;
        let out = self.out.forward(&attended)?;
        let out = swap_last_two(&out)?.reshape((b, c, h, w))?;
        xs + out
    }
}

/// `UpDecoderBlock2D`: resnets, then (but for the last level) nearest ×2 and a 3×3 conv.
struct UpBlock {
    resnets: Vec<Resnet>,
    upsample: Option<Conv2d>,
}

impl UpBlock {
    /// `xs` as for `Resnet::forward`: owned alone, dropped once read.
    fn forward(&self, mut xs: Tensor) -> Result<Tensor> {
        for r in &self.resnets {
            xs = r.forward(xs)?;
        }
        match &self.upsample {
            Some(conv) => conv.forward_upsampled(&xs, 2),
            None => Ok(xs),
        }
    }
}

/// latents (already divided by the scaling factor) → image in [-1, 1].
pub struct VaeDecoder {
    post_quant_conv: Option<Conv2d>,
    conv_in: Conv2d,
    mid: (Resnet, Attention, Resnet),
    up: Vec<UpBlock>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl VaeDecoder {
    /// `vs` is the checkpoint root (the `AutoencoderKL` weights).
    pub(crate) fn new(
        vs: VarBuilder,
        out_channels: usize,
        c: &AutoEncoderKLConfig,
    ) -> Result<Self> {
        let latent = c.latent_channels;
        let g = c.norm_num_groups;
        let post_quant_conv = if c.use_post_quant_conv {
            Some(conv2d(
                latent,
                latent,
                1,
                Default::default(),
                vs.pp("post_quant_conv"),
            )?)
        } else {
            None
        };
        let d = vs.pp("decoder");
        let channels: Vec<usize> = c.block_out_channels.iter().rev().copied().collect();
        let top = channels[0];
        let mid_vs = d.pp("mid_block");
        let mid = (
            Resnet::new(mid_vs.pp("resnets").pp(0), top, top, g)?,
            Attention::new(mid_vs.pp("attentions").pp(0), top, g)?,
            Resnet::new(mid_vs.pp("resnets").pp(1), top, top, g)?,
        );
        let mut up = Vec::with_capacity(channels.len());
        let mut prev = top;
        for (i, &ch) in channels.iter().enumerate() {
            let bvs = d.pp("up_blocks").pp(i);
            let resnets = (0..=c.layers_per_block)
                .map(|j| {
                    let cin = if j == 0 { prev } else { ch };
                    Resnet::new(bvs.pp("resnets").pp(j), cin, ch, g)
                })
                .collect::<Result<Vec<_>>>()?;
            let upsample = if i + 1 < channels.len() {
                Some(conv2d(
                    ch,
                    ch,
                    3,
                    pad1(),
                    bvs.pp("upsamplers").pp(0).pp("conv"),
                )?)
            } else {
                None
            };
            up.push(UpBlock { resnets, upsample });
            prev = ch;
        }
        let last = channels[channels.len() - 1];
        Ok(Self {
            post_quant_conv,
            conv_in: conv2d(latent, top, 3, pad1(), d.pp("conv_in"))?,
            mid,
            up,
            norm_out: group_norm(g, last, EPS, d.pp("conv_norm_out"))?,
            conv_out: conv2d(last, out_channels, 3, pad1(), d.pp("conv_out"))?,
        })
    }

    pub fn decode(&self, latents: &Tensor) -> Result<Tensor> {
        let xs = match &self.post_quant_conv {
            Some(c) => c.forward(latents)?,
            None => latents.clone(),
        };
        // From here on each stage's output is a fresh tensor handed on by value, so the blocks
        // may overwrite or drop it (`Resnet::forward`); `latents` itself is never written.
        let mut xs = self.conv_in.forward(&xs)?;
        xs = self.mid.0.forward(xs)?;
        xs = self.mid.1.forward(&xs)?;
        xs = self.mid.2.forward(xs)?;
        for block in &self.up {
            xs = block.forward(xs)?;
        }
        let xs = self.norm_out.forward_silu_in_place(xs)?;
        self.conv_out.forward(&xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    /// The older attention names with 1×1-conv-shaped weights load as the same attention.
    #[test]
    fn both_attention_namings_load_the_same_weights() {
        let dev = Device::Cpu;
        let c = 8;
        let mut new = HashMap::new();
        let mut old = HashMap::new();
        for (n, o) in [
            ("to_q", "query"),
            ("to_k", "key"),
            ("to_v", "value"),
            ("to_out.0", "proj_attn"),
        ] {
            let w = Tensor::randn(0f32, 0.3, (c, c), &dev).unwrap();
            let b = Tensor::randn(0f32, 0.3, c, &dev).unwrap();
            old.insert(format!("{o}.weight"), w.reshape((c, c, 1, 1)).unwrap());
            old.insert(format!("{o}.bias"), b.clone());
            new.insert(format!("{n}.weight"), w);
            new.insert(format!("{n}.bias"), b);
        }
        for m in [&mut new, &mut old] {
            m.insert(
                "group_norm.weight".into(),
                Tensor::ones(c, DType::F32, &dev).unwrap(),
            );
            m.insert(
                "group_norm.bias".into(),
                Tensor::zeros(c, DType::F32, &dev).unwrap(),
            );
        }
        let a = Attention::new(VarBuilder::from_tensors(new, DType::F32, &dev), c, 2).unwrap();
        let b = Attention::new(VarBuilder::from_tensors(old, DType::F32, &dev), c, 2).unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, c, 3, 5), &dev).unwrap();
        let (ya, yb) = (a.forward(&x).unwrap(), b.forward(&x).unwrap());
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&ya), flat(&yb));
    }
}
