//! A recipe from a prompt and a patch of fields, with the model's defaults for the rest: the
//! patch, else the model preset's settings, else the model's own scheduler, else the fallbacks
//! below.

use crate::models::ModelInfo;
use crate::recipe::{ModelRef, Overrides, Recipe};
use crate::sampler::SamplerKind;

/// Settings for models without a preset: A1111's and diffusers' usual values.
const FALLBACK_STEPS: u32 = 25;
const FALLBACK_CFG: f64 = 7.5;
const FALLBACK_SAMPLER: SamplerKind = SamplerKind::EulerAncestral;

/// The recipe `patch` asks for on this model. A missing seed is drawn at random from 0..2^32,
/// so it means the same with every rng (torch's CPU generator keeps only 32 bits of a seed) and
/// fits A1111's seed field. The model reference is filled in once the weights are hashed.
pub(crate) fn recipe(info: &ModelInfo, patch: &Overrides) -> Recipe {
    let (recipe, _) = patch.apply(&model_defaults(info));
    recipe
}

fn model_defaults(info: &ModelInfo) -> Recipe {
    let preset = info.preset.as_ref().map(|p| p.defaults);
    let (width, height) = info.default_size();
    let neutral = Recipe::default();
    Recipe {
        model: ModelRef {
            family: info.family.name().into(),
            ..neutral.model
        },
        seed: u64::from(rand::random::<u32>()),
        width,
        height,
        sampler: preset
            .map(|p| p.sampler)
            .or_else(|| info.scheduler_sampler())
            .unwrap_or(FALLBACK_SAMPLER),
        steps: preset.map_or(FALLBACK_STEPS, |p| p.steps),
        cfg: preset.map_or(FALLBACK_CFG, |p| p.cfg),
        // Everything else (schema, the prompts, rng, no variation, the default schedule, eta 0,
        // f32, no truncation) as the neutral recipe has it.
        ..neutral
    }
}
