//! What generate and replay share: opening the model, checking a recipe against it before any
//! weights load, rendering, and saving the PNG with its metadata.

use super::args::RunArgs;
use anyhow::{bail, Result};
use candle_core::Device;
use image::RgbImage;
use seedling::metadata::{self, ImageMeta};
use seedling::models::{ModelInfo, ModelSpec};
use seedling::pipeline::Generated;
use seedling::prompt_syntax;
use seedling::provenance::{self, Parent, Provenance};
use seedling::recipe::Recipe;
use seedling::text::too_long_error;
use std::path::{Path, PathBuf};

/// Default folder for generated images.
pub const DEFAULT_OUT_DIR: &str = "outputs";

/// Opens a model (configs and tokenizer only), with the VAE of `vae` instead of its own when
/// given, and prints what the user should know.
pub fn open_model(spec: &ModelSpec, vae: Option<&ModelSpec>) -> Result<ModelInfo> {
    let mut info = ModelInfo::open(spec)?;
    if let Some(vae) = vae {
        info.use_vae(vae)?;
        if let Some(o) = &info.vae_override {
            for note in o.location.notes() {
                eprintln!("note: {note}");
            }
        }
    }
    for note in info.location.notes() {
        eprintln!("note: {note}");
    }
    Ok(info)
}

/// Refuses a recipe this model cannot render, before any weights are fetched: sizes, steps,
/// ranges, and prompts over the token limit (allowed with a warning under --truncate).
pub fn check_recipe(info: &ModelInfo, recipe: &Recipe, device: &Device) -> Result<()> {
    recipe.validate(info.latent_factor(), info.num_train_timesteps())?;
    // The sampler's own limits (karras with a sampler that has no sigmas, LCM's step range,
    // scheduler settings not supported yet) from the scheduler config alone.
    seedling::sampler::build(
        recipe.sampler,
        recipe.schedule,
        &info.scheduler,
        recipe.steps as usize,
        recipe.eta,
    )?;
    seedling::pipeline::check_device_dtype(device, recipe.dtype)?;
    let tokenizer = info.tokenizer()?;
    let guided = recipe.cfg > 1.0;
    for (which, text, used) in [
        ("prompt", &recipe.prompt, true),
        ("negative prompt", &recipe.negative_prompt, guided),
    ] {
        let tokens = tokenizer.encode(text)?;
        if tokens.dropped == 0 || !used {
            continue;
        }
        if !recipe.truncate_prompt {
            return Err(too_long_error(which, &tokens, tokenizer.max_len()).into());
        }
        eprintln!(
            "warning: the {which} is {} tokens too long; dropped: \"{}\"",
            tokens.dropped, tokens.dropped_text
        );
    }
    Ok(())
}

/// Warns, one line each, when the prompt (if `prompt`) or the negative prompt (if `negative`,
/// and only when guidance uses it) has AUTOMATIC1111 syntax, which seedling takes literally.
pub fn warn_prompt_syntax(recipe: &Recipe, prompt: bool, negative: bool) {
    let texts = [
        ("prompt", &recipe.prompt, prompt),
        (
            "negative prompt",
            &recipe.negative_prompt,
            negative && recipe.cfg > 1.0,
        ),
    ];
    for (which, text, asked) in texts {
        if let Some(w) = asked.then(|| prompt_syntax::warning(which, text)).flatten() {
            eprintln!("warning: {w}");
        }
    }
}

/// Where the image goes.
pub enum Target {
    File { path: PathBuf, overwrite: bool },
    Dir(PathBuf),
}

impl Target {
    pub fn from_args(run: &RunArgs) -> Target {
        match &run.output {
            Some(path) => Target::File {
                path: path.clone(),
                overwrite: run.overwrite,
            },
            None => Target::Dir(
                run.out_dir
                    .clone()
                    .unwrap_or_else(|| DEFAULT_OUT_DIR.into()),
            ),
        }
    }

    /// Refuses a path the final write would refuse (taken, a folder, not `.png`, in a missing
    /// or unwritable folder) now, before minutes of work; the write checks again and never
    /// clobbers. Also clears the folder of temporary files killed runs left there.
    pub fn check(&self) -> Result<()> {
        let dir = match self {
            Target::File { path, overwrite } => {
                seedling::output::check_new(path, *overwrite)?;
                seedling::output::parent_dir(path)
            }
            Target::Dir(dir) => {
                seedling::output::check_auto_dir(dir)?;
                dir.clone()
            }
        };
        prepare_folder(&dir)
    }
}

/// Checks that images can be written in `dir` (or that it can be made), and removes temporary
/// files that killed runs left there (`output::sweep_stale_temps`), saying so.
pub fn prepare_folder(dir: &Path) -> Result<()> {
    seedling::output::check_writable(dir)?;
    let removed = seedling::output::sweep_stale_temps(dir);
    if !removed.is_empty() {
        eprintln!(
            "note: removed {} temporary file(s) that interrupted runs left in {}",
            removed.len(),
            dir.display()
        );
    }
    Ok(())
}

/// The recipe and provenance an image carries.
pub fn image_meta(
    recipe: &Recipe,
    generated: &Generated,
    device: &str,
    parent: Option<Parent>,
) -> ImageMeta {
    ImageMeta {
        recipe: recipe.clone(),
        provenance: Provenance {
            tool: provenance::TOOL.into(),
            candle: provenance::CANDLE_VERSION.into(),
            device: device.to_string(),
            noise_sha256: generated.noise_sha256.clone(),
            pixels_sha256: provenance::sha256_hex(generated.image.as_raw()),
            parent,
        },
    }
}

/// Writes the PNG with its recipe and provenance; returns where it went.
pub fn save(target: &Target, meta: &ImageMeta, image: &RgbImage) -> Result<PathBuf> {
    let bytes = metadata::encode_png(image, meta)?;
    let path = match target {
        Target::File { path, overwrite } => {
            seedling::output::write_new(path, &bytes, *overwrite)?;
            path.clone()
        }
        Target::Dir(dir) => {
            seedling::output::write_auto(dir, meta.recipe.seed, &meta.recipe.prompt, &bytes)?
        }
    };
    Ok(path)
}

/// Largest per-channel difference and PSNR (dB; infinite when identical) of two images.
pub fn compare(a: &RgbImage, b: &RgbImage) -> Result<(u8, f64)> {
    if a.dimensions() != b.dimensions() {
        bail!(
            "the images differ in size: {}x{} vs {}x{}",
            a.width(),
            a.height(),
            b.width(),
            b.height()
        );
    }
    let mut max = 0u8;
    let mut sq = 0f64;
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sq += f64::from(d) * f64::from(d);
    }
    let mse = sq / a.as_raw().len() as f64;
    let psnr = if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    };
    Ok((max, psnr))
}
