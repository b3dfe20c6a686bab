//! The CLI's side of a `seedling::session::Session`: opening it with its notes printed, and
//! rendering with the progress bar and Ctrl-C.

use super::args::RecipeArgs;
use super::progress::{ctrl_c_stop, RunProgress};
use anyhow::{bail, Result};
use seedling::models::ModelSpec;
use seedling::prompt_networks::LoraTag;
use seedling::recipe::{ModelDType, ModelRef, Recipe};
use seedling::session::{
    embeddings_in, DeviceSpec, Event, LoraSpec, RenderOptions, Rendered, Session,
};

/// Opens a model (configs and tokenizer only) on `device`, printing what the user should know.
pub fn open(
    spec: &ModelSpec,
    vae: Option<&ModelSpec>,
    device: DeviceSpec,
    loras: &[LoraSpec],
) -> Result<Session> {
    let session = Session::open_with_loras(spec, vae, device, loras)?;
    for note in session.notes() {
        eprintln!("note: {note}");
    }
    Ok(session)
}

/// Opens the model with the `--vae` and `--lora`s of a command's recipe flags and the LoRAs of
/// its prompt's tags, found in `--models-dir`'s folders when named; a word of a prompt naming
/// an `--embedding` or an embedding of those folders stands for it.
pub fn open_for(
    spec: &ModelSpec,
    recipe: &RecipeArgs,
    tags: &[LoraTag],
    device: DeviceSpec,
) -> Result<Session> {
    // The models folders, opened once: LoRA names and the prompt's embedding words are found
    // there.
    let library = recipe.library()?;
    let loras = recipe.lora_specs_in(tags, &library)?;
    let session = open(spec, recipe.vae_spec()?.as_ref(), device, &loras)?;
    // --embedding files first: of two with one name, the one given by hand is meant.
    let mut embeddings = recipe.embedding_specs()?;
    embeddings.extend(embeddings_in(&library));
    Ok(session.with_embeddings(embeddings))
}

/// Refuses a recipe the session cannot render (before any weights load); prints its warnings.
pub fn check(session: &Session, recipe: &Recipe) -> Result<()> {
    for warning in session.check(recipe)? {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// Fetches, hashes and loads the weights for `dtype`, saying so.
pub fn load(session: &Session, dtype: ModelDType) -> Result<ModelRef> {
    if !session.is_loaded(dtype) {
        eprintln!("loading {} ({dtype})", session.describe_model());
    }
    Ok(session.load(dtype)?)
}

/// Renders every recipe in batches of at most `batch_size`, with the progress bar, and calls
/// `done` with each image in order. Ctrl-C stops after the current step with an error.
pub fn render_all(
    session: &Session,
    recipes: &mut [Recipe],
    batch_size: usize,
    mut done: impl FnMut(Rendered, &mut RunProgress) -> Result<()>,
) -> Result<()> {
    // The front ends render one dtype per run; another would load (silently) when reached.
    if let Some(first) = recipes.first() {
        load(session, first.dtype)?;
    }
    let options = RenderOptions {
        batch_size,
        stop: ctrl_c_stop(),
    };
    let total_steps = recipes.iter().map(|r| u64::from(r.steps)).sum();
    let mut progress = RunProgress::new(recipes.len(), total_steps);
    let result = session.render(recipes, &options, |event| match event {
        Event::Progress(p, tally) => {
            progress.update(p, tally);
            Ok(())
        }
        Event::Image(image, tally) => {
            progress.set(tally);
            done(*image, &mut progress)
        }
        // Events this CLI does not show.
        _ => Ok(()),
    });
    progress.finish();
    match result {
        Err(e) if matches!(e.downcast_ref(), Some(seedling::Error::Interrupted)) => bail!(
            "interrupted (Ctrl-C); the images saved so far are complete, nothing partial was written"
        ),
        other => other,
    }
}
