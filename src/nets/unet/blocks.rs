//! The UNet's resolution levels: resnets, optional transformers, down/up sampling
//! (diffusers `unet_2d_blocks.py`: DownBlock2D, CrossAttnDownBlock2D, UpBlock2D,
//! CrossAttnUpBlock2D, UNetMidBlock2DCrossAttn).

use super::attention::{Transformer2D, TransformerConfig};
use super::embeddings::linear_per_row;
use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Conv2dConfig, VarBuilder};
use seedling_kernels::conv::{conv2d, resnet_shortcut, Conv2d};
use seedling_kernels::linear::{linear, Linear};
use seedling_kernels::norm::{group_norm, GroupNorm};

fn conv3x3(
    vs: VarBuilder,
    cin: usize,
    cout: usize,
    stride: usize,
    padding: usize,
) -> Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding,
        stride,
        ..Default::default()
    };
    conv2d(cin, cout, 3, cfg, vs)
}

/// Settings every resnet of the UNet shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResnetConfig {
    pub groups: usize,
    pub eps: f64,
    pub temb_channels: usize,
    pub output_scale_factor: f64,
}

/// diffusers `ResnetBlock2D` (time_embedding_norm "default", SiLU):
/// h = conv1(silu(norm1 x)) + proj(silu temb); h = conv2(silu(norm2 h)); (shortcut(x) + h) / s.
pub(crate) struct Resnet {
    norm1: GroupNorm,
    conv1: Conv2d,
    time_emb_proj: Linear,
    norm2: GroupNorm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
    output_scale_factor: f64,
}

impl Resnet {
    pub(crate) fn new(vs: VarBuilder, cin: usize, cout: usize, c: ResnetConfig) -> Result<Self> {
        Ok(Self {
            norm1: group_norm(c.groups, cin, c.eps, vs.pp("norm1"))?,
            conv1: conv3x3(vs.pp("conv1"), cin, cout, 1, 1)?,
            time_emb_proj: linear(c.temb_channels, cout, vs.pp("time_emb_proj"))?,
            norm2: group_norm(c.groups, cout, c.eps, vs.pp("norm2"))?,
            conv2: conv3x3(vs.pp("conv2"), cout, cout, 1, 1)?,
            shortcut: resnet_shortcut(cin, cout, vs)?,
            output_scale_factor: c.output_scale_factor,
        })
    }

    pub(crate) fn forward(&self, xs: &Tensor, temb: &Tensor) -> Result<Tensor> {
        let t = linear_per_row(&self.time_emb_proj, &candle_nn::ops::silu(temb)?)?;
        let h = self
            .conv1
            .forward_shifted(&self.norm1.forward_silu(xs)?, &t)?;
        let x = match &self.shortcut {
            Some(s) => s.forward(xs)?,
            None => xs.clone(),
        };
        // conv2's products are summed onto the skip connection.
        let out = self
            .conv2
            .forward_residual(&self.norm2.forward_silu(&h)?, &x)?;
        if self.output_scale_factor == 1.0 {
            Ok(out)
        } else {
            out / self.output_scale_factor
        }
    }
}

/// Stride-2 3×3 convolution. With `downsample_padding` 0 diffusers pads right and bottom by one.
struct Downsample {
    conv: Conv2d,
    pad_right_bottom: bool,
}

impl Downsample {
    fn new(vs: VarBuilder, channels: usize, padding: usize) -> Result<Self> {
        Ok(Self {
            conv: conv3x3(vs.pp("conv"), channels, channels, 2, padding)?,
            pad_right_bottom: padding == 0,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if self.pad_right_bottom {
            let xs = xs
                .pad_with_zeros(D::Minus1, 0, 1)?
                .pad_with_zeros(D::Minus2, 0, 1)?;
            self.conv.forward(&xs)
        } else {
            self.conv.forward(xs)
        }
    }
}

/// Nearest-neighbour ×2 (or to the skip connection's size) then a 3×3 convolution.
struct Upsample {
    conv: Conv2d,
}

impl Upsample {
    fn new(vs: VarBuilder, channels: usize) -> Result<Self> {
        Ok(Self {
            conv: conv3x3(vs.pp("conv"), channels, channels, 1, 1)?,
        })
    }

    fn forward(&self, xs: &Tensor, size: Option<(usize, usize)>) -> Result<Tensor> {
        let (_, _, h, w) = xs.dims4()?;
        let (th, tw) = size.unwrap_or((2 * h, 2 * w));
        if (th, tw) == (2 * h, 2 * w) {
            return self.conv.forward_upsampled(xs, 2);
        }
        // An odd skip size (diffusers' `upsample_size`): upsample to it, then convolve.
        self.conv.forward(&xs.upsample_nearest2d(th, tw)?)
    }
}

/// How a level of the UNet is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LevelConfig {
    pub resnet: ResnetConfig,
    /// Transformer settings when the level has cross-attention (`CrossAttn*Block2D`).
    pub attention: Option<TransformerConfig>,
}

/// `DownBlock2D` / `CrossAttnDownBlock2D`.
pub(crate) struct DownBlock {
    resnets: Vec<Resnet>,
    attentions: Vec<Transformer2D>,
    downsample: Option<Downsample>,
}

impl DownBlock {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        vs: VarBuilder,
        cin: usize,
        cout: usize,
        layers: usize,
        level: LevelConfig,
        add_downsample: bool,
        downsample_padding: usize,
    ) -> Result<Self> {
        let mut resnets = Vec::with_capacity(layers);
        let mut attentions = Vec::new();
        for i in 0..layers {
            let input = if i == 0 { cin } else { cout };
            resnets.push(Resnet::new(
                vs.pp("resnets").pp(i),
                input,
                cout,
                level.resnet,
            )?);
            if let Some(a) = level.attention {
                attentions.push(Transformer2D::new(vs.pp("attentions").pp(i), a)?);
            }
        }
        let downsample = if add_downsample {
            Some(Downsample::new(
                vs.pp("downsamplers").pp(0),
                cout,
                downsample_padding,
            )?)
        } else {
            None
        };
        Ok(Self {
            resnets,
            attentions,
            downsample,
        })
    }

