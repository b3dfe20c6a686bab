//! `seedling replay`: the recipe in a PNG, with overrides, regenerated; `--verify` compares.

use super::args::ReplayArgs;
use super::device;
use super::progress::StopFlag;
use super::render::{self, Target};
use super::session::Session;
use anyhow::{bail, Result};
use seedling::metadata;
use seedling::model::ModelSpec;
use seedling::provenance::{sha256_hex, Parent};
use seedling::recipe::{ModelSource, Overrides};
use std::process::ExitCode;

pub fn run(args: ReplayArgs) -> Result<ExitCode> {
    let device = device::parse(&args.run.device)?;
    let (meta, source_pixels) = metadata::read_recipe(&args.image)?;
    let a = &args.recipe;
    let overrides = Overrides {
        prompt: args.prompt.clone(),
        negative_prompt: args.negative.clone(),
        seed: a.seed,
        rng: a.rng,
        variation_seed: a.variation_seed,
        variation_strength: a.variation_strength,
        width: a.width,
        height: a.height,
        sampler: a.sampler,
        schedule: a.schedule,
        steps: a.steps,
        cfg: a.cfg,
        eta: a.eta,
        dtype: a.dtype,
        truncate_prompt: a.truncate.then_some(true),
    };
    let (mut recipe, mut changed) = overrides.apply(&meta.recipe);
    let spec = match &a.model {
        Some(m) => {
            changed.push(format!("model={m}"));
            ModelSpec::parse(m)?
        }
        None => recorded_model(&meta.recipe.model.source)?,
    };
    // --verify alone checks without writing; an explicit -o/--out-dir also saves the image.
    let save = !args.verify || args.run.output.is_some() || args.run.out_dir.is_some();
    let target = Target::from_args(&args.run);
    if save {
        target.check()?;
    }
    let info = render::open_model(&spec)?;
    render::check_recipe(&info, &recipe, &device)?;
    if changed.is_empty() {
        eprintln!("replaying {} unchanged", args.image.display());
    } else {
        eprintln!(
            "replaying {} with {}",
            args.image.display(),
            changed.join(", ")
        );
    }
    let session = Session::open(&info, recipe.dtype, &device)?;
    let stop = StopFlag::install();
    let mut generated = None;
    session.render_all(
        std::slice::from_mut(&mut recipe),
        1,
        &stop,
        |_, image, _| {
            generated = Some(image);
            Ok(())
        },
    )?;
    let generated = generated.expect("render_all renders every recipe");
    if a.model.is_none() && recipe.model.files != meta.recipe.model.files {
        eprintln!(
            "warning: the model's weight files differ from the ones this image was made with; \
             the result will not be identical"
        );
    }
    if save {
        let parent = Parent {
            pixels_sha256: sha256_hex(source_pixels.as_raw()),
            overrides: changed.clone(),
        };
        let meta = render::image_meta(&recipe, &generated, &session.device_name, Some(parent));
        let path = render::save(&target, &meta, &generated.image)?;
        println!("saved {} (seed {})", path.display(), recipe.seed);
    }
    if args.verify {
        let (max, psnr) = render::compare(&generated.image, &source_pixels)?;
        if max == 0 {
            println!("identical");
        } else {
            println!("max pixel difference {max}, PSNR {psnr:.2} dB");
            if changed.is_empty() {
                bail!(
                    "the replay is not identical to {}; exact regeneration needs the same build, device \
                     and dtype (see the README)",
                    args.image.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The model a recipe names, or the fix when it is not here.
fn recorded_model(source: &ModelSource) -> Result<ModelSpec> {
    if let ModelSource::Local { path } = source {
        if !path.is_dir() {
            bail!(
                "this image was made with the model folder {}, which does not exist here; \
                 pass --model with that model's folder or repo",
                path.display()
            );
        }
    }
    Ok(ModelSpec::from_source(source))
}
