//! A model loaded once and used for many recipes: weights fetched and hashed, networks built,
//! recipes rendered in batches, each image handed back as soon as it is done.

use super::device;
use super::progress::{RunProgress, StopFlag};
use anyhow::{bail, Result};
use candle_core::Device;
use seedling::models::ModelInfo;
use seedling::pipeline::{batchable, Generated, Pipeline};
use seedling::recipe::{ModelDType, ModelRef, Recipe};

pub struct Session {
    pipeline: Pipeline,
    model_ref: ModelRef,
    pub device_name: String,
}

impl Session {
    /// Fetches and hashes the weights for `dtype` and loads the networks.
    pub fn open(info: &ModelInfo, dtype: ModelDType, device: &Device) -> Result<Self> {
        let weights = info.weights(dtype)?;
        eprintln!("loading {} ({dtype})", info.location.describe());
        Ok(Self {
            pipeline: Pipeline::load(info, &weights, dtype, device)?,
            model_ref: info.model_ref(&weights),
            device_name: device::describe(device),
        })
    }

    /// The weights loaded: their source and every file's hash.
    pub fn model_ref(&self) -> &ModelRef {
        &self.model_ref
    }

    /// Renders every recipe (their `model` is set to this session's), grouping neighbours that
    /// can share a UNet call into batches of at most `batch_size`, and calls `done` with each
    /// image in order. Ctrl-C stops after the current step with an error.
    pub fn render_all(
        &self,
        recipes: &mut [Recipe],
        batch_size: usize,
        stop: &StopFlag,
        mut done: impl FnMut(&Recipe, Generated, &mut RunProgress) -> Result<()>,
    ) -> Result<()> {
        for r in recipes.iter_mut() {
            r.model = self.model_ref.clone();
        }
        // Steps as the recipes ask for them, which is what the pipeline reports (PNDM's extra
        // UNet call is not a step of its own).
        let total_steps = recipes.iter().map(|r| u64::from(r.steps)).sum();
        let mut progress = RunProgress::new(recipes.len(), total_steps, stop.clone());
        // `--batch-size` is parsed as at least 1 (args.rs), so no clamp here hides a 0.
        debug_assert!(batch_size >= 1, "batch size {batch_size}");
        for batch in batches(recipes, batch_size) {
            let n = batch.len();
            let images = self
                .pipeline
                .generate_batch(batch, &mut |p| progress.update(p, n));
            let images = match images {
                Ok(images) => images,
                Err(seedling::Error::Interrupted) => {
                    progress.finish();
                    bail!("interrupted (Ctrl-C); the images saved so far are complete, nothing partial was written");
                }
                Err(e) => {
                    progress.finish();
                    return Err(e.into());
                }
            };
            for (recipe, image) in batch.iter().zip(images) {
                done(recipe, image, &mut progress)?;
            }
        }
        progress.finish();
        Ok(())
    }
}

/// Consecutive runs of batchable recipes, each at most `size` long.
fn batches(recipes: &[Recipe], size: usize) -> Vec<&[Recipe]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=recipes.len() {
        let end_here =
            i == recipes.len() || i - start == size || !batchable(&recipes[start], &recipes[i]);
        if end_here {
            out.push(&recipes[start..i]);
            start = i;
        }
    }
    out
}
