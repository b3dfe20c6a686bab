//! The denoising UNet (diffusers `UNet2DConditionModel`), built from its config.json.
//!
//! Local rather than candle-transformers' `unet_2d` because that one does not follow the config
//! everywhere: its `DownBlock2D`/`UpBlock2D` resnets always use 32 norm groups whatever
//! `norm_num_groups` says (wrong for any model that is not 32), and its GEGLU uses the tanh
//! GELU where diffusers uses the exact one. Owning it is also where SDXL's `add_embedding` and
//! faster kernels will go. Weight names mirror diffusers' checkpoint names.

mod attention;
mod blocks;
mod embeddings;

use crate::models::configs::{AdditionSpec, UNetSpec};
use attention::TransformerConfig;
use blocks::{DownBlock, LevelConfig, MidBlock, ResnetConfig, UpBlock};
use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};
use embeddings::{sinusoidal_embedding, TimestepEmbedding};
use seedling_kernels::conv::{conv2d, Conv2d};
use seedling_kernels::norm::{group_norm, GroupNorm};

/// The per-row inputs of SDXL's added conditioning.
#[derive(Debug, Clone)]
pub struct AddedCond {
    /// Pooled text embeddings, `[b, pooled]`.
    pub text_embeds: Tensor,
    /// Size conditioning per row (`[h, w, crop_top, crop_left, target_h, target_w]`), row-major.
    pub time_ids: Vec<f64>,
}

impl AddedCond {
    /// SDXL's micro-conditioning (`_get_add_time_ids`) for `pooled` rows of one image size:
    /// original size, crop top-left, target size, height first — the image's own size, no crop.
    pub(crate) fn for_size(pooled: &[&Tensor], height: u32, width: u32) -> Result<Self> {
        let (h, w) = (f64::from(height), f64::from(width));
        Ok(Self {
            text_embeds: Tensor::cat(pooled, 0)?,
            time_ids: pooled.iter().flat_map(|_| [h, w, 0.0, 0.0, h, w]).collect(),
        })
    }
}

