//! Models: finding a diffusers folder's files (hub or local), reading its configs, and hashing
//! its weights. The networks built from them are `nets`'.
//!
//! Opening a model (`ModelInfo::open`) reads only the small config and tokenizer files, so bad
//! input can be refused before any weights are downloaded or loaded; `ModelInfo::weights` then
//! fetches and hashes the weight files, and `nets::Components::load` builds the networks.

pub mod cache;
pub mod configs;
pub mod embedding;
pub mod file_hash;
pub mod folder;
pub mod hub;
pub mod location;
pub mod lookup;
pub mod lora;
pub mod preset;
pub mod reference;
pub mod safetensors_header;
pub mod single_file;

pub use location::{Location, ModelSpec};
pub(crate) use preset::Preset;

use crate::recipe::{ModelDType, ModelRef};
use crate::sampler::{SamplerKind, SchedulerConfig};
use crate::text::{PromptTokenizer, TokenizerFiles};
use crate::{Error, ErrorKind, Message, Result, Setting};
use configs::{read_json, Activation, ClipTextConfig, ModelIndex, UNetJson, VaeJson};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Model families this build runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Family {
    /// SD 1.x: OpenAI CLIP ViT-L text encoder (quick_gelu).
    Sd1,
    /// SD 2.x (incl. SD-Turbo): OpenCLIP ViT-H text encoder (gelu), often v-prediction.
    Sd2,
    /// SDXL (incl. SDXL-Turbo): two text encoders, pooled and size conditioning.
    Sdxl,
}

impl Family {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Family::Sd1 => "sd1",
            Family::Sd2 => "sd2",
            Family::Sdxl => "sdxl",
        }
    }
}

/// A model's configs, read without loading weights.
pub struct ModelInfo {
    pub location: Location,
    pub preset: Option<Preset>,
    pub family: Family,
    pub unet: UNetJson,
    pub vae: VaeJson,
    pub text: ClipTextConfig,
    /// SDXL's second text encoder and its tokenizer.
    pub second: Option<(ClipTextConfig, TokenizerFiles)>,
    /// SDXL: an empty negative prompt means all-zero negative conditioning (model_index.json).
    pub force_zeros_for_empty_prompt: bool,
    pub scheduler: SchedulerConfig,
    pub tokenizer_files: TokenizerFiles,
    /// Loaded on first use, then shared by every check and by the text encoder.
    tokenizer: std::sync::OnceLock<PromptTokenizer>,
    tokenizer2: std::sync::OnceLock<PromptTokenizer>,
    /// A VAE used instead of the model's own (`--vae`); `vae` then holds its config.
    pub vae_override: Option<VaeOverride>,
    /// A single-file model: its tensors' diffusers names, and the config files to hash.
    pub checkpoint: Option<std::sync::Arc<single_file::model::CheckpointModel>>,
}

/// The weight files chosen for a dtype, fetched, with their sha256.
pub struct WeightFiles {
    pub unet: PathBuf,
    pub vae: PathBuf,
    pub text_encoder: PathBuf,
    pub text_encoder_2: Option<PathBuf>,
    /// Path inside the model folder → sha256, what the recipe records.
    pub hashes: BTreeMap<String, String>,
    /// For weights in a single file's layout: each component's diffusers names → its keys.
    pub key_maps: KeyMaps,
}

/// Per component, the renaming under which its weight file is read (`None`: diffusers names).
#[derive(Default, Clone)]
pub struct KeyMaps {
    pub unet: Option<std::sync::Arc<single_file::keys::KeyMap>>,
    pub vae: Option<std::sync::Arc<single_file::keys::KeyMap>>,
    pub text_encoder: Option<std::sync::Arc<single_file::keys::KeyMap>>,
    pub text_encoder_2: Option<std::sync::Arc<single_file::keys::KeyMap>>,
}

/// What a diffusers folder's config files say (a single file's `--config` is one too).
pub(crate) struct FolderConfigs {
    pub class_name: String,
    pub sdxl: bool,
    pub force_zeros_for_empty_prompt: bool,
    pub unet: UNetJson,
    pub vae: VaeJson,
    pub text: ClipTextConfig,
    pub text_2: Option<ClipTextConfig>,
    pub scheduler: SchedulerConfig,
    /// The config files read, inside the folder.
    pub files: Vec<String>,
}