    /// Returns the output and the states the up path takes as skip connections.
    pub(crate) fn forward(
        &self,
        xs: &Tensor,
        temb: &Tensor,
        context: &Tensor,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let mut xs = xs.clone();
        let mut states = Vec::with_capacity(self.resnets.len() + 1);
        for (i, resnet) in self.resnets.iter().enumerate() {
            xs = resnet.forward(&xs, temb)?;
            if let Some(attn) = self.attentions.get(i) {
                xs = attn.forward(&xs, context)?;
            }
            states.push(xs.clone());
        }
        if let Some(d) = &self.downsample {
            xs = d.forward(&xs)?;
            states.push(xs.clone());
        }
        Ok((xs, states))
    }
}

/// `UpBlock2D` / `CrossAttnUpBlock2D`: each resnet takes the running state concatenated with
/// one skip connection (the most recent first).
pub(crate) struct UpBlock {
    resnets: Vec<Resnet>,
    attentions: Vec<Transformer2D>,
    upsample: Option<Upsample>,
}

impl UpBlock {
    /// `skip_channels[j]` is the width of the skip state resnet `j` consumes.
    pub(crate) fn new(
        vs: VarBuilder,
        prev_out: usize,
        cout: usize,
        skip_channels: &[usize],
        level: LevelConfig,
        add_upsample: bool,
    ) -> Result<Self> {
        let mut resnets = Vec::with_capacity(skip_channels.len());
        let mut attentions = Vec::new();
        for (j, skip) in skip_channels.iter().enumerate() {
            let input = if j == 0 { prev_out } else { cout };
            resnets.push(Resnet::new(
                vs.pp("resnets").pp(j),
                input + skip,
                cout,
                level.resnet,
            )?);
            if let Some(a) = level.attention {
                attentions.push(Transformer2D::new(vs.pp("attentions").pp(j), a)?);
            }
        }
        let upsample = if add_upsample {
            Some(Upsample::new(vs.pp("upsamplers").pp(0), cout)?)
        } else {
            None
        };
        Ok(Self {
            resnets,
            attentions,
            upsample,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.resnets.len()
    }

    /// `skips` in the order they were produced; consumed from the end.
    pub(crate) fn forward(
        &self,
        xs: &Tensor,
        skips: &[Tensor],
        temb: &Tensor,
        context: &Tensor,
        upsample_size: Option<(usize, usize)>,
    ) -> Result<Tensor> {
        let mut xs = xs.clone();
        for (j, resnet) in self.resnets.iter().enumerate() {
            let skip = &skips[skips.len() - 1 - j];
            xs = resnet.forward(&Tensor::cat(&[&xs, skip], 1)?, temb)?;
            if let Some(attn) = self.attentions.get(j) {
                xs = attn.forward(&xs, context)?;
            }
        }
        match &self.upsample {
            Some(u) => u.forward(&xs, upsample_size),
            None => Ok(xs),
        }
    }
}

/// `UNetMidBlock2DCrossAttn` with one layer: resnet, transformer, resnet.
pub(crate) struct MidBlock {
    resnet_in: Resnet,
    attention: Transformer2D,
    resnet_out: Resnet,
}

impl MidBlock {
    pub(crate) fn new(
        vs: VarBuilder,
        channels: usize,
        resnet: ResnetConfig,
        attention: TransformerConfig,
    ) -> Result<Self> {
        Ok(Self {
            resnet_in: Resnet::new(vs.pp("resnets").pp(0), channels, channels, resnet)?,
            attention: Transformer2D::new(vs.pp("attentions").pp(0), attention)?,
            resnet_out: Resnet::new(vs.pp("resnets").pp(1), channels, channels, resnet)?,
        })
    }

    pub(crate) fn forward(&self, xs: &Tensor, temb: &Tensor, context: &Tensor) -> Result<Tensor> {
        let xs = self.resnet_in.forward(xs, temb)?;
        let xs = self.attention.forward(&xs, context)?;
        self.resnet_out.forward(&xs, temb)
    }
}
