//! Rendering a list of recipes on a loaded pipeline: neighbours that can share a UNet call go
//! in one batch, progress is counted over the whole run, a stop flag ends it after the current
//! step, and each image is handed back with its provenance as soon as it is done.

use super::embeddings::Opened as EmbeddingOpened;
use crate::metadata::{self, ImageMeta};
use crate::pipeline::{batchable, Flow, Generated, Pipeline, Progress};
use crate::progress::RunTally;
use crate::provenance::{self, Parent, Provenance};
use crate::recipe::{ModelDType, ModelRef, Recipe};
use crate::{Error, Result};
use image::RgbImage;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Asks a run to stop after the current denoising step (the render then ends with
/// `Error::Interrupted`; no image of the unfinished batch is handed back). Clones share the flag:
/// a front end sets it from a Ctrl-C handler or a cancel request.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How to render a list of recipes. Neither setting changes an image.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Images per UNet call, at least 1.
    pub batch_size: usize,
    pub stop: StopFlag,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            batch_size: 1,
            stop: StopFlag::new(),
        }
    }
}

/// What a render reports, in order.
#[non_exhaustive]
pub enum Event<'a> {
    /// The pipeline's progress in the batch in hand, and the run's count after it.
    Progress(Progress, &'a RunTally),
    /// An image is done (already counted in the tally). Boxed: an event of progress is small.
    Image(Box<Rendered>, &'a RunTally),
}

/// A finished image: its recipe (with the model reference of the weights that made it), its
/// pixels, and the metadata its PNG carries.
pub struct Rendered {
    pub image: RgbImage,
    pub meta: ImageMeta,
}

impl Rendered {
    fn new(recipe: &Recipe, generated: Generated, device: &str) -> Self {
        let provenance = Provenance {
            tool: provenance::TOOL.into(),
            candle: provenance::CANDLE_VERSION.into(),
            device: device.to_string(),
            noise_sha256: generated.noise_sha256,
            pixels_sha256: provenance::sha256_hex(generated.image.as_raw()),
            parent: None,
        };
        Rendered {
            image: generated.image,
            meta: ImageMeta {
                recipe: recipe.clone(),
                provenance,
            },
        }
    }

    pub fn recipe(&self) -> &Recipe {
        &self.meta.recipe
    }

    /// Records the image this one was derived from (a replay: its pixels, the overrides).
    pub fn set_parent(&mut self, parent: Parent) {
        self.meta.provenance.parent = Some(parent);
    }

    /// The PNG file: pixels, seedling's recipe chunk and AUTOMATIC1111's `parameters`.
    pub fn png(&self) -> Result<Vec<u8>> {
        metadata::encode_png(&self.image, &self.meta)
    }
}

/// Networks loaded for one dtype, and the reference of the weights they were built from.
pub(crate) struct Loaded {
    pub dtype: ModelDType,
    pub pipeline: Pipeline,
    pub model_ref: ModelRef,
}

/// What a render runs on: the networks for a dtype, the embeddings a recipe's prompts name,
/// and the device's name for provenance.
pub(crate) struct With<'a> {
    pub load: &'a dyn Fn(ModelDType) -> Result<Arc<Loaded>>,
    pub embeddings: &'a dyn Fn(&Recipe) -> Result<Vec<Arc<EmbeddingOpened>>>,
    pub device: &'a str,
}

/// Renders `recipes` (already checked), each batch on what `with.load` gives for its dtype,
/// sets each recipe's `model` to those weights and the embeddings its prompts name, and hands
/// each image to `on`.
pub(crate) fn render<E: From<Error>>(
    with: &With<'_>,
    recipes: &mut [Recipe],
    options: &RenderOptions,
    on: &mut dyn FnMut(Event<'_>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    if options.batch_size == 0 {
        return Err(Error::Invalid("the batch size must be at least 1".into()).into());
    }
    // Steps as the recipes ask for them, which is what the pipeline reports (PNDM's extra UNet
    // call is not a step of its own).
    let total_steps = recipes.iter().map(|r| u64::from(r.steps)).sum();
    let mut tally = RunTally::new(recipes.len(), total_steps);
    for range in batches(recipes, options.batch_size) {
        // Batches never mix dtypes (`batchable`).
        let loaded = (with.load)(recipes[range.start].dtype)?;
        let batch = &mut recipes[range];
        let mut embeddings = Vec::with_capacity(batch.len());
        for r in batch.iter_mut() {
            let used = (with.embeddings)(r)?;
            r.model = ModelRef {
                embeddings: used.iter().map(|o| o.reference.clone()).collect(),
                ..loaded.model_ref.clone()
            };
            embeddings.push(used.iter().map(|o| o.embedding.clone()).collect());
        }
        let batch = &*batch;
        let n = batch.len();
        // The callback's own error cannot cross the pipeline; it is kept and returned after it.
        let mut failed = None;
        let images = loaded
            .pipeline
            .generate_batch(batch, &embeddings, &mut |p| {
                tally.update(p, n);
                if let Err(e) = on(Event::Progress(p, &tally)) {
                    failed = Some(e);
                    return Flow::Stop;
                }
                if options.stop.is_set() {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            });
        if let Some(e) = failed {
            return Err(e);
        }
        for (recipe, generated) in batch.iter().zip(images?) {
            tally.image_done();
            let image = Box::new(Rendered::new(recipe, generated, with.device));
            on(Event::Image(image, &tally))?;
        }
    }
    Ok(())
}

/// Consecutive runs of batchable recipes, each at most `size` long. Their `model` is not
/// compared: every recipe of a dtype gets the same weights' reference before it renders.
fn batches(recipes: &[Recipe], size: usize) -> Vec<Range<usize>> {
    let same_model = |first: &Recipe, r: &Recipe| Recipe {
        model: first.model.clone(),
        ..r.clone()
    };
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=recipes.len() {
        let end_here = i == recipes.len()
            || i - start == size
            || !batchable(&recipes[start], &same_model(&recipes[start], &recipes[i]));
        if end_here {
            out.push(start..i);
            start = i;
        }
    }
    out
}