impl FolderConfigs {
    pub(crate) fn read(location: &Location) -> Result<FolderConfigs> {
        let index: ModelIndex = read_json(&location.fetch("model_index.json").map_err(|_| {
            let message = Message::text(format!(
                "{} is not a diffusers model (it has no model_index.json); pass a diffusers folder \
                 or repo, e.g. ",
                location.describe()
            ))
            .set(Setting::Model, "stabilityai/sd-turbo");
            Error::hint(ErrorKind::Model, message)
        })?)?;
        let sdxl = match index.class_name.as_str() {
            "StableDiffusionPipeline" => false,
            "StableDiffusionXLPipeline" => true,
            other => {
                return Err(Error::Model(format!(
                    "{} is a {other} model, which is not supported yet. Supported families: \
                     SD 1.x, SD 2.x (incl. SD-Turbo), SDXL (incl. SDXL-Turbo)",
                    location.describe()
                )))
            }
        };
        let mut files = vec!["model_index.json".to_string()];
        let mut json = |rel: &str| -> Result<PathBuf> {
            files.push(rel.to_string());
            location.fetch(rel)
        };
        let unet: UNetJson = read_json(&json("unet/config.json")?)?;
        let vae: VaeJson = read_json(&json("vae/config.json")?)?;
        let text: ClipTextConfig = read_json(&json("text_encoder/config.json")?)?;
        let text_2: Option<ClipTextConfig> = match sdxl {
            true => Some(read_json(&json("text_encoder_2/config.json")?)?),
            false => None,
        };
        let scheduler = pipeline_scheduler_config(SchedulerConfig::from_file(json(
            "scheduler/scheduler_config.json",
        )?)?);
        Ok(FolderConfigs {
            force_zeros_for_empty_prompt: sdxl
                && index.force_zeros_for_empty_prompt.unwrap_or(true),
            class_name: index.class_name,
            sdxl,
            unet,
            vae,
            text,
            text_2,
            scheduler,
            files,
        })
    }

    /// Refuses an architecture seedling cannot build, before any weight is fetched; returns
    /// the family.
    pub(crate) fn validate(&self, location: &Location) -> Result<Family> {
        if let Some(config) = &self.text_2 {
            Activation::parse(&config.hidden_act)?;
        }
        let spec_unet = self.unet.spec()?;
        if spec_unet.addition.is_some() != self.sdxl {
            return Err(Error::Model(format!(
                "{}: the UNet's addition_embed_type does not fit a {} pipeline",
                location.describe(),
                self.class_name
            )));
        }
        self.vae.to_candle()?;
        Activation::parse(&self.text.hidden_act)?;
        // OpenCLIP (SD 2.x) uses exact gelu; OpenAI CLIP (SD 1.x) quick_gelu.
        Ok(match (self.sdxl, self.text.hidden_act.as_str()) {
            (true, _) => Family::Sdxl,
            (false, "quick_gelu") => Family::Sd1,
            (false, _) => Family::Sd2,
        })
    }
}

impl ModelInfo {
    /// A model from its configs (read from a folder, or fitted to a single file), its tokenizers
    /// (the first encoder's, and SDXL's second encoder with its own, taken out of
    /// `c.text_2`) and, for a single file, the checkpoint its weights are read from.
    pub(crate) fn from_configs(
        location: Location,
        preset: Option<Preset>,
        family: Family,
        c: FolderConfigs,
        (tokenizer_files, second): (TokenizerFiles, Option<(ClipTextConfig, TokenizerFiles)>),
        checkpoint: Option<std::sync::Arc<single_file::model::CheckpointModel>>,
    ) -> ModelInfo {
        ModelInfo {
            location,
            preset,
            family,
            unet: c.unet,
            vae: c.vae,
            text: c.text,
            second,
            force_zeros_for_empty_prompt: c.force_zeros_for_empty_prompt,
            scheduler: c.scheduler,
            tokenizer_files,
            tokenizer: std::sync::OnceLock::new(),
            tokenizer2: std::sync::OnceLock::new(),
            vae_override: None,
            checkpoint,
        }
    }

