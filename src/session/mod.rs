//! The library's front door: what the CLI, a server, a binding or a cluster worker call, so
//! none of them copies another's logic.
//!
//! ```text
//! Session::open(model, vae, device)   configs and tokenizer only: cheap, no weights
//!   .recipe(&patch)                   the model's defaults under a patch of fields
//!   .check(&recipe)                   everything that can be refused before weights load
//!   .load(dtype)                      fetch + hash weights, build the networks (render does it too)
//!   .render(&recipes, &options, on)   batches, progress, stop flag → Rendered (image, meta, png())
//! verify::compare / OwnVerify          what a replay's --verify weighs
//! ```

mod check;
mod defaults;
mod device;
mod embeddings;
mod found;
mod lora;
mod render;
pub mod verify;

pub use device::{describe as describe_device, DeviceSpec};
pub use embeddings::{
    find_foreign as find_foreign_embedding, find_recorded as find_recorded_embedding,
    in_library as embeddings_in, EmbeddingSpec,
};
pub use found::Found;
pub use lora::LoraSpec;
pub use render::{Event, RenderOptions, Rendered, StopFlag};

use render::Loaded;

use crate::models::{ModelInfo, ModelSpec};
use crate::pipeline::Pipeline;
use crate::recipe::{ModelDType, ModelRef, Overrides, Recipe};
use crate::{Error, Result};
use candle_core::Device;
use std::sync::{Arc, Mutex};

/// An opened model on a device: its configs are read at once, its weights on first use (for
/// one dtype at a time; asking for another drops the first before loading).
pub struct Session {
    info: ModelInfo,
    device: Device,
    device_name: String,
    loaded: Mutex<Option<Arc<Loaded>>>,
    /// The LoRAs applied to the weights, and the model's weight names they resolve in.
    loras: Vec<lora::Opened>,
    lora_targets: lora::Targets,
    /// The textual-inversion embeddings prompts may name.
    embeddings: embeddings::Embeddings,
}

impl Session {
    /// Opens `model` (with the VAE of `vae` instead of its own, when given) on `device`:
    /// configs and tokenizer only, so recipes can be built and checked before any weights are
    /// fetched.
    pub fn open(model: &ModelSpec, vae: Option<&ModelSpec>, device: DeviceSpec) -> Result<Self> {
        Self::open_with_loras(model, vae, device, &[])
    }

    /// `open`, with `loras` applied to the weights at their strengths: each file is read,
    /// hashed (the recipes record it) and checked against the model's weights here, so a LoRA
    /// of another family is refused, naming the file, before any weights load.
    pub fn open_with_loras(
        model: &ModelSpec,
        vae: Option<&ModelSpec>,
        device: DeviceSpec,
        loras: &[LoraSpec],
    ) -> Result<Self> {
        let device = device.open()?;
        let mut info = ModelInfo::open(model)?;
        if let Some(vae) = vae {
            info.use_vae(vae)?;
        }
        let (loras, lora_targets) = lora::open(&info, loras)?;
        Ok(Session {
            info,
            device_name: device::describe(&device),
            device,
            loaded: Mutex::new(None),
            loras,
            lora_targets,
            embeddings: embeddings::Embeddings::default(),
        })
    }

    /// This session, where a word of a prompt that names one of `specs` stands for that
    /// embedding's vectors (files are read when a prompt first names them; `check` refuses one
    /// that does not fit the model). Replaces any embeddings given before.
    pub fn with_embeddings(mut self, specs: Vec<EmbeddingSpec>) -> Session {
        self.embeddings = embeddings::Embeddings::new(specs);
        self
    }

    /// The embeddings `recipe`'s prompts name, as its rendered image will record them (for
    /// comparing a planned recipe with an image on disk).
    pub fn embedding_refs(&self, recipe: &Recipe) -> Result<Vec<crate::recipe::EmbeddingRef>> {
        Ok(self
            .embeddings
            .used(&self.info, recipe)?
            .iter()
            .map(|o| o.reference.clone())
            .collect())
    }

