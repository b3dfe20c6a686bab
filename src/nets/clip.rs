//! CLIP text encoder (transformers' `CLIPTextModel`), built from its own `config.json`.
//!
//! Local rather than candle-transformers' `stable_diffusion::clip` because that module's
//! `Config` fields are private (it can only be built from its hard-coded presets, not from a
//! model's config.json), and its `Gelu` variant is the tanh approximation, whereas transformers'
//! `hidden_act: "gelu"` (SD 2.x's OpenCLIP encoder) is the exact erf form. It also returns every
//! hidden state, which SDXL's penultimate-layer conditioning needs.
//!
//! Its linear layers are `seedling_kernels::linear`'s (`Wᵀ` packed once at load): SD 1.5's
//! encoder took 0.19–0.20 s per prompt with candle's Linear and 0.15 s with these (median of 5,
//! `seedling bench`, 2 Zen 4 cores), PyTorch 0.15–0.18 s.

use crate::models::configs::{Activation, ClipTextConfig};
use crate::{Error, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};
use seedling_kernels::linear::{linear, linear_no_bias, Linear};

/// How the encoder applies its configured activation.
impl Activation {
    fn forward(self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::QuickGelu => xs * candle_nn::ops::sigmoid(&(xs * 1.702)?)?,
            Activation::GeluErf => xs.gelu_erf(),
            Activation::GeluTanh => xs.gelu(),
        }
    }
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(vs: VarBuilder, c: &ClipTextConfig) -> candle_core::Result<Self> {
        let h = c.hidden_size;
        Ok(Self {
            q_proj: linear(h, h, vs.pp("q_proj"))?,
            k_proj: linear(h, h, vs.pp("k_proj"))?,
            v_proj: linear(h, h, vs.pp("v_proj"))?,
            out_proj: linear(h, h, vs.pp("out_proj"))?,
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
        })
    }

    /// [b, s, h·d] → [b, h, s, d]
    fn split_heads(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, _) = xs.dims3()?;
        xs.reshape((b, s, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Scaled dot-product attention with the causal mask; logits and softmax in f32 so half
    /// precision cannot overflow.
    fn forward(&self, xs: &Tensor, causal_mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, s, hidden) = xs.dims3()?;
        let dtype = xs.dtype();
        let scale = (self.head_dim as f64).powf(-0.5);
        let q = (self
            .split_heads(&self.q_proj.forward(xs)?)?
            .to_dtype(DType::F32)?
            * scale)?;
        let k = self
            .split_heads(&self.k_proj.forward(xs)?)?
            .to_dtype(DType::F32)?;
        let v = self
            .split_heads(&self.v_proj.forward(xs)?)?
            .to_dtype(DType::F32)?;
        let logits = q.matmul(&k.t()?)?.broadcast_add(causal_mask)?;
        let weights = candle_nn::ops::softmax_last_dim(&logits)?;
        let out = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, s, hidden))?
            .to_dtype(dtype)?;
        self.out_proj.forward(&out)
    }
}

struct EncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: Attention,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl EncoderLayer {
    fn new(vs: VarBuilder, c: &ClipTextConfig, act: Activation) -> candle_core::Result<Self> {
        let h = c.hidden_size;
        Ok(Self {
            layer_norm1: layer_norm(h, c.layer_norm_eps, vs.pp("layer_norm1"))?,
            self_attn: Attention::new(vs.pp("self_attn"), c)?,
            layer_norm2: layer_norm(h, c.layer_norm_eps, vs.pp("layer_norm2"))?,
            fc1: linear(h, c.intermediate_size, vs.pp("mlp").pp("fc1"))?,
            fc2: linear(c.intermediate_size, h, vs.pp("mlp").pp("fc2"))?,
            act,
        })
    }

    /// Pre-norm residual block: x + attn(ln1(x)), then x + mlp(ln2(x)).
    fn forward(&self, xs: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let xs = (xs
            + self
                .self_attn
                .forward(&self.layer_norm1.forward(xs)?, mask)?)?;
        let mlp = self.fc2.forward(
            &self
                .act
                .forward(&self.fc1.forward(&self.layer_norm2.forward(&xs)?)?)?,
        )?;
        xs + mlp
    }
}

pub struct ClipTextModel {
    token_embedding: Embedding,
    position_embedding: Embedding,
    layers: Vec<EncoderLayer>,
    final_layer_norm: LayerNorm,
    max_positions: usize,
    /// `text_projection` (no bias), when the checkpoint has one.
    projection: Option<Linear>,
    eos_token_id: Option<u32>,
}

/// The encoder's outputs for one batch of token ids.
pub struct ClipOutput {
    /// Hidden state after the embeddings and after each layer (`num_hidden_layers + 1`), as
    /// transformers' `output_hidden_states=True`.
    pub hidden_states: Vec<Tensor>,
    /// `final_layer_norm(hidden_states.last())` = transformers' `last_hidden_state`.
    pub last_hidden_state: Tensor,
}

