//! `seedling generate`: arguments + model defaults → Recipe(s) → image(s).

use super::args::{GenerateArgs, RecipeArgs};
use super::device;
use super::progress::StopFlag;
use super::render::{self, Target};
use super::session::Session;
use anyhow::{bail, Result};
use seedling::grid::seeds;
use seedling::models::ModelInfo;
use seedling::recipe::{ModelRef, ModelSource, Recipe, SCHEMA_VERSION};
use seedling::sampler::SamplerKind;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Settings for models without a preset: A1111's and diffusers' usual values.
const FALLBACK_STEPS: u32 = 25;
const FALLBACK_CFG: f64 = 7.5;
const FALLBACK_SAMPLER: SamplerKind = SamplerKind::EulerAncestral;

pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    let device = device::parse(&args.run.device)?;
    let spec = args.recipe.model_spec()?;
    let target = Target::from_args(&args.run);
    if args.count > 1 && matches!(target, Target::File { .. }) {
        bail!(
            "--count {} makes several images; use --out-dir DIR instead of -o",
            args.count
        );
    }
    target.check()?;
    check_variation(&args.recipe, 0.0)?;
    let info = render::open_model(&spec, args.recipe.vae_spec()?.as_ref())?;
    let base = build_recipe(&args.prompt, args.negative.as_deref(), &args.recipe, &info);
    let mut recipes = seeds::count_recipes(&base, args.count)?;
    render::check_recipe(&info, &base, &device)?;
    if args.recipe.seed.is_none() {
        eprintln!("seed {} (random)", base.seed);
    }
    let session = Session::open(&info, base.dtype, &device)?;
    let stop = StopFlag::install();
    session.render_all(
        &mut recipes,
        args.run.batch_size,
        &stop,
        |recipe, image, progress| {
            let meta = render::image_meta(recipe, &image, &session.device_name, None);
            let path = render::save(&target, &meta, &image.image)?;
            progress.image_done(&format!("saved {} ({})", path.display(), seeds_of(recipe)));
            Ok(())
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `seed N`, and the variation seed when one is in use: what tells images of a run apart.
pub fn seeds_of(recipe: &Recipe) -> String {
    match recipe.variation_seed {
        Some(v) if recipe.variation_strength > 0.0 => {
            format!("seed {}, variation seed {v}", recipe.seed)
        }
        _ => format!("seed {}", recipe.seed),
    }
}

/// Refuses `--variation-seed` where it would change nothing: without `--variation-strength`
/// and with `strength` (the recorded one, for replay; 0 otherwise) at 0, only `--seed`'s noise
/// is used, and the flag used to be ignored without a word.
pub fn check_variation(a: &RecipeArgs, strength: f64) -> Result<()> {
    if let (Some(v), None) = (a.variation_seed, a.variation_strength) {
        if strength == 0.0 {
            bail!(
                "--variation-seed {v} changes nothing without --variation-strength W, how much of \
                 its noise to mix in (0 = none, 1 = all; AUTOMATIC1111's variation strength); add \
                 e.g. --variation-strength 0.1"
            );
        }
    }
    Ok(())
}

/// The recipe the user asked for: their flags, else the model preset's defaults, else the
/// fallbacks above. A missing seed is drawn at random from 0..2^32, so it means the same with
/// every rng (torch's CPU generator keeps only 32 bits of a seed) and fits A1111's seed field.
/// Warns (stderr) about AUTOMATIC1111 prompt syntax, which is taken literally; generate, grid
/// and batch all build their recipes here.
pub fn build_recipe(
    prompt: &str,
    negative: Option<&str>,
    a: &RecipeArgs,
    info: &ModelInfo,
) -> Recipe {
    let recipe = recipe_of(prompt, negative, a, info);
    render::warn_prompt_syntax(&recipe, true, true);
    recipe
}

fn recipe_of(prompt: &str, negative: Option<&str>, a: &RecipeArgs, info: &ModelInfo) -> Recipe {
    let preset = info.preset.as_ref().map(|p| p.defaults);
    let (width, height) = info.default_size();
    Recipe {
        schema: SCHEMA_VERSION,
        // Filled in once the weights are fetched and hashed.
        model: ModelRef {
            source: ModelSource::Local {
                path: Default::default(),
            },
            family: info.family.name().into(),
            preset: None,
            files: BTreeMap::new(),
            vae: None,
        },
        prompt: prompt.into(),
        negative_prompt: negative.unwrap_or_default().into(),
        seed: a.seed.unwrap_or_else(|| u64::from(rand::random::<u32>())),
        rng: a.rng.unwrap_or_default(),
        variation_seed: a.variation_seed,
        variation_strength: a.variation_strength.unwrap_or(0.0),
        width: a.width.unwrap_or(width),
        height: a.height.unwrap_or(height),
        sampler: a
            .sampler
            .or(preset.map(|p| p.sampler))
            .or_else(|| info.scheduler_sampler())
            .unwrap_or(FALLBACK_SAMPLER),
        schedule: a.schedule.unwrap_or_default(),
        steps: a
            .steps
            .or(preset.map(|p| p.steps))
            .unwrap_or(FALLBACK_STEPS),
        cfg: a.cfg.or(preset.map(|p| p.cfg)).unwrap_or(FALLBACK_CFG),
        eta: a.eta.unwrap_or(0.0),
        dtype: a.dtype.unwrap_or_default(),
        truncate_prompt: a.truncate,
    }
}