    pub fn open(spec: &ModelSpec) -> Result<Self> {
        let location = Location::open(spec)?;
        if let Location::File { .. } = location {
            return single_file::model::open(location);
        }
        let mut c = FolderConfigs::read(&location)?;
        let family = c.validate(&location)?;
        let second = match c.text_2.take() {
            Some(config) => Some((config, tokenizer_files(&location, "tokenizer_2")?)),
            None => None,
        };
        let tokenizer_files = tokenizer_files(&location, "tokenizer")?;
        let preset = spec.preset();
        Ok(Self::from_configs(
            location,
            preset,
            family,
            c,
            (tokenizer_files, second),
            None,
        ))
    }

    /// Pixels per latent along each side (2^(VAE levels − 1)).
    pub fn latent_factor(&self) -> u32 {
        self.vae.scale_factor()
    }

    /// The size the model was trained at: the UNet's sample_size in pixels (as diffusers'
    /// pipelines default `height`/`width`), else the preset's.
    pub fn default_size(&self) -> (u32, u32) {
        if let Some(p) = &self.preset {
            return (p.defaults.width, p.defaults.height);
        }
        let side = self.unet.sample_size.unwrap_or(64) as u32 * self.latent_factor();
        (side, side)
    }

    /// The sampler matching the model's own scheduler class, if we have it.
    pub(crate) fn scheduler_sampler(&self) -> Option<SamplerKind> {
        self.scheduler
            .class_name
            .as_deref()
            .and_then(SamplerKind::from_diffusers_class)
    }

    pub(crate) fn num_train_timesteps(&self) -> u32 {
        // diffusers' default when the key is absent.
        self.scheduler.num_train_timesteps.unwrap_or(1000) as u32
    }

    /// SDXL's second tokenizer (pads with "!"), loaded on first use.
    pub(crate) fn tokenizer2(&self) -> Result<Option<&PromptTokenizer>> {
        let Some((config, files)) = &self.second else {
            return Ok(None);
        };
        if let Some(t) = self.tokenizer2.get() {
            return Ok(Some(t));
        }
        let loaded = PromptTokenizer::load(files, config.max_position_embeddings)?;
        Ok(Some(self.tokenizer2.get_or_init(|| loaded)))
    }

    pub fn tokenizer(&self) -> Result<&PromptTokenizer> {
        if let Some(t) = self.tokenizer.get() {
            return Ok(t);
        }
        let loaded =
            PromptTokenizer::load(&self.tokenizer_files, self.text.max_position_embeddings)?;
        Ok(self.tokenizer.get_or_init(|| loaded))
    }

    /// Picks each component's weights for `dtype` (the `fp16` variant first for f16/bf16,
    /// the full file first for f32), fetches them, and hashes them.
    pub fn weights(&self, dtype: ModelDType) -> Result<WeightFiles> {
        if let Some(checkpoint) = &self.checkpoint {
            return checkpoint.weights(self, dtype);
        }
        let mut hashes = BTreeMap::new();
        let mut get = |location: &Location, dir: &str, stem: &str, key: &str| -> Result<PathBuf> {
            let rel = pick_weights(location, dir, stem, dtype)?;
            let path = location.fetch(&rel)?;
            hashes.insert(format!("{key}{rel}"), location.sha256(&path)?);
            Ok(path)
        };
        let model = &self.location;
        let unet = get(model, "unet/", "diffusion_pytorch_model", "")?;
        let own_vae = match &self.vae_override {
            Some(_) => None,
            None => Some(get(model, "vae/", "diffusion_pytorch_model", "")?),
        };
        let text_encoder = get(model, "text_encoder/", "model", "")?;
        let text_encoder_2 = match self.second {
            Some(_) => Some(get(model, "text_encoder_2/", "model", "")?),
            None => None,
        };
        let (vae, vae_map) = match (own_vae, &self.vae_override) {
            (Some(path), _) => (path, None),
            (None, Some(o)) => o.weights(dtype, &mut hashes)?,
            (None, None) => unreachable!("a model without a VAE override has its own"),
        };
        Ok(WeightFiles {
            unet,
            vae,
            text_encoder,
            text_encoder_2,
            hashes,
            key_maps: KeyMaps {
                vae: vae_map,
                ..KeyMaps::default()
            },
        })
    }

