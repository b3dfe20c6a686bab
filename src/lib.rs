//! seedling: reproducible text-to-image generation with Stable-Diffusion-style latent diffusion
//! models run by candle. Every image carries its complete recipe (see `recipe`), so it can be
//! regenerated exactly or varied one field at a time.
//!
//! A program drives it through [`Session`] (the `session` module): open a model once, build
//! recipes from a patch of fields with the model's defaults, check them before any weights load,
//! render them in batches with a progress callback and a stop flag, and get each image with its
//! provenance and PNG bytes. The layers and where things go: `docs/ARCHITECTURE.md`.

// The kernels crate holds every `unsafe` block (seedling-kernels); the binary's allocator tuning
// is the binary's.
#![forbid(unsafe_code)]

pub mod bench;
pub mod error;
pub mod grid;
pub mod jobs;
pub mod message;
pub mod metadata;
pub mod models;
pub mod nets;
pub mod noise;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod prompt_networks;
pub mod prompt_syntax;
pub mod provenance;
pub mod recipe;
pub mod resume;
pub mod sampler;
pub mod session;
mod text;

pub use error::{Error, ErrorKind, Result};
pub use message::{Message, Setting};
pub use models::ModelSpec;
pub use provenance::Provenance;
pub use recipe::{ModelDType, ModelRef, ModelSource, Overrides, Recipe};
pub use session::{DeviceSpec, Event, RenderOptions, Rendered, Session, StopFlag};
