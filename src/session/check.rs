//! Checking a recipe completely against an opened model before any weights are fetched: sizes,
//! steps and ranges, the sampler's own limits, the device's dtypes, and the prompts' length.

use crate::models::embedding::Embedding;
use crate::models::ModelInfo;
use crate::recipe::Recipe;
use crate::text::{too_long_error, Word};
use crate::Result;
use candle_core::Device;
use std::sync::Arc;

/// Refuses a recipe this model cannot render on `device`; returns the warnings to show (a
/// prompt over the token limit under `truncate_prompt`, with what is dropped).
/// `embeddings` are those the recipe's prompts name: their vectors count toward the limit.
pub(crate) fn check(
    info: &ModelInfo,
    recipe: &Recipe,
    device: &Device,
    embeddings: &[Arc<Embedding>],
) -> Result<Vec<String>> {
    recipe.validate(info.latent_factor(), info.num_train_timesteps())?;
    // The sampler's own limits (karras with a sampler that has no sigmas, LCM's step range,
    // scheduler settings not supported yet) from the scheduler config alone.
    crate::sampler::build(
        recipe.sampler,
        recipe.schedule,
        &info.scheduler,
        recipe.steps as usize,
        recipe.eta,
    )?;
    crate::pipeline::check_device_dtype(device, recipe.dtype)?;
    let tokenizer = info.tokenizer()?;
    let words: Vec<Word<'_>> = embeddings.iter().map(|e| e.word()).collect();
    let guided = recipe.cfg > 1.0;
    let mut warnings = Vec::new();
    for (which, text, used) in [
        ("prompt", &recipe.prompt, true),
        ("negative prompt", &recipe.negative_prompt, guided),
    ] {
        let tokens = tokenizer.encode_with(text, &words)?;
        if tokens.dropped == 0 || !used {
            continue;
        }
        if !recipe.truncate_prompt {
            return Err(too_long_error(which, &tokens, tokenizer.max_len()));
        }
        warnings.push(format!(
            "the {which} is {} tokens too long; dropped: \"{}\"",
            tokens.dropped, tokens.dropped_text
        ));
    }
    Ok(warnings)
}
