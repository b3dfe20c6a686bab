//! `seedling replay`: the recipe in a PNG (seedling's own, or mapped from another tool's
//! metadata), with overrides, regenerated; `--verify` compares.

use super::args::ReplayArgs;
use super::device;
use super::generate::check_variation;
use super::progress::StopFlag;
use super::render::{self, Target};
use super::session::Session;
use anyhow::{bail, Result};
use image::RgbImage;
use seedling::metadata::foreign::{describe_model, ForeignRecipe};
use seedling::metadata::{self, AnyRecipe};
use seedling::models::{hub, preset, ModelSpec};
use seedling::provenance::{sha256_hex, Parent};
use seedling::recipe::{ModelSource, Overrides};
use std::path::Path;
use std::process::ExitCode;

pub fn run(args: ReplayArgs) -> Result<ExitCode> {
    let device = device::parse(&args.run.device)?;
    let (source, source_pixels) = metadata::read_any(&args.image)?;
    let (base, foreign) = match &source {
        AnyRecipe::Seedling(meta) => (&meta.recipe, None),
        AnyRecipe::Foreign(f) => (&f.recipe, Some(f)),
    };
    // What the other tool's metadata could not give, before any work starts.
    if let Some(f) = foreign {
        eprintln!(
            "{} was made by {}; {} field(s) could not be mapped:",
            args.image.display(),
            f.tool.describe(),
            f.unmapped.len()
        );
        // Their names and values come from the file: printed without terminal controls.
        for u in &f.unmapped {
            eprintln!("warning: {}", metadata::printable(&u.to_string()));
        }
    }
    // An own image whose pixels no longer hash to what its provenance records was edited
    // after it was written: a replay makes the original, which can match only that record.
    let edited = match &source {
        AnyRecipe::Seedling(meta) if !meta.provenance.pixels_match(&source_pixels) => {
            eprintln!(
                "note: {} was edited after seedling wrote it: its pixels no longer match the \
                 pixels_sha256 its provenance records; a replay makes the image as written",
                args.image.display()
            );
            Some(meta.provenance.pixels_sha256.as_str())
        }
        _ => None,
    };
    let a = &args.recipe;
    check_variation(a, base.variation_strength)?;
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
    let (mut recipe, mut changed) = overrides.apply(base);
    // The fields changed, apart from which weights load (compared by hash once they are).
    let fields_changed = !changed.is_empty();
    render::warn_prompt_syntax(&recipe, args.prompt.is_some(), args.negative.is_some());
    let spec = match (&a.model, foreign) {
        (Some(m), _) => {
            changed.push(format!("model={m}"));
            ModelSpec::parse(m)?
        }
        (None, None) => recorded_model(&base.model.source, "--model")?,
        (None, Some(f)) => foreign_model(f, &args.image)?,
    };
    // --verify alone checks without writing; an explicit -o/--out-dir also saves the image.
    let save = !args.verify || args.run.output.is_some() || args.run.out_dir.is_some();
    let target = Target::from_args(&args.run);
    if save {
        target.check()?;
    }
    // The recipe's VAE replacement (schema 4), unless --vae names another one.
    let vae = match (&a.vae, &base.model.vae) {
        (Some(v), _) => {
            changed.push(format!("vae={v}"));
            Some(ModelSpec::parse(v)?)
        }
        (None, Some(recorded)) => Some(recorded_model(recorded, "--vae")?),
        (None, None) => None,
    };
    let info = render::open_model(&spec, vae.as_ref())?;
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
    // Named before the work, by hash: whatever --model or --vae say, only different weights
    // make a different image.
    let weights_differ = match foreign {
        None => base.model.weight_differences(session.model_ref()),
        Some(_) => Vec::new(),
    };
    if !weights_differ.is_empty() {
        eprintln!(
            "warning: the weights differ from the ones {} was made with: {}; the replay will not \
             be identical",
            args.image.display(),
            weights_differ.join(", ")
        );
    }
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
    if save {
        let parent = Parent {
            pixels_sha256: sha256_hex(source_pixels.as_raw()),
            overrides: changed.clone(),
            made_by: foreign.map(|f| f.tool.describe().to_string()),
            unmapped: foreign
                .map(|f| f.unmapped.iter().map(|u| u.to_string()).collect())
                .unwrap_or_default(),
        };
        let meta = render::image_meta(&recipe, &generated, &session.device_name, Some(parent));
        let path = render::save(&target, &meta, &generated.image)?;
        println!("saved {} (seed {})", path.display(), recipe.seed);
    }
    if args.verify {
        match foreign {
            None => {
                // Other weights count as a change only where --model or --vae asked for them.
                let asked_for_weights = a.model.is_some() || a.vae.is_some();
                let own = OwnVerify {
                    image: &args.image,
                    changed: fields_changed || (asked_for_weights && !weights_differ.is_empty()),
                    weights_differ: &weights_differ,
                    edited,
                };
                own.check(&generated.image, &source_pixels)?
            }
            Some(f) => verify_foreign(f, &generated.image, &source_pixels),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `--verify` of seedling's own image weighs.
struct OwnVerify<'a> {
    image: &'a Path,
    /// The recipe was changed on the command line (fields, or weights asked for): the
    /// difference is reported, never a failure.
    changed: bool,
    /// Weight files whose hash differs from the recorded ones (empty: the same weights).
    weights_differ: &'a [String],
    /// The recorded pixels_sha256, when the file's pixels no longer match it.
    edited: Option<&'a str>,
}

impl OwnVerify<'_> {
    /// Reports the difference from the file; an unchanged replay must be identical, and when it
    /// is not, the failure names the cause: an edited file, other weights, or else the build,
    /// device or dtype.
    fn check(&self, generated: &RgbImage, source: &RgbImage) -> Result<()> {
        let image = self.image.display();
        match render::compare(generated, source) {
            Ok((0, _)) => {
                println!("identical");
                return Ok(());
            }
            Ok((max, psnr)) => println!("max pixel difference {max}, PSNR {psnr:.2} dB"),
            // A changed size, say: nothing to compare pixel by pixel.
            Err(e) => println!("not compared: {e:#}"),
        }
        if self.changed {
            return Ok(());
        }
        if let Some(recorded) = self.edited {
            let reproduces = sha256_hex(generated.as_raw()) == recorded;
            if reproduces {
                bail!(
                    "{image} was edited after it was written: its pixels no longer match the \
                     pixels_sha256 it records, and the replay does (the recipe reproduces \
                     exactly; compare with the original file)"
                );
            }
            bail!(
                "{image} was edited after it was written (its pixels no longer match the \
                 pixels_sha256 it records), and the replay does not match that record either; \
                 exact regeneration needs the same build, device and dtype (see the README)"
            );
        }
        if !self.weights_differ.is_empty() {
            bail!(
                "the replay is not identical to {image}: the weights differ from the ones it was \
                 made with: {}; replay with those weights (seedling inspect lists their hashes)",
                self.weights_differ.join(", ")
            );
        }
        bail!(
            "the replay is not identical to {image}; exact regeneration needs the same build, \
             device and dtype (see the README)"
        );
    }
}

/// Another tool's pixels are not expected to match: the difference is reported, never a failure.
fn verify_foreign(f: &ForeignRecipe, generated: &RgbImage, source: &RgbImage) {
    match render::compare(generated, source) {
        Ok((0, _)) => println!("identical (made by {})", f.tool.name()),
        Ok((max, psnr)) => println!(
            "max pixel difference {max}, PSNR {psnr:.2} dB (made by {}: pixels from another tool \
             are not expected to match)",
            f.tool.name()
        ),
        Err(e) => println!(
            "not compared: {e} (made by {}: pixels from another tool are not expected to match)",
            f.tool.name()
        ),
    }
}

/// The model a foreign image names, when seedling found it; else the fix.
fn foreign_model(f: &ForeignRecipe, image: &std::path::Path) -> Result<ModelSpec> {
    let Some(m) = &f.model.resolved else {
        let named = model_named(f);
        if let Some(guess) = &f.model.suggested {
            bail!(
                "{} was made by {} with the model {named}, which seedling cannot identify by its \
                 weights; its name matches {} ({}), but a name is only a guess: pass --model {} \
                 if it is that model, or --model with the model it was made with",
                image.display(),
                f.tool.name(),
                guess.model_arg(),
                guess.how,
                guess.model_arg()
            );
        }
        bail!(
            "{} was made by {} with the model {named}, which seedling cannot find among its \
             presets or in the Hugging Face cache at {}; pass --model with that model (a preset \
             such as sd15, a Hugging Face repo, or a local diffusers folder)",
            image.display(),
            f.tool.name(),
            hub::cache_dir().display()
        );
    };
    let named = model_named(f);
    eprintln!("note: the image names the model {named}; using {}", m.how);
    if let Some(p) = m.preset.as_deref().and_then(preset::find) {
        return Ok(ModelSpec::Preset(p));
    }
    recorded_model(&m.source, "--model")
}

/// The model as the foreign file names it (name and hash come from the file: no terminal
/// controls).
fn model_named(f: &ForeignRecipe) -> String {
    let named = describe_model(f.model.name.as_deref(), f.model.hash.as_deref());
    metadata::printable(&named).into_owned()
}

/// The model a recipe names, or the fix when it is not here.
fn recorded_model(source: &ModelSource, flag: &str) -> Result<ModelSpec> {
    if let ModelSource::Local { path } = source {
        if !path.is_dir() {
            let what = flag.trim_start_matches('-');
            bail!(
                "this image was made with the {what} folder {}, which does not exist here; \
                 pass {flag} with that {what}'s folder or repo",
                path.display()
            );
        }
    }
    Ok(ModelSpec::from_source(source))
}
