//! `seedling replay`: the recipe in a PNG (seedling's own, or mapped from another tool's
//! metadata), with overrides, regenerated; `--verify` compares.

use super::args::{RecipeArgs, ReplayArgs};
use super::generate::check_variation;
use super::render::{self, Target};
use super::session;
use anyhow::{bail, Result};
use seedling::metadata::foreign::{describe_model, ForeignFile, ForeignRecipe};
use seedling::metadata::{self, AnyRecipe};
use seedling::models::folder::{Kind, ModelsLibrary};
use seedling::models::{hub, lookup, preset, ModelSpec};
use seedling::prompt_networks::take_loras;
use seedling::provenance::{sha256_hex, Parent};
use seedling::recipe::{ModelSource, Recipe};
use seedling::session::verify::{compare, Comparison, OwnVerify};
use seedling::session::{
    embeddings_in, find_foreign_embedding, find_recorded_embedding, DeviceSpec, EmbeddingSpec,
    Found, LoraSpec,
};
use std::cell::OnceCell;
use std::process::ExitCode;

pub fn run(args: ReplayArgs) -> Result<ExitCode> {
    let device: DeviceSpec = args.run.device.parse()?;
    let a = &args.recipe;
    // The models folders, opened when a model or LoRA is to be found in them (at once when
    // --models-dir names them, so a wrong folder is said first).
    let library = OnceCell::new();
    let library = || -> Result<&ModelsLibrary> {
        if let Some(l) = library.get() {
            return Ok(l);
        }
        let opened = a.library()?;
        Ok(library.get_or_init(|| opened))
    };
    if !a.models_dirs.is_empty() {
        library()?;
    }
    // A foreign image's checkpoint: in the models folders by hash first, then the presets and
    // the Hugging Face cache.
    let lookup = |name: Option<&str>, hash: Option<&str>| match library() {
        Ok(l) => lookup::resolve_with(l, name, hash),
        Err(_) => lookup::resolve(name, hash),
    };
    let (mut source, source_pixels) = metadata::read_any(&args.image, &lookup)?;
    if let AnyRecipe::Foreign(f) = &mut source {
        super::spell::foreign_notes(f);
    }
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
    check_variation(a, base.variation_strength)?;
    // A --prompt override is the user's own text: its A1111 `<lora:…>` tags are taken out and
    // add LoRAs, as on generate. A recorded prompt is encoded as stored, never re-read for tags.
    let (prompt, tags) = match &args.prompt {
        Some(p) => {
            let (text, tags) = take_loras(p)?;
            (Some(text), tags)
        }
        None => (None, Vec::new()),
    };
    let overrides = a.overrides(prompt.as_deref(), args.negative.as_deref());
    let (mut recipe, mut changed) = overrides.apply(base);
    // The fields changed, apart from which weights load (compared by hash once they are).
    let fields_changed = !changed.is_empty();
    render::warn_prompt_syntax(&recipe, args.prompt.is_some(), args.negative.is_some());
    let spec = match (&a.model, foreign) {
        (Some(m), _) => {
            changed.push(format!("model={m}"));
            super::args::parse_model_in(m, &a.models_dirs)?
        }
        (None, None) => recorded_model(&base.model.source, "--model")?,
        (None, Some(f)) => foreign_model(f, &args.image)?,
    };
    let spec = match &a.config {
        Some(c) => {
            changed.push(format!("config={c}"));
            super::args::with_config(spec, Some(c))?
        }
        None => spec,
    };
    // --verify alone checks without writing; an explicit -o/--out-dir also saves the image.
    let save = !args.verify || args.run.output.is_some() || args.run.out_dir.is_some();
    let target = Target::from_args(&args.run);
    if save {
        target.check()?;
    }
    // The recipe's VAE replacement (schema 4), or another tool's, unless --vae names another.
    let foreign_vae_file = foreign.and_then(|f| f.vae.as_ref());
    let vae = match (&a.vae, &base.model.vae, foreign_vae_file) {
        (Some(v), _, _) => {
            changed.push(format!("vae={v}"));
            Some(super::args::parse_vae_in(v, &a.models_dirs)?)
        }
        (None, Some(recorded), _) => Some(recorded_model(recorded, "--vae")?),
        (None, None, Some(file)) => Some(foreign_vae(file, library()?)?),
        (None, None, None) => None,
    };
    // --lora replaces the recipe's LoRAs; else the recorded ones (or another tool's), found by
    // hash (at their recorded path, else in the models folders) before any work.
    let mut loras = if a.loras.is_empty() {
        match foreign {
            None => (base.model.loras.iter())
                .map(|r| found(LoraSpec::recorded(r, library()?)?))
                .collect::<Result<Vec<_>>>()?,
            Some(f) => (f.loras.iter())
                .map(|l| found(LoraSpec::foreign(l, library()?)?))
                .collect::<Result<Vec<_>>>()?,
        }
    } else {
        changed.push(format!("lora={}", a.loras.join(",")));
        a.lora_specs(&[])?
    };
    for tag in &tags {
        let spec = LoraSpec::from_tag(tag);
        loras.push(match spec.path.is_file() {
            true => spec,
            false => spec.find_in(library()?)?,
        });
    }
    let new_prompt = args.prompt.is_some() || args.negative.is_some();
    let embeddings = embeddings(a, base, foreign, new_prompt, &library, &mut changed)?;
    let session = session::open(&spec, vae.as_ref(), device, &loras)?.with_embeddings(embeddings);
    session::check(&session, &recipe)?;
    if changed.is_empty() {
        eprintln!("replaying {} unchanged", args.image.display());
    } else {
        eprintln!(
            "replaying {} with {}",
            args.image.display(),
            changed.join(", ")
        );
    }
    let model_ref = session::load(&session, recipe.dtype)?;
    // Named before the work, by hash: whatever --model or --vae say, only different weights
    // make a different image.
    let weights_differ = match foreign {
        None => base.model.weight_differences(&model_ref),
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
    let mut generated = None;
    session::render_all(
        &session,
        std::slice::from_mut(&mut recipe),
        1,
        |image, _| {
            generated = Some(image);
            Ok(())
        },
    )?;
    let mut generated = generated.expect("render_all renders every recipe");
    if save {
        let parent = Parent {
            pixels_sha256: sha256_hex(source_pixels.as_raw()),
            overrides: changed.clone(),
            made_by: foreign.map(|f| f.tool.describe().to_string()),
            unmapped: foreign
                .map(|f| f.unmapped.iter().map(|u| u.to_string()).collect())
                .unwrap_or_default(),
        };
        generated.set_parent(parent);
        let path = render::save(&target, &generated)?;
        println!("saved {} (seed {})", path.display(), recipe.seed);
    }
    if args.verify {
        let comparison = compare(&generated.image, &source_pixels);
        match foreign {
            None => {
                println!("{comparison}");
                // Other weights count as a change only where --model or --vae asked for them.
                let asked_for_weights = a.model.is_some() || a.vae.is_some();
                let own = OwnVerify {
                    image: &args.image,
                    changed: fields_changed || (asked_for_weights && !weights_differ.is_empty()),
                    weights_differ: &weights_differ,
                    edited,
                };
                own.verdict(&comparison, &generated.image)?
            }
            Some(f) => print_foreign(f, &comparison),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The embeddings a replay's prompts may name: `--embedding` files first (one of a recorded
/// name replaces it), then the recipe's own, found by hash (or another tool's, by the hash its
/// metadata gives), then, for another tool's prompt or a prompt given now, the models folders'
/// by name as for a new image. A recipe's own prompts name only what it records, so a file
/// added since cannot change its image.
fn embeddings<'l>(
    a: &RecipeArgs,
    base: &Recipe,
    foreign: Option<&ForeignRecipe>,
    new_prompt: bool,
    library: &dyn Fn() -> Result<&'l ModelsLibrary>,
    changed: &mut Vec<String>,
) -> Result<Vec<EmbeddingSpec>> {
    let mut specs = a.embedding_specs()?;
    if !specs.is_empty() {
        let files: Vec<String> = a
            .embeddings
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        changed.push(format!("embedding={}", files.join(",")));
    }
    match foreign {
        None => {
            for r in &base.model.embeddings {
                specs.push(found(find_recorded_embedding(r, library()?)?)?);
            }
        }
        Some(f) => {
            for e in &f.embeddings {
                specs.push(found(find_foreign_embedding(e, library()?)?)?);
            }
        }
    }
    if foreign.is_some() || new_prompt {
        specs.extend(embeddings_in(library()?));
    }
    Ok(specs)
}

/// A file found for an image, after saying how when it was not at its recorded path (names
/// may come from another tool's file: printed without terminal controls).
fn found<T>((spec, how): (T, Found)) -> Result<T> {
    match how {
        Found::AtRecordedPath => {}
        Found::ByHash(note) => eprintln!("note: {}", metadata::printable(&note)),
        Found::ByName(warning) => eprintln!("warning: {}", metadata::printable(&warning)),
    }
    Ok(spec)
}

/// Another tool's pixels are not expected to match: the difference is reported, never a failure.
fn print_foreign(f: &ForeignRecipe, comparison: &Comparison) {
    let tool = f.tool.name();
    match comparison {
        Comparison::Identical => println!("identical (made by {tool})"),
        other => {
            println!("{other} (made by {tool}: pixels from another tool are not expected to match)")
        }
    }
}

/// The model a foreign image names, when seedling found it; else the fix.
fn foreign_model(f: &ForeignRecipe, image: &std::path::Path) -> Result<ModelSpec> {
    let Some(m) = &f.model.resolved else {
        let named = model_named(f);
        if let Some(guess) = &f.model.suggested {
            // A checkpoint of the models folders with the name the image gives: what A1111
            // itself loads for a pasted infotext's "Model" (modules/sd_models.py
            // `get_closet_checkpoint_match` matches by name), and ComfyUI's `ckpt_name` is
            // nothing but a name. Used, with a warning that its weights were not checked.
            if let ModelSource::File { path, .. } = &guess.source {
                eprintln!(
                    "warning: the image names the model {named}, which no file in the models \
                     folders matches by hash; using {}, found by name only: its weights may \
                     differ, and the image with them",
                    path.display()
                );
                return Ok(new_file(path));
            }
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
    // A checkpoint of the models folders: its reference config as its weights say, as for a
    // new image (the foreign file records no seedling variant).
    if let ModelSource::File { path, .. } = &m.source {
        if path.is_file() {
            return Ok(new_file(path));
        }
    }
    recorded_model(&m.source, "--model")
}

/// A single-file checkpoint opened as for a new image.
fn new_file(path: &std::path::Path) -> ModelSpec {
    ModelSpec::File {
        path: path.to_path_buf(),
        config: None,
        reference: None,
    }
}

/// The VAE another tool's image names (A1111's `VAE` and `VAE hash`, the file's AutoV2): the
/// file of the models folders' VAE folders with that hash; else the one with that name, with a
/// warning; else the fix, before any work.
fn foreign_vae(file: &ForeignFile, library: &ModelsLibrary) -> Result<ModelSpec> {
    let as_file = |path: &std::path::Path| ModelSpec::File {
        path: path.to_path_buf(),
        config: None,
        reference: None,
    };
    // Names and hashes come from the file: printed without terminal controls.
    let named = describe_model(file.name.as_deref(), file.hash.as_deref());
    let named = metadata::printable(&named);
    if let Some(h) = &file.hash {
        if let Some(f) = library.by_hash(Kind::Vae, h)? {
            eprintln!("note: the image's VAE {named} is {}", f.path.display());
            return Ok(as_file(&f.path));
        }
    }
    if let Some(name) = &file.name {
        if let [one] = library.by_name(Kind::Vae, name).as_slice() {
            eprintln!(
                "warning: the image's VAE {named}: no file in the models folders has its hash; \
                 using {}, found by name only: its weights may differ, and the image with them",
                one.path.display()
            );
            return Ok(as_file(&one.path));
        }
    }
    bail!(
        "the image was made with the VAE {named}, which is not in the models folders' VAE \
         folders; find the file by that name or hash and give it with --vae (or the models \
         folder that holds it with --models-dir)"
    )
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
    if let ModelSource::File { path, .. } = source {
        if !path.is_file() {
            bail!(
                "this image was made with the checkpoint file {}, which does not exist here; \
                 pass {flag} with that file",
                path.display()
            );
        }
    }
    Ok(ModelSpec::from_source(source))
}
