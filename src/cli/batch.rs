//! `seedling batch FILE`: every job of a prompt file, each model loaded once, each image under a
//! name fixed by the file (`<out>/<file>/<job>-<seed>.png`), so a second run makes the same files
//! and `--skip-existing` fills in only what is missing (an interrupted run resumes).

use super::args::{BatchArgs, RecipeArgs};
use super::generate::build_recipe;
use super::render::DEFAULT_OUT_DIR;
use super::session;
use anyhow::{bail, Result};
use seedling::jobs::{self, Job};
use seedling::models::folder::ModelsLibrary;
use seedling::models::preset;
use seedling::output;
use seedling::prompt_networks::{take_loras, LoraTag};
use seedling::recipe::{ModelRef, Recipe};
use seedling::resume::{self, Existing, Weights};
use seedling::session::{embeddings_in, DeviceSpec, LoraSpec, Session};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One image to make and where it goes.
struct Planned {
    recipe: Recipe,
    path: PathBuf,
}

pub fn run(args: BatchArgs) -> Result<ExitCode> {
    let device: DeviceSpec = args.device.parse()?;
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
    // Sessions by (model, vae, LoRAs) as written: each opened once.
    let mut models: Vec<(Wanted, Session)> = Vec::new();
    let mut groups: BTreeMap<(usize, String), Vec<Planned>> = BTreeMap::new();
    let mut names = BTreeMap::new();
    let (mut total, mut skipped) = (0, 0);
    let mut not_kept = Vec::new();
    let library = super::args::open_library(&args.models_dir)?;
    for job in &file.jobs {
        // --model and --vae win over the file's, as flags win over settings everywhere.
        let model = (args.model.clone())
            .or_else(|| job.model.clone())
            .unwrap_or_else(|| preset::DEFAULT_PRESET.into());
        let vae = args.vae.clone().or_else(|| job.vae.clone());
        // The job's `loras` and the A1111 tags of its prompt, found as --lora finds them.
        let in_job = |e: seedling::Error| {
            anyhow::anyhow!("{}: job \"{}\": {}", file.path.display(), job.name, e)
        };
        let (prompt, tags) = take_loras(&job.prompt).map_err(in_job)?;
        let loras = job_loras(&job.loras, &tags, &library).map_err(in_job)?;
        let wanted = Wanted { model, vae, loras };
        let index = match models.iter().position(|(m, _)| *m == wanted) {
            Some(i) => i,
            None => {
                let spec = super::args::parse_model_in(&wanted.model, &args.models_dir)?;
                let spec = super::args::with_config(spec, args.config.as_deref())?;
                let vae = (wanted.vae.as_deref())
                    .map(|v| super::args::parse_vae_in(v, &args.models_dir))
                    .transpose()?;
                // A word of a job's prompt naming an embedding of the models folders is it.
                let session = session::open(&spec, vae.as_ref(), device, &wanted.loras)?
                    .with_embeddings(embeddings_in(&library));
                models.push((wanted, session));
                models.len() - 1
            }
        };
        let session = &models[index].1;
        let name = file_name_of(job, &mut names)?;
        for recipe in job_recipes(job, &prompt, session) {
            let path = dir.join(format!("{name}-{}.png", recipe.seed));
            total += 1;
            session::check(session, &recipe).map_err(|e| {
                anyhow::anyhow!(
                    "{}: job \"{}\", seed {}: {}",
                    file.path.display(),
                    job.name,
                    recipe.seed,
                    super::spell::chain(&e)
                )
            })?;
            if std::fs::symlink_metadata(&path).is_ok() {
                if !args.skip_existing {
                    bail!(
                        "{} already exists; pass --skip-existing to render only the missing images, or use another --out-dir",
                        path.display()
                    );
                }
                // Kept only when it is this image; its weights are not hashed to decide.
                let wanted = Recipe {
                    model: ModelRef {
                        embeddings: session.embedding_refs(&recipe)?,
                        ..session.model_ref_unhashed()
                    },
                    ..recipe
                };
                match resume::check(&path, &wanted, Weights::NotHashed) {
                    Existing::Same => skipped += 1,
                    Existing::Other(why) => not_kept.push(why),
                }
                continue;
            }
            groups
                .entry((index, recipe.dtype.to_string()))
                .or_default()
                .push(Planned { recipe, path });
        }
    }
    if !not_kept.is_empty() {
        bail!("{}", not_kept_message(&not_kept));
    }
    if skipped > 0 {
        eprintln!("{skipped} of {total} images already exist; skipping them");
    }
    if groups.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    super::render::prepare_folder(&dir)?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;

    for ((index, _), planned) in groups {
        let session = &models[index].1;
        let mut recipes: Vec<Recipe> = planned.iter().map(|p| p.recipe.clone()).collect();
        let mut paths = planned.iter().map(|p| &p.path);
        session::render_all(session, &mut recipes, args.batch_size, |image, progress| {
            let path = paths.next().expect("one path per recipe");
            let recipe = image.recipe();
            if output::write_if_absent(path, &image.png()?)? {
                progress.image_done(&format!("saved {}", path.display()));
            } else {
                taken_meanwhile(path, recipe, args.skip_existing)?;
                progress.image_done(&format!(
                    "kept {}: another run saved this image meanwhile",
                    path.display()
                ));
            }
            Ok(())
        })?;
        // One model's networks in memory at a time.
        session.unload();
    }
    Ok(ExitCode::SUCCESS)
}

