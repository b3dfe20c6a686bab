//! diffusers `Transformer2DModel` as SD's UNet uses it: group norm, projection in, transformer
//! blocks (self-attention, cross-attention, GEGLU feed-forward), projection out, residual.

use crate::model::conv::{conv2d, Conv2d};
use crate::model::linear::{linear, linear_no_bias, Linear};
use crate::model::norm::{group_norm, GroupNorm};
use crate::model::transpose::swap_last_two;
use crate::model::{geglu, sdpa};
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

/// Multi-head attention (diffusers `Attention` with the default processor): no bias on the
/// q/k/v projections, `to_out.0` with bias. Scores and softmax run in f32 whatever the model
/// dtype, which is what `upcast_attention`/`upcast_softmax` ask for in half precision.
pub struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    pub fn new(
        vs: VarBuilder,
        query_dim: usize,
        context_dim: usize,
        heads: usize,
        head_dim: usize,
    ) -> Result<Self> {
        let inner = heads * head_dim;
        Ok(Self {
            to_q: linear_no_bias(query_dim, inner, vs.pp("to_q"))?,
            to_k: linear_no_bias(context_dim, inner, vs.pp("to_k"))?,
            to_v: linear_no_bias(context_dim, inner, vs.pp("to_v"))?,
            to_out: linear(inner, query_dim, vs.pp("to_out").pp("0"))?,
            heads,
            head_dim,
        })
    }

    /// softmax(q kᵀ / √d) v (Vaswani et al. 2017, eq. 1), in `model::sdpa`, which takes the
    /// projections' [b, s, h·d] layout as it is.
    pub fn forward(&self, xs: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let dtype = xs.dtype();
        let context = context.unwrap_or(xs);
        let to_f32 = |t: Tensor| t.to_dtype(DType::F32);
        let q = to_f32(self.to_q.forward(xs)?)?;
        let k = to_f32(self.to_k.forward(context)?)?;
        let v = to_f32(self.to_v.forward(context)?)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let out = sdpa::attention(&q, &k, &v, scale, self.heads)?.to_dtype(dtype)?;
        self.to_out.forward(&out)
    }
}

/// GEGLU feed-forward (Shazeer 2020): `proj` makes value and gate halves, `value · gelu(gate)`,
/// then a linear back to `dim`. diffusers' GEGLU uses the exact (erf) GELU; candle-transformers'
/// uses the tanh approximation.
struct FeedForward {
    proj: Linear,
    out: Linear,
}

impl FeedForward {
    fn new(vs: VarBuilder, dim: usize, mult: usize) -> Result<Self> {
        let inner = dim * mult;
        Ok(Self {
            proj: linear(dim, inner * 2, vs.pp("net").pp("0").pp("proj"))?,
            out: linear(inner, dim, vs.pp("net").pp("2"))?,
        })
    }
}

impl Module for FeedForward {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.out.forward(&geglu::geglu(&self.proj.forward(xs)?)?)
    }
}

/// diffusers `BasicTransformerBlock` (layer norms eps 1e-5): x + attn1(norm1 x),
/// x + attn2(norm2 x, context), x + ff(norm3 x).
struct TransformerBlock {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    ff: FeedForward,
}

impl TransformerBlock {
    fn new(vs: VarBuilder, dim: usize, context_dim: usize, heads: usize) -> Result<Self> {
        let head_dim = dim / heads;
        Ok(Self {
            norm1: layer_norm(dim, 1e-5, vs.pp("norm1"))?,
            attn1: Attention::new(vs.pp("attn1"), dim, dim, heads, head_dim)?,
            norm2: layer_norm(dim, 1e-5, vs.pp("norm2"))?,
            attn2: Attention::new(vs.pp("attn2"), dim, context_dim, heads, head_dim)?,
            norm3: layer_norm(dim, 1e-5, vs.pp("norm3"))?,
            ff: FeedForward::new(vs.pp("ff"), dim, 4)?,
        })
    }

    fn forward(&self, xs: &Tensor, context: &Tensor) -> Result<Tensor> {
        let xs = (self.attn1.forward(&self.norm1.forward(xs)?, None)? + xs)?;
        let xs = (self
            .attn2
            .forward(&self.norm2.forward(&xs)?, Some(context))?
            + xs)?;
        self.ff.forward(&self.norm3.forward(&xs)?)? + xs
    }
}

enum Projection {
    /// 1×1 convolution on [b, c, h, w] (SD 1.x).
    Conv(Conv2d),
    /// Linear on [b, h·w, c] (`use_linear_projection`, SD 2.x).
    Linear(Linear),
}

/// The settings of one `Transformer2DModel`.
#[derive(Debug, Clone, Copy)]
pub struct TransformerConfig {
    pub channels: usize,
    pub heads: usize,
    pub depth: usize,
    pub context_dim: usize,
    pub groups: usize,
    pub linear_projection: bool,
}

pub struct Transformer2D {
    norm: GroupNorm,
    proj_in: Projection,
    blocks: Vec<TransformerBlock>,
    proj_out: Projection,
}

impl Transformer2D {
    pub fn new(vs: VarBuilder, c: TransformerConfig) -> Result<Self> {
        let ch = c.channels;
        let proj = |name: &str| -> Result<Projection> {
            Ok(if c.linear_projection {
                Projection::Linear(linear(ch, ch, vs.pp(name))?)
            } else {
                Projection::Conv(conv2d(ch, ch, 1, Default::default(), vs.pp(name))?)
            })
        };
        let blocks_vs = vs.pp("transformer_blocks");
        let blocks = (0..c.depth)
            .map(|i| TransformerBlock::new(blocks_vs.pp(i), ch, c.context_dim, c.heads))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            // diffusers builds this norm with eps 1e-6 regardless of the UNet's norm_eps.
            norm: group_norm(c.groups, ch, 1e-6, vs.pp("norm"))?,
            proj_in: proj("proj_in")?,
            blocks,
            proj_out: proj("proj_out")?,
        })
    }

    pub fn forward(&self, xs: &Tensor, context: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        let residual = xs;
        let xs = self.norm.forward(xs)?;
        // [b, c, h, w] → [b, h·w, c], projecting before or after as the weights expect.
        let to_tokens = |t: &Tensor| swap_last_two(&t.reshape((b, c, h * w))?);
        let mut tokens = match &self.proj_in {
            Projection::Conv(p) => to_tokens(&p.forward(&xs)?)?,
            Projection::Linear(p) => p.forward(&to_tokens(&xs)?)?,
        };
        for block in &self.blocks {
            tokens = block.forward(&tokens, context)?;
        }
        let to_image = |t: &Tensor| swap_last_two(t)?.reshape((b, c, h, w));
        let out = match &self.proj_out {
            Projection::Conv(p) => p.forward(&to_image(&tokens)?)?,
            Projection::Linear(p) => to_image(&p.forward(&tokens)?)?,
        };
        out + residual
    }
}
