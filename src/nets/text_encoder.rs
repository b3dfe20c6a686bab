//! The CLIP text encoders with their tokenizers: prompt → what the UNet is conditioned on
//! (cond and uncond), as the diffusers pipelines encode prompts. Tokenizing is `text`'s.

use super::clip::{ClipOutput, ClipTextModel};
use crate::models::embedding::Embedding;
use crate::text::{checked, PromptTokenizer, Tokens, Word};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use std::sync::Arc;

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
    fn embed(&self, tokens: &Tokens, inserted: &[(usize, Tensor)]) -> Result<Tensor> {
        Ok(self
            .model
            .forward_embedded(&self.ids(tokens)?, inserted)?
            .last_hidden_state)
    }

    fn ids(&self, tokens: &Tokens) -> Result<Tensor> {
        Ok(Tensor::new(tokens.ids.as_slice(), &self.device)?.unsqueeze(0)?)
    }

    /// Conditioning for `prompt` (`which` names it in errors), where a word naming one of
    /// `embeddings` stands for its vectors. A prompt over the token limit is refused unless
    /// `truncate`. SD 1.x/2.x: the last hidden state. SDXL (two encoders), as
    /// `StableDiffusionXLPipeline.encode_prompt`: the penultimate hidden state of each encoder
    /// (no final norm), concatenated on the feature axis, and the second encoder's pooled
    /// projection.
    pub fn condition(
        &self,
        prompt: &str,
        which: &str,
        truncate: bool,
        embeddings: &[Arc<Embedding>],
    ) -> Result<Conditioning> {
        let words: Vec<Word<'_>> = embeddings.iter().map(|e| e.word()).collect();
        let tokens = checked(&self.tokenizer, prompt, &words, which, truncate)?;
        let inserted = self.inserted(&tokens, embeddings, |e| Some(&e.first))?;
        let Some((tokenizer2, model2)) = &self.second else {
            return Ok(Conditioning {
                context: self.embed(&tokens, &inserted)?,
                pooled: None,
            });
        };
        let tokens2 = checked(tokenizer2, prompt, &words, which, truncate)?;
        let inserted2 = self.inserted(&tokens2, embeddings, |e| e.second.as_ref())?;
        sdxl_conditioning(
            [&self.model, model2],
            [&self.ids(&tokens)?, &self.ids(&tokens2)?],
            [&inserted, &inserted2],
            &tokens2.ids,
        )
    }

    /// The vectors `tokens` places, on this encoder's device: `vectors` picks an embedding's
    /// for the encoder (an SDXL embedding has one set per encoder).
    fn inserted(
        &self,
        tokens: &Tokens,
        embeddings: &[Arc<Embedding>],
        vectors: impl Fn(&Embedding) -> Option<&Tensor>,
    ) -> Result<Vec<(usize, Tensor)>> {
        tokens
            .embedded
            .iter()
            .map(|e| {
                let embedding = &embeddings[e.word];
                let rows = vectors(embedding).ok_or_else(|| {
                    Error::Model(format!(
                        "the embedding {} has no vectors for this model's second text encoder \
                         (an SDXL embedding has clip_l and clip_g)",
                        embedding.path.display()
                    ))
                })?;
                Ok((e.position, rows.get(e.row)?.to_device(&self.device)?))
            })
            .collect()
    }
}

/// SDXL's conditioning from both encoders' token ids (`StableDiffusionXLPipeline.encode_prompt`):
/// the penultimate hidden state of each (no final norm), concatenated on the feature axis, and
/// the second encoder's pooled projection at its end-of-text token (`ids2`).
pub(crate) fn sdxl_conditioning(
    [model1, model2]: [&ClipTextModel; 2],
    [ids1, ids2]: [&Tensor; 2],
    [inserted1, inserted2]: [&[(usize, Tensor)]; 2],
    ids2_list: &[u32],
) -> Result<Conditioning> {
    let out1 = model1.forward_embedded(ids1, inserted1)?;
    let out2 = model2.forward_embedded(ids2, inserted2)?;
    let penultimate = |o: &ClipOutput| o.hidden_states[o.hidden_states.len() - 2].clone();
    let context = Tensor::cat(&[penultimate(&out1), penultimate(&out2)], 2)?;
    let pooled = model2.pooled(&out2, ids2_list)?;
    Ok(Conditioning {
        context,
        pooled: Some(pooled),
    })
}