    /// What the user should know about where the model (and VAE) were found: notes such as a
    /// folder shadowing a preset name.
    pub fn notes(&self) -> Vec<String> {
        let vae = self
            .info
            .vae_override
            .iter()
            .flat_map(|o| o.location.notes());
        vae.chain(self.info.location.notes()).cloned().collect()
    }

    /// The model's configs (family, sizes, scheduler), for front ends that show them.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Where the weights come from, as provenance and progress lines name it.
    pub fn describe_model(&self) -> String {
        self.info.location.describe()
    }

    /// How provenance names this session's device.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// The recipe `patch` asks for on this model: its fields, else the model preset's
    /// settings, else the model's scheduler, else seedling's fallbacks; a random seed when it
    /// names none. Not checked: see `check`.
    pub fn recipe(&self, patch: &Overrides) -> Recipe {
        let mut recipe = defaults::recipe(&self.info, patch);
        recipe.model.loras = self.lora_refs();
        recipe
    }

    /// Refuses a recipe this model cannot render on this device, before any weights are
    /// fetched; returns warnings to show (a prompt truncated under `truncate_prompt`).
    pub fn check(&self, recipe: &Recipe) -> Result<Vec<String>> {
        let used = self.embeddings.used(&self.info, recipe)?;
        let embeddings: Vec<_> = used.iter().map(|o| o.embedding.clone()).collect();
        check::check(&self.info, recipe, &self.device, &embeddings)
    }

    /// The model reference of a recipe whose weights are not hashed yet (source and family):
    /// enough to compare recipes before loading.
    pub fn model_ref_unhashed(&self) -> ModelRef {
        ModelRef {
            loras: self.lora_refs(),
            ..self.info.model_ref_unhashed()
        }
    }

    fn lora_refs(&self) -> Vec<crate::recipe::LoraRef> {
        self.loras.iter().map(|l| l.reference.clone()).collect()
    }

    /// Fetches and hashes the weights for `dtype` and builds the networks, unless they are
    /// loaded already; returns the weights' reference (source and every file's hash).
    pub fn load(&self, dtype: ModelDType) -> Result<ModelRef> {
        Ok(self.loaded(dtype)?.model_ref.clone())
    }

    /// Whether the networks for `dtype` are loaded (so `load` costs nothing).
    pub fn is_loaded(&self, dtype: ModelDType) -> bool {
        let slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().is_some_and(|l| l.dtype == dtype)
    }

    /// Drops the loaded networks (a front end done with this model that opens another).
    pub fn unload(&self) {
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn loaded(&self, dtype: ModelDType) -> Result<Arc<Loaded>> {
        let mut slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(loaded) = slot.as_ref().filter(|l| l.dtype == dtype) {
            return Ok(loaded.clone());
        }
        // The other dtype's networks go before the new ones load: never both in memory.
        *slot = None;
        let weights = self.info.weights(dtype)?;
        let deltas = lora::deltas(&self.loras, &self.lora_targets)?;
        let loaded = Arc::new(Loaded {
            dtype,
            pipeline: Pipeline::load(&self.info, &weights, dtype, &self.device, &deltas)?,
            model_ref: ModelRef {
                loras: self.lora_refs(),
                ..self.info.model_ref(&weights)
            },
        });
        *slot = Some(loaded.clone());
        Ok(loaded)
    }

    /// Renders `recipes` (checked with `check`; their `model` is set to the loaded weights'),
    /// grouping neighbours that can share a UNet call into batches of at most
    /// `options.batch_size`, and calls `on` with progress and with each image in order. Recipes
    /// of another dtype than the one before load theirs (group them by dtype). A set
    /// stop flag ends the run after the current step with `Error::Interrupted`.
    pub fn render<E: From<Error>>(
        &self,
        recipes: &mut [Recipe],
        options: &RenderOptions,
        mut on: impl FnMut(Event<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let load = |dtype| self.loaded(dtype);
        let embeddings = |r: &Recipe| self.embeddings.used(&self.info, r);
        let with = render::With {
            load: &load,
            embeddings: &embeddings,
            device: &self.device_name,
        };
        render::render(&with, recipes, options, &mut on)
    }
}
