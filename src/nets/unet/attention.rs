//! diffusers `Transformer2DModel` as SD's UNet uses it: group norm, projection in, transformer
//! blocks (self-attention, cross-attention, GEGLU feed-forward), projection out, residual.

use candle_core::{Module, Result, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};
use seedling_kernels::linear::{linear, linear_no_bias, Linear};
use seedling_kernels::norm::{group_norm, GroupNorm};
use seedling_kernels::transpose::swap_last_two;
use seedling_kernels::{geglu, sdpa};

/// Multi-head attention (diffusers `Attention` with the default processor): no bias on the
/// q/k/v projections, `to_out.0` with bias. Scores and softmax run in f32 whatever the model
/// dtype, which is what `upcast_attention`/`upcast_softmax` ask for in half precision.
pub(crate) struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    pub(crate) fn new(
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

    /// softmax(q kᵀ / √d) v (Vaswani et al. 2017, eq. 1), in `seedling_kernels::sdpa`, which
    /// takes the projections' [b, s, h·d] layout as it is, with f32 scores (FlashAttention-2 in
    /// half precision on CUDA in a `flash-attn` build, f32 inside its kernel).
    pub(crate) fn forward(&self, xs: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let context = context.unwrap_or(xs);
        let q = self.to_q.forward(xs)?;
        let k = self.to_k.forward(context)?;
        let v = self.to_v.forward(context)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let out = sdpa::attention(&q, &k, &v, scale, self.heads, sdpa::Scores::F32)?;
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
        self.out.forward(&geglu::projected(&self.proj, xs)?)
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

/// The settings of one `Transformer2DModel`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransformerConfig {
    pub channels: usize,
    pub heads: usize,
    pub depth: usize,
    pub context_dim: usize,
    pub groups: usize,
    pub linear_projection: bool,
}

pub(crate) struct Transformer2D {
    norm: GroupNorm,
    proj_in: Linear,
    blocks: Vec<TransformerBlock>,
    proj_out: Linear,
}

impl Transformer2D {
    pub(crate) fn new(vs: VarBuilder, c: TransformerConfig) -> Result<Self> {
        let ch = c.channels;
        // SD 1.x stores the projections as 1×1 convolutions ([c, c, 1, 1]), SD 2.x as Linears
        // (`use_linear_projection`). A 1×1 convolution is a Linear over the pixels' channel
        // vectors, so both run as one on the tokens: each value is the same sum in the same
        // order (bias, then the channels ascending) as the convolution's, and the
        // convolution's copy of its input into the product's panels is saved (SD 1.5's
        // 320-channel projections at 64×64: 8.3 → 5.9 ms each on 2 Intel cores).
        let proj = |name: &str| -> Result<Linear> {
            if c.linear_projection {
                return linear(ch, ch, vs.pp(name));
            }
            let vs = vs.pp(name);
            let weight = vs.get((ch, ch, 1, 1), "weight")?.reshape((ch, ch))?;
            Linear::new(weight, Some(vs.get(ch, "bias")?))
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

    pub(crate) fn forward(&self, xs: &Tensor, context: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        let residual = xs;
        let xs = self.norm.forward(xs)?;
        // [b, c, h, w] → [b, h·w, c] (diffusers' permute(0, 2, 3, 1)).
        let tokens = swap_last_two(&xs.reshape((b, c, h * w))?)?;
        let mut tokens = self.proj_in.forward(&tokens)?;
        for block in &self.blocks {
            tokens = block.forward(&tokens, context)?;
        }
        let out = swap_last_two(&self.proj_out.forward(&tokens)?)?.reshape((b, c, h, w))?;
        out + residual
    }
}
