//! `seedling batch FILE`: every job of a prompt file, each model loaded once, each image under a
//! name fixed by the file (`<out>/<file>/<job>-<seed>.png`), so a second run makes the same files
//! and `--skip-existing` fills in only what is missing (an interrupted run resumes).

use super::args::{BatchArgs, RecipeArgs};
use super::device;
use super::generate::build_recipe;
use super::progress::StopFlag;
use super::render::{self, DEFAULT_OUT_DIR};
use super::session::Session;
use anyhow::{bail, Result};
use seedling::jobs::{self, Job};
use seedling::metadata;
use seedling::model::{preset, ModelInfo, ModelSpec};
use seedling::output;
use seedling::recipe::Recipe;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// One image to make and where it goes.
struct Planned {
    recipe: Recipe,
    path: PathBuf,
}

pub fn run(args: BatchArgs) -> Result<ExitCode> {
    let device = device::parse(&args.device)?;
    let file = jobs::load(&args.file)?;
    let stem = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| DEFAULT_OUT_DIR.into())
        .join(output::slug(&stem));

    // Open every model first and check every recipe, so bad input fails before any rendering.
    let mut models: Vec<(String, ModelInfo)> = Vec::new();
    let mut groups: BTreeMap<(usize, String), Vec<Planned>> = BTreeMap::new();
    let mut names = BTreeMap::new();
    let (mut total, mut skipped) = (0, 0);
    for job in &file.jobs {
        let model = job
            .model
            .clone()
            .unwrap_or_else(|| preset::DEFAULT_PRESET.into());
        let index = match models.iter().position(|(m, _)| *m == model) {
            Some(i) => i,
            None => {
                models.push((
                    model.clone(),
                    render::open_model(&ModelSpec::parse(&model)?, None)?,
                ));
                models.len() - 1
            }
        };
        let info = &models[index].1;
        let name = file_name_of(job, &mut names)?;
        for recipe in job_recipes(job, info) {
            let path = dir.join(format!("{name}-{}.png", recipe.seed));
            total += 1;
            render::check_recipe(info, &recipe, &device).map_err(|e| {
                anyhow::anyhow!(
                    "{}: job \"{}\", seed {}: {e:#}",
                    file.path.display(),
                    job.name,
                    recipe.seed
                )
            })?;
            if path.exists() {
                if args.skip_existing {
                    skipped += 1;
                    continue;
                }
                bail!(
                    "{} already exists; pass --skip-existing to render only the missing images, or use another --out-dir",
                    path.display()
                );
            }
            groups
                .entry((index, recipe.dtype.to_string()))
                .or_default()
                .push(Planned { recipe, path });
        }
    }
    if skipped > 0 {
        eprintln!("{skipped} of {total} images already exist; skipping them");
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;

    let stop = StopFlag::install();
    for ((index, _), planned) in groups {
        let info = &models[index].1;
        let session = Session::open(info, planned[0].recipe.dtype, &device)?;
        let mut recipes: Vec<Recipe> = planned.iter().map(|p| p.recipe.clone()).collect();
        let mut paths = planned.iter().map(|p| &p.path);
        session.render_all(
            &mut recipes,
            args.batch_size,
            &stop,
            |recipe, image, progress| {
                let path = paths.next().expect("one path per recipe");
                let meta = render::image_meta(recipe, &image, &session.device_name, None);
                output::write_new(path, &metadata::encode_png(&image.image, &meta)?, false)?;
                progress.image_done(&format!("saved {}", path.display()));
                Ok(())
            },
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A job's recipes, one per seed: the model's defaults, then the job's settings.
fn job_recipes(job: &Job, info: &ModelInfo) -> Vec<Recipe> {
    let base = build_recipe(
        &job.prompt,
        job.negative.as_deref(),
        &RecipeArgs::default(),
        info,
    );
    let (base, _) = job.settings.apply(&base);
    job.seeds
        .iter()
        .map(|&seed| Recipe {
            seed,
            ..base.clone()
        })
        .collect()
}

/// The job's name as a file-name part (a slug of it); two jobs may not end up the same.
fn file_name_of(job: &Job, taken: &mut BTreeMap<String, String>) -> Result<String> {
    let slug = output::slug(&job.name);
    let slug = if slug.is_empty() {
        format!("job-{}", job.line)
    } else {
        slug
    };
    if let Some(other) = taken.insert(slug.clone(), job.name.clone()) {
        bail!(
            "jobs \"{other}\" and \"{}\" would both write files named {slug}-<seed>.png; rename one",
            job.name
        );
    }
    Ok(slug)
}