/// Files under this job file's names that --skip-existing may not keep, and the way out.
fn not_kept_message(why: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut list: Vec<String> = why.iter().take(SHOWN).map(|w| format!("  {w}")).collect();
    if why.len() > SHOWN {
        list.push(format!("  … and {} more", why.len() - SHOWN));
    }
    format!(
        "--skip-existing keeps only complete, unedited images of the job's recipe, and {} \
         file(s) under this job file's names are not:\n{}\nseedling never overwrites them: move \
         or delete them to render those images again, or use another --out-dir",
        why.len(),
        list.join("\n")
    )
}

/// A name that was free when the run started was taken while it rendered (another run writing
/// the same images). Nothing was overwritten; with --skip-existing, an image of the same
/// recipe (weights included) is kept and the run goes on.
fn taken_meanwhile(path: &Path, recipe: &Recipe, skip_existing: bool) -> Result<()> {
    if !skip_existing {
        bail!(
            "{} appeared while this run was rendering it (another run writing the same \
             images?); nothing was overwritten. Pass --skip-existing to keep such images when \
             they are of the same recipe, or use another --out-dir",
            path.display()
        );
    }
    match resume::check(path, recipe, Weights::Hashed) {
        Existing::Same => Ok(()),
        Existing::Other(why) => bail!(
            "{why}; another process wrote it while this run was rendering, and seedling never \
             overwrites it: move or delete it to render this image again, or use another \
             --out-dir"
        ),
    }
}

/// What a job renders with: the model, the VAE and the LoRAs (found), as sessions are shared.
#[derive(PartialEq)]
struct Wanted {
    model: String,
    vae: Option<String>,
    loras: Vec<LoraSpec>,
}

/// A job's LoRAs: its `loras` list, then its prompt's tags, each a file or a name found in
/// the models folders.
fn job_loras(
    listed: &[String],
    tags: &[LoraTag],
    library: &ModelsLibrary,
) -> seedling::Result<Vec<LoraSpec>> {
    let listed = listed.iter().map(|s| LoraSpec::parse(s));
    let tagged = tags.iter().map(|t| Ok(LoraSpec::from_tag(t)));
    listed
        .chain(tagged)
        .map(|spec| spec?.find_in(library))
        .collect()
}

/// A job's recipes, one per seed: the model's defaults, then the job's settings; `prompt` is
/// the job's prompt without its LoRA tags.
fn job_recipes(job: &Job, prompt: &str, session: &Session) -> Vec<Recipe> {
    let base = build_recipe(
        session,
        prompt,
        job.negative.as_deref(),
        &RecipeArgs::default(),
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