    /// The weight names and shapes of each network a LoRA may change (UNet, text encoder(s)),
    /// as the networks ask for them (diffusers names; a single file's through its key map),
    /// read from the files' headers without their data, for [`lora::resolve`].
    pub fn lora_targets(&self) -> Result<lora::Targets> {
        use lora::Network;
        if let Some(checkpoint) = &self.checkpoint {
            let tensors = &checkpoint.checkpoint.header.tensors;
            let names = |map: &single_file::keys::KeyMap| -> Vec<(String, Vec<usize>)> {
                map.iter()
                    .filter_map(|(name, source)| {
                        let stored = tensors.get(&source.key)?.shape.clone();
                        use single_file::keys::Transform;
                        let shape = match source.transform {
                            Transform::Copy => stored,
                            Transform::ConvAsLinear => stored[..2].to_vec(),
                            Transform::Chunk { of, .. } => {
                                let mut s = stored;
                                s[0] /= of;
                                s
                            }
                            Transform::Transpose => stored.into_iter().rev().collect(),
                        };
                        Some((name.clone(), shape))
                    })
                    .collect()
            };
            let m = &checkpoint.mapping;
            let mut targets = BTreeMap::from([
                (Network::Unet, names(&m.unet)),
                (Network::TextEncoder, names(&m.text_encoder)),
            ]);
            if self.second.is_some() {
                targets.insert(Network::TextEncoder2, names(&m.text_encoder_2));
            }
            return Ok(targets);
        }
        let header = |dir: &str, stem: &str| -> Result<Vec<(String, Vec<usize>)>> {
            let rel = pick_weights(&self.location, dir, stem, ModelDType::F32)?;
            let path = self.location.fetch(&rel)?;
            Ok(safetensors_header::read_header(&path)?
                .tensors
                .into_iter()
                .map(|t| (t.name, t.shape.iter().map(|&d| d as usize).collect()))
                .collect())
        };
        let mut targets = BTreeMap::from([
            (Network::Unet, header("unet/", "diffusion_pytorch_model")?),
            (Network::TextEncoder, header("text_encoder/", "model")?),
        ]);
        if self.second.is_some() {
            targets.insert(Network::TextEncoder2, header("text_encoder_2/", "model")?);
        }
        Ok(targets)
    }

    /// Uses the VAE at `spec` (`--vae`) instead of the model's own: a folder or repo holding
    /// an `AutoencoderKL` (config.json and weights at its root, as madebyollin/sdxl-vae-fp16-fix),
    /// or a whole pipeline (its `vae/`). Its latent space must be the model's: same latent
    /// channels and scale factor; its own config decides scaling factor and `force_upcast`.
    pub(crate) fn use_vae(&mut self, spec: &ModelSpec) -> Result<()> {
        let location = Location::open(spec)?;
        if let Location::File { path, .. } = &location {
            let (vae, map) = single_file::vae::open(path, &self.vae)?;
            self.vae = vae;
            self.vae_override = Some(VaeOverride {
                location,
                dir: String::new(),
                key_map: map,
            });
            return Ok(());
        }
        let dir = if location.has("config.json") {
            ""
        } else if location.has("vae/config.json") {
            "vae/"
        } else {
            let message = Message::text(format!(
                "{} holds no VAE: it has neither config.json nor vae/config.json; pass a diffusers \
                 AutoencoderKL folder or repo to ",
                location.describe()
            ))
            .mention(Setting::Vae)
            .then(", e.g. madebyollin/sdxl-vae-fp16-fix");
            return Err(Error::hint(ErrorKind::Model, message));
        };
        let vae: VaeJson = read_json(&location.fetch(&format!("{dir}config.json"))?)?;
        vae.to_candle()?;
        if vae.latent_channels != self.vae.latent_channels
            || vae.scale_factor() != self.vae.scale_factor()
        {
            return Err(Error::Model(format!(
                "the VAE {} has {} latent channels at 1/{} scale, but {} needs {} at 1/{}; \
                 use a VAE made for this model family",
                location.describe(),
                vae.latent_channels,
                vae.scale_factor(),
                self.location.describe(),
                self.vae.latent_channels,
                self.vae.scale_factor()
            )));
        }
        self.vae = vae;
        self.vae_override = Some(VaeOverride {
            location,
            dir: dir.to_string(),
            key_map: None,
        });
        Ok(())
    }