pub struct UNet {
    spec: UNetSpec,
    conv_in: Conv2d,
    time_embedding: TimestepEmbedding,
    add_embedding: Option<TimestepEmbedding>,
    down: Vec<DownBlock>,
    mid: MidBlock,
    up: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl UNet {
    pub(crate) fn new(vs: VarBuilder, spec: &UNetSpec) -> Result<Self> {
        let s = spec;
        let n = s.block_out_channels.len();
        let ch0 = s.block_out_channels[0];
        let temb = ch0 * 4; // diffusers: time_embed_dim = block_out_channels[0] * 4
        let pad1 = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        let resnet = |scale: f64| ResnetConfig {
            groups: s.norm_groups,
            eps: s.norm_eps,
            temb_channels: temb,
            output_scale_factor: scale,
        };
        let attention = |level: usize, depth: usize| TransformerConfig {
            channels: s.block_out_channels[level],
            heads: s.heads[level],
            depth,
            context_dim: s.cross_attention_dim,
            groups: s.norm_groups,
            linear_projection: s.linear_projection,
        };
        let level = |i: usize, depth: usize| LevelConfig {
            resnet: resnet(1.0),
            attention: s.cross_attention[i].then(|| attention(i, depth)),
        };

        let mut down = Vec::with_capacity(n);
        for i in 0..n {
            let cin = if i == 0 {
                ch0
            } else {
                s.block_out_channels[i - 1]
            };
            down.push(DownBlock::new(
                vs.pp("down_blocks").pp(i),
                cin,
                s.block_out_channels[i],
                s.layers_per_block,
                level(i, s.transformer_layers[i]),
                i + 1 < n,
                s.downsample_padding,
            )?);
        }

        let last = n - 1;
        let mid = MidBlock::new(
            vs.pp("mid_block"),
            s.block_out_channels[last],
            resnet(s.mid_block_scale_factor),
            attention(last, s.transformer_layers[last]),
        )?;

        // Up level i mirrors down level n-1-i (diffusers builds from reversed lists).
        let mut up = Vec::with_capacity(n);
        let mut prev_out = s.block_out_channels[last];
        for i in 0..n {
            let lvl = n - 1 - i;
            let cout = s.block_out_channels[lvl];
            let input = s.block_out_channels[lvl.saturating_sub(1)];
            let layers = s.layers_per_block + 1;
            let skips: Vec<usize> = (0..layers)
                .map(|j| if j == layers - 1 { input } else { cout })
                .collect();
            up.push(UpBlock::new(
                vs.pp("up_blocks").pp(i),
                prev_out,
                cout,
                &skips,
                level(lvl, s.up_transformer_layers[i]),
                i + 1 < n,
            )?);
            prev_out = cout;
        }

        Ok(Self {
            spec: spec.clone(),
            conv_in: conv2d(s.in_channels, ch0, 3, pad1, vs.pp("conv_in"))?,
            time_embedding: TimestepEmbedding::new(vs.pp("time_embedding"), ch0, temb)?,
            add_embedding: s
                .addition
                .map(|a| TimestepEmbedding::new(vs.pp("add_embedding"), a.input_dim, temb))
                .transpose()?,
            down,
            mid,
            up,
            conv_norm_out: group_norm(s.norm_groups, ch0, s.norm_eps, vs.pp("conv_norm_out"))?,
            conv_out: conv2d(ch0, s.out_channels, 3, pad1, vs.pp("conv_out"))?,
        })
    }

    /// Predicts noise (or v) for `sample` [b, c, h, w] at `timestep`, conditioned on `context`
    /// [b, tokens, cross_attention_dim] and, for SDXL, on `added`.
    pub fn forward(
        &self,
        sample: &Tensor,
        timestep: f64,
        context: &Tensor,
        added: Option<&AddedCond>,
    ) -> Result<Tensor> {
        let s = &self.spec;
        let (_, _, h, w) = sample.dims4()?;
        let temb = self.time_embedding(timestep, sample)?;
        let temb = match (&self.add_embedding, s.addition, added) {
            (Some(add), Some(spec), Some(cond)) => {
                (temb.broadcast_add(&self.added_embedding(add, spec, cond)?))?
            }
            (None, None, _) => temb,
            _ => candle_core::bail!(
                "this UNet needs SDXL's added conditioning (pooled text and size ids)"
            ),
        };
        let sample = if s.center_input_sample {
            ((sample * 2.0)? - 1.0)?
        } else {
            sample.clone()
        };

        let mut xs = self.conv_in.forward(&sample)?;
        let mut skips = vec![xs.clone()];
        for block in &self.down {
            let (out, states) = block.forward(&xs, &temb, context)?;
            xs = out;
            skips.extend(states);
        }
        xs = self.mid.forward(&xs, &temb, context)?;

        // Sizes not divisible by 2^(upsamplers) upsample to the skip's size (diffusers'
        // forward_upsample_size), so odd latent sizes round-trip.
        let factor = 1usize << (self.up.len() - 1);
        let odd = h % factor != 0 || w % factor != 0;
        for (i, block) in self.up.iter().enumerate() {
            let take = block.len();
            let rest = skips.len() - take;
            let mine = skips.split_off(rest);
            let size = if odd && i + 1 < self.up.len() {
                let (_, _, sh, sw) = skips[skips.len() - 1].dims4()?;
                Some((sh, sw))
            } else {
                None
            };
            xs = block.forward(&xs, &mine, &temb, context, size)?;
        }
        let xs = self.conv_norm_out.forward_silu(&xs)?;
        self.conv_out.forward(&xs)
    }

    /// The timestep embedding, `[1, temb]`. Every row shares the timestep, so it is computed for
    /// one row and broadcast (which also keeps an image independent of its batch).
    fn time_embedding(&self, timestep: f64, sample: &Tensor) -> Result<Tensor> {
        let s = &self.spec;
        let t = sinusoidal_embedding(
            &[timestep],
            s.block_out_channels[0],
            s.flip_sin_to_cos,
            s.freq_shift,
            sample.device(),
            sample.dtype(),
        )?;
        self.time_embedding.forward(&t)
    }

    /// SDXL: `add_embedding([text_embeds | sinusoid(time_ids)])`, `[b, temb]`.
    fn added_embedding(
        &self,
        add: &TimestepEmbedding,
        spec: AdditionSpec,
        cond: &AddedCond,
    ) -> Result<Tensor> {
        let s = &self.spec;
        let rows = cond.text_embeds.dim(0)?;
        let device = cond.text_embeds.device();
        let dtype = self.conv_in.weight().dtype();
        let ids = sinusoidal_embedding(
            &cond.time_ids,
            spec.time_embed_dim,
            s.flip_sin_to_cos,
            s.freq_shift,
            device,
            dtype,
        )?
        .reshape((rows, ()))?;
        let input = Tensor::cat(&[&cond.text_embeds.to_dtype(dtype)?, &ids], 1)?;
        add.forward(&input)
    }
}
