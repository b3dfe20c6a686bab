//! The CLIP text encoders with their tokenizers: prompt → what the UNet is conditioned on
//! (cond and uncond), as the diffusers pipelines encode prompts. Tokenizing is `text`'s.

use super::clip::{ClipOutput, ClipTextModel};
use crate::text::{checked, PromptTokenizer, Tokens};
use crate::Result;
use candle_core::{Device, Tensor};

/// What the UNet is conditioned on for one prompt.
#[derive(Debug, Clone)]
pub struct Conditioning {
    /// `[1, tokens, cross_attention_dim]`
    pub context: Tensor,
    /// SDXL's pooled embedding `[1, projection_dim]`; `None` for SD 1.x/2.x.
    pub pooled: Option<Tensor>,
}

impl Conditioning {
    /// The same shapes, all zeros: SDXL's negative conditioning for an empty negative prompt
    /// when the model sets `force_zeros_for_empty_prompt`.
    pub(crate) fn zeros_like(&self) -> Result<Conditioning> {
        Ok(Conditioning {
            context: self.context.zeros_like()?,
            pooled: self.pooled.as_ref().map(Tensor::zeros_like).transpose()?,
        })
    }
}

/// Tokenizer(s) + CLIP text encoder(s): prompt → conditioning.
pub struct TextEncoder {
    pub tokenizer: PromptTokenizer,
    pub model: ClipTextModel,
    /// SDXL's second tokenizer and encoder (OpenCLIP ViT-bigG with `text_projection`).
    pub second: Option<(PromptTokenizer, ClipTextModel)>,
    device: Device,
}

impl TextEncoder {
    pub(crate) fn new(
        tokenizer: PromptTokenizer,
        model: ClipTextModel,
        second: Option<(PromptTokenizer, ClipTextModel)>,
        device: Device,
    ) -> Self {
        Self {
            tokenizer,
            model,
            second,
            device,
        }
    }

    /// The last hidden state after the final layer norm, as diffusers' SD 1.x/2.x pipelines use
    /// (`text_encoder(ids)[0]`, no clip skip).
    pub(crate) fn embed(&self, tokens: &Tokens) -> Result<Tensor> {
        Ok(self.model.forward(&self.ids(tokens)?)?.last_hidden_state)
    }

    fn ids(&self, tokens: &Tokens) -> Result<Tensor> {
        Ok(Tensor::new(tokens.ids.as_slice(), &self.device)?.unsqueeze(0)?)
    }

    /// Conditioning for `prompt` (`which` names it in errors). A prompt over the token limit is
    /// refused unless `truncate`. SD 1.x/2.x: the last hidden state. SDXL (two encoders), as
    /// `StableDiffusionXLPipeline.encode_prompt`: the penultimate hidden state of each encoder
    /// (no final norm), concatenated on the feature axis, and the second encoder's pooled
    /// projection.
    pub fn condition(&self, prompt: &str, which: &str, truncate: bool) -> Result<Conditioning> {
        let tokens = checked(&self.tokenizer, prompt, which, truncate)?;
        let Some((tokenizer2, model2)) = &self.second else {
            return Ok(Conditioning {
                context: self.embed(&tokens)?,
                pooled: None,
            });
        };
        let tokens2 = checked(tokenizer2, prompt, which, truncate)?;
        sdxl_conditioning(
            &self.model,
            model2,
            &self.ids(&tokens)?,
            &self.ids(&tokens2)?,
            &tokens2.ids,
        )
    }
}

/// SDXL's conditioning from both encoders' token ids (`StableDiffusionXLPipeline.encode_prompt`):
/// the penultimate hidden state of each (no final norm), concatenated on the feature axis, and
/// the second encoder's pooled projection at its end-of-text token (`ids2`).
pub(crate) fn sdxl_conditioning(
    model1: &ClipTextModel,
    model2: &ClipTextModel,
    ids1: &Tensor,
    ids2: &Tensor,
    ids2_list: &[u32],
) -> Result<Conditioning> {
    let out1 = model1.forward(ids1)?;
    let out2 = model2.forward(ids2)?;
    let penultimate = |o: &ClipOutput| o.hidden_states[o.hidden_states.len() - 2].clone();
    let context = Tensor::cat(&[penultimate(&out1), penultimate(&out2)], 2)?;
    let pooled = model2.pooled(&out2, ids2_list)?;
    Ok(Conditioning {
        context,
        pooled: Some(pooled),
    })
}
