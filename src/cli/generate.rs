//! `seedling generate`: arguments + model defaults → Recipe(s) → image(s).

use super::args::{GenerateArgs, RecipeArgs};
use super::render::{self, Target};
use super::session;
use anyhow::{bail, Result};
use seedling::grid::seeds;
use seedling::prompt_networks::take_loras;
use seedling::recipe::Recipe;
use seedling::session::{DeviceSpec, Session};
use std::process::ExitCode;

pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    let device: DeviceSpec = args.run.device.parse()?;
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
    // A1111's `<lora:NAME:W>` tags: taken out of the prompt, applied as --lora NAME:W.
    let (prompt, tags) = take_loras(&args.prompt)?;
    let session = session::open_for(&spec, &args.recipe, &tags, device)?;
    let base = build_recipe(&session, &prompt, args.negative.as_deref(), &args.recipe);
    let mut recipes = seeds::count_recipes(&base, args.count)?;
    session::check(&session, &base)?;
    if args.recipe.patch.seed.is_none() {
        eprintln!("seed {} (random)", base.seed);
    }
    session::render_all(
        &session,
        &mut recipes,
        args.run.batch_size,
        |image, progress| {
            let path = render::save(&target, &image)?;
            let seeds = seeds_of(image.recipe());
            progress.image_done(&format!("saved {} ({seeds})", path.display()));
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
    if let (Some(v), None) = (a.patch.variation_seed, a.patch.variation_strength) {
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

/// The recipe the user asked for: their flags over the model's defaults
/// (`Session::recipe`). Warns (stderr) about AUTOMATIC1111 prompt syntax, which is taken
/// literally; generate, grid and batch all build their recipes here.
pub fn build_recipe(
    session: &Session,
    prompt: &str,
    negative: Option<&str>,
    a: &RecipeArgs,
) -> Recipe {
    let recipe = session.recipe(&a.overrides(Some(prompt), negative));
    render::warn_prompt_syntax(&recipe, true, true);
    recipe
}
