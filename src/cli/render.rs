//! What generate, grid and replay share: where images go (checked before any work), and saving
//! a rendered image there.

use super::args::RunArgs;
use anyhow::Result;
use seedling::recipe::Recipe;
use seedling::session::Rendered;
use std::path::{Path, PathBuf};

/// Default folder for generated images.
pub const DEFAULT_OUT_DIR: &str = "outputs";

/// Prints the warnings for a recipe's prompt (when `prompt`) and negative prompt (when
/// `negative`) that have AUTOMATIC1111 syntax, which seedling takes literally.
pub fn warn_prompt_syntax(recipe: &Recipe, prompt: bool, negative: bool) {
    for w in seedling::prompt_syntax::recipe_warnings(recipe, prompt, negative) {
        eprintln!("warning: {w}");
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

/// Writes the PNG with its recipe and provenance; returns where it went.
pub fn save(target: &Target, image: &Rendered) -> Result<PathBuf> {
    let bytes = image.png()?;
    let recipe = image.recipe();
    let path = match target {
        Target::File { path, overwrite } => {
            seedling::output::write_new(path, &bytes, *overwrite)?;
            path.clone()
        }
        Target::Dir(dir) => seedling::output::write_auto(dir, recipe.seed, &recipe.prompt, &bytes)?,
    };
    Ok(path)
}