    /// What a recipe records about this model and these weights.
    pub(crate) fn model_ref(&self, weights: &WeightFiles) -> ModelRef {
        ModelRef {
            files: weights.hashes.clone(),
            ..self.model_ref_unhashed()
        }
    }

    /// `model_ref` before the weights are fetched and hashed: `files` is empty. Names the model
    /// (source, revision, family, preset, VAE) without reading gigabytes, e.g. to tell whether
    /// an image on disk was made from it.
    pub(crate) fn model_ref_unhashed(&self) -> ModelRef {
        ModelRef {
            source: self.location.source(),
            family: self.family.name().into(),
            preset: self.preset.as_ref().map(|p| p.name.clone()),
            files: BTreeMap::new(),
            vae: self.vae_override.as_ref().map(|o| o.location.source()),
            loras: Vec::new(),
            embeddings: Vec::new(),
        }
    }
}

/// A VAE from elsewhere (`--vae`): where it is and the folder inside it ("" or "vae/"), or a
/// single file with the renaming its layout needs.
pub struct VaeOverride {
    pub location: Location,
    pub dir: String,
    pub key_map: Option<std::sync::Arc<single_file::keys::KeyMap>>,
}

impl VaeOverride {
    /// The VAE's weight file for `dtype`, hashed into `hashes` under `vae-override/`, and the
    /// renaming it is read under.
    pub(crate) fn weights(
        &self,
        dtype: ModelDType,
        hashes: &mut BTreeMap<String, String>,
    ) -> Result<(PathBuf, Option<std::sync::Arc<single_file::keys::KeyMap>>)> {
        if let Location::File { path, .. } = &self.location {
            let name = format!("vae-override/{}", single_file::CHECKPOINT_KEY);
            hashes.insert(name, location::sha256_file(path)?);
            return Ok((path.clone(), self.key_map.clone()));
        }
        let rel = pick_weights(&self.location, &self.dir, "diffusion_pytorch_model", dtype)?;
        let path = self.location.fetch(&rel)?;
        hashes.insert(format!("vae-override/{rel}"), self.location.sha256(&path)?);
        Ok((path, None))
    }
}

/// The weight file of one component for `dtype`: `<dir><stem>.fp16.safetensors` first for
/// f16/bf16, the full file first for f32.
fn pick_weights(location: &Location, dir: &str, stem: &str, dtype: ModelDType) -> Result<String> {
    let full = format!("{dir}{stem}.safetensors");
    let half = format!("{dir}{stem}.fp16.safetensors");
    let order = match dtype {
        ModelDType::F32 => [full.clone(), half],
        ModelDType::F16 | ModelDType::Bf16 => [half, full.clone()],
    };
    if let Some(rel) = order.into_iter().find(|r| location.has(r)) {
        return Ok(rel);
    }
    Err(Error::Model(format!(
        "{} has no {full}{}; seedling reads safetensors weights in diffusers layout",
        location.describe(),
        if location.has(&format!("{dir}{stem}.bin")) {
            " (only a PyTorch .bin file; convert it to safetensors)"
        } else {
            ""
        }
    )))
}

/// What `StableDiffusionPipeline.__init__` does to the loaded scheduler's config: a
/// `steps_offset` other than 1 (including the class default 0 when the file has none) becomes 1,
/// and `clip_sample: true` becomes false (diffusers warns "outdated config" and rewrites both).
/// Samplers chosen later are built from that rewritten config, as `from_config` does there.
pub(crate) fn pipeline_scheduler_config(mut c: SchedulerConfig) -> SchedulerConfig {
    c.steps_offset = Some(1);
    if c.clip_sample == Some(true) {
        c.clip_sample = Some(false);
    }
    c
}

pub(crate) fn tokenizer_files(location: &Location, dir: &str) -> Result<TokenizerFiles> {
    let json = if location.has(&format!("{dir}/tokenizer.json")) {
        Some(location.fetch(&format!("{dir}/tokenizer.json"))?)
    } else {
        None
    };
    let vocab_merges = if json.is_none() {
        Some((
            location.fetch(&format!("{dir}/vocab.json"))?,
            location.fetch(&format!("{dir}/merges.txt"))?,
        ))
    } else {
        None
    };
    Ok(TokenizerFiles::Folder {
        json,
        vocab_merges,
        config: location.fetch(&format!("{dir}/tokenizer_config.json"))?,
    })
}