impl ClipTextModel {
    /// `vs` is the checkpoint root. transformers 4 saves the weights under `text_model.` (every
    /// SD repo on the Hub); transformers 5 saves `CLIPTextModel` without that prefix. Both load.
    pub(crate) fn new(vs: VarBuilder, c: &ClipTextConfig) -> Result<Self> {
        let projection = vs.contains_tensor("text_projection.weight");
        Self::build(vs, c, projection)
    }

    /// Like `new`, but with `text_projection` whatever the weights hold: for weights made as
    /// they are asked for (random weights in `seedling bench`), where nothing can be detected.
    pub(crate) fn with_projection(vs: VarBuilder, c: &ClipTextConfig) -> Result<Self> {
        Self::build(vs, c, true)
    }

    fn build(vs: VarBuilder, c: &ClipTextConfig, with_projection: bool) -> Result<Self> {
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return Err(Error::Model(format!(
                "text_encoder config: hidden_size {} is not divisible into {} heads",
                c.hidden_size, c.num_attention_heads
            )));
        }
        let act = Activation::parse(&c.hidden_act)?;
        let root = vs.clone();
        let vs = if vs.contains_tensor("text_model.embeddings.token_embedding.weight") {
            vs.pp("text_model")
        } else {
            vs
        };
        let projection = match c.projection_dim {
            Some(p) if with_projection => Some(linear_no_bias(
                c.hidden_size,
                p,
                root.pp("text_projection"),
            )?),
            _ => None,
        };
        let emb = vs.pp("embeddings");
        let layers_vs = vs.pp("encoder").pp("layers");
        let layers = (0..c.num_hidden_layers)
            .map(|i| EncoderLayer::new(layers_vs.pp(i), c, act))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            token_embedding: embedding(c.vocab_size, c.hidden_size, emb.pp("token_embedding"))?,
            position_embedding: embedding(
                c.max_position_embeddings,
                c.hidden_size,
                emb.pp("position_embedding"),
            )?,
            layers,
            final_layer_norm: layer_norm(
                c.hidden_size,
                c.layer_norm_eps,
                vs.pp("final_layer_norm"),
            )?,
            max_positions: c.max_position_embeddings,
            projection,
            eos_token_id: c.eos_token_id,
        })
    }

    pub(crate) fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// transformers' `CLIPTextModelWithProjection.text_embeds`: the final-norm state at the
    /// end token, through `text_projection`. The end token is the first `eos_token_id` (the
    /// highest id, by `argmax`, in configs from before transformers had `eos_token_id` = 2).
    pub(crate) fn pooled(&self, output: &ClipOutput, ids: &[u32]) -> Result<Tensor> {
        let projection = self.projection.as_ref().ok_or_else(|| {
            Error::Model(
                "this text encoder has no text_projection (not a CLIPTextModelWithProjection)"
                    .into(),
            )
        })?;
        let eos = match self.eos_token_id {
            Some(eos) if eos != 2 => ids.iter().position(|&i| i == eos),
            // torch's argmax: the first position of the largest id.
            _ => ids
                .iter()
                .max()
                .and_then(|m| ids.iter().position(|i| i == m)),
        }
        .unwrap_or(ids.len() - 1);
        let state = output.last_hidden_state.narrow(1, eos, 1)?.squeeze(1)?;
        Ok(projection.forward(&state)?)
    }

    /// Encodes `ids` ([batch, seq] u32).
    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<ClipOutput> {
        self.forward_embedded(ids, &[])
    }

    /// `forward`, with the token vectors at some positions of a one-prompt batch replaced by
    /// `inserted` ((position, `[hidden]` vector) pairs): a textual inversion's vectors, which
    /// enter where a token's would, before the position embedding is added (diffusers appends
    /// them to the token table; A1111's `EmbeddingsWithFixes` writes them over the looked-up
    /// rows: the same numbers).
    pub fn forward_embedded(
        &self,
        ids: &Tensor,
        inserted: &[(usize, Tensor)],
    ) -> candle_core::Result<ClipOutput> {
        let (_, seq) = ids.dims2()?;
        let device = ids.device();
        let positions = Tensor::arange(0u32, seq as u32, device)?.unsqueeze(0)?;
        let mut tokens = self.token_embedding.forward(ids)?;
        let hidden = tokens.dim(2)?;
        for (position, vector) in inserted {
            let vector = vector.to_dtype(tokens.dtype())?.reshape((1, 1, hidden))?;
            tokens = tokens.slice_assign(&[0..1, *position..position + 1, 0..hidden], &vector)?;
        }
        let mut xs = tokens.broadcast_add(&self.position_embedding.forward(&positions)?)?;
        let mask = causal_mask(seq, device)?;
        let mut hidden_states = vec![xs.clone()];
        for layer in &self.layers {
            xs = layer.forward(&xs, &mask)?;
            hidden_states.push(xs.clone());
        }
        let last_hidden_state = self.final_layer_norm.forward(&xs)?;
        Ok(ClipOutput {
            hidden_states,
            last_hidden_state,
        })
    }
}

/// [seq, seq] additive mask: 0 on and below the diagonal, −∞ above (token i sees tokens ≤ i).
fn causal_mask(seq: usize, device: &Device) -> candle_core::Result<Tensor> {
    let values: Vec<f32> = (0..seq)
        .flat_map(|i| (0..seq).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(values, (seq, seq), device)
}
