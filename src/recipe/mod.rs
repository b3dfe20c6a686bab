//! The Recipe: everything that changes the pixels, and nothing that does not (DESIGN.md).
//! It is plain data; the JSON in a PNG's `seedling` chunk is exactly `serde_json` of it. Each
//! field a user sets is declared once in [`fields`] (name, flag, parser, range, help).

pub mod fields;

pub use fields::{field, Field, Value, FIELDS};

use crate::models::reference::ReferenceVariant;
use crate::noise::RngKind;
use crate::sampler::{SamplerKind, ScheduleKind};
use crate::{Error, ErrorKind, Message, Result, Setting};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Version of the recipe schema; bumped when a field is added or changes meaning.
/// 2 added `variation_seed` / `variation_strength`; 3 added `schedule`.
pub(crate) const SCHEMA_VERSION: u32 = 4;

/// The oldest schema this build reads; older recipes get the new fields' defaults, which
/// reproduce them exactly (schema 1 had no variation seed, i.e. strength 0).
pub(crate) const MIN_SCHEMA_VERSION: u32 = 1;

/// Largest width or height accepted; a guard against typos that would allocate gigabytes.
pub(crate) const MAX_SIDE: u32 = 8192;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub schema: u32,
    pub model: ModelRef,
    pub prompt: String,
    pub negative_prompt: String,
    pub seed: u64,
    pub rng: RngKind,
    /// A second seed whose noise is mixed in (A1111's "variation seed"); `None` = no mixing.
    #[serde(default)]
    pub variation_seed: Option<u64>,
    /// How much of the variation seed's noise: 0 = only `seed`, 1 = only `variation_seed`.
    #[serde(default)]
    pub variation_strength: f64,
    pub width: u32,
    pub height: u32,
    pub sampler: SamplerKind,
    /// Spacing of the noise levels (older schemas: the model's default).
    #[serde(default)]
    pub schedule: ScheduleKind,
    pub steps: u32,
    /// Classifier-free guidance scale; at most 1 means no unconditional pass.
    pub cfg: f64,
    /// DDIM's eta (0 = deterministic DDIM); other samplers ignore it.
    pub eta: f64,
    pub dtype: ModelDType,
    /// Whether tokens past the text encoder's limit were dropped (the user asked with
    /// `--truncate`); without it such a prompt is refused.
    pub truncate_prompt: bool,
}

/// Which weights made the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    pub source: ModelSource,
    /// Model family as detected from the configs, e.g. `sd1`, `sd2`.
    pub family: String,
    /// Preset name when the model was chosen by preset (informational: the source decides).
    pub preset: Option<String>,
    /// sha256 of every weight file used, keyed by its path inside the model folder (a `--vae`
    /// file under `vae-override/<its path>`).
    pub files: BTreeMap<String, String>,
    /// A VAE used instead of the model's own (`--vae`, e.g. madebyollin/sdxl-vae-fp16-fix, which
    /// runs in f16 where SDXL's own VAE must be upcast). Schema 4; absent = the model's VAE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vae: Option<ModelSource>,
    /// The LoRAs applied to the weights, in the order given; absent = none (so a recipe
    /// without LoRAs reads and writes as before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loras: Vec<LoraRef>,
    /// The textual-inversion embeddings the prompts named, in the order they first appear;
    /// absent = none (every recipe from before embeddings: their prompts are plain text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub embeddings: Vec<EmbeddingRef>,
}

/// A textual-inversion embedding a prompt used: the word that called it, its file by content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRef {
    /// The word of the prompt that stands for it (its file's stem, as A1111 and ComfyUI name
    /// embeddings).
    pub name: String,
    /// The file as it was found (a hint: `sha256` decides).
    pub path: PathBuf,
    /// sha256 of the whole file.
    pub sha256: String,
}

impl EmbeddingRef {
    /// A1111's hash for it in "TI hashes": the first 12 hex digits of the file's sha256
    /// (modules/textual_inversion/textual_inversion.py `Embedding.shorthash`).
    pub fn a1111_hash(&self) -> &str {
        self.sha256.get(..12).unwrap_or(&self.sha256)
    }
}

/// A LoRA that changed the weights: which file, by content, and at what strengths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraRef {
    /// The file as it was given (a hint: `sha256` decides).
    pub name: String,
    /// sha256 of the whole file.
    pub sha256: String,
    /// Strength on the UNet.
    pub unet: f64,
    /// Strength on the text encoder(s).
    pub text_encoder: f64,
    /// The hash AUTOMATIC1111 shows for it in "Lora hashes" (12 hex digits: the file's
    /// `sshs_model_hash`, else its addnet hash), for the `parameters` text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a1111_hash: Option<String>,
}

impl LoraRef {
    /// A1111's short hash (AutoV2): the first 10 hex digits of the sha256, what Civitai lists.
    pub fn autov2(&self) -> &str {
        self.sha256.get(..10).unwrap_or(&self.sha256)
    }

    /// Whether two LoRA lists change the weights alike: the same files by content, in order,
    /// at the same strengths. Where a file was found (its name) does not matter.
    pub fn same_weights(a: &[LoraRef], b: &[LoraRef]) -> bool {
        let key = |l: &LoraRef| (l.sha256.clone(), l.unet.to_bits(), l.text_encoder.to_bits());
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| key(x) == key(y))
    }
}

impl ModelRef {
    /// Every weight file whose hash differs between `self` (what an image records) and `here`
    /// (the weights loaded now), one `path (…)` entry each, in path order; empty when the
    /// weights are the same. Where the weights came from does not matter, only their hashes.
    pub fn weight_differences(&self, here: &ModelRef) -> Vec<String> {
        let short = |h: &str| h.chars().take(16).collect::<String>();
        let mut paths: Vec<&String> = self.files.keys().chain(here.files.keys()).collect();
        paths.sort();
        paths.dedup();
        paths
            .into_iter()
            .filter_map(|path| match (self.files.get(path), here.files.get(path)) {
                (Some(a), Some(b)) if a == b => None,
                (Some(a), Some(b)) => Some(format!(
                    "{path} (sha256 {}… recorded, {}… here)",
                    short(a),
                    short(b)
                )),
                (Some(_), None) => Some(format!("{path} (recorded, not loaded here)")),
                (None, _) => Some(format!("{path} (loaded here, not recorded)")),
            })
            .chain((!LoraRef::same_weights(&self.loras, &here.loras)).then(|| {
                let list = |l: &[LoraRef]| match l {
                    [] => "none".to_string(),
                    l => l
                        .iter()
                        .map(|l| {
                            format!("{} {} at {}/{}", l.name, l.autov2(), l.unet, l.text_encoder)
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                format!(
                    "LoRAs ({} recorded, {} here)",
                    list(&self.loras),
                    list(&here.loras)
                )
            }))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ModelSource {
    /// A Hugging Face repository at a resolved commit.
    Hub { repo: String, revision: String },
    /// A diffusers-layout folder on disk.
    Local { path: PathBuf },
    /// A single-file checkpoint (LDM/SGM layout) at `path`, a hint: `ModelRef.files` records
    /// its sha256 under `checkpoint` (and `--config`'s files under `config/`). `config`: where its architecture's configs came from
    /// (`--config`); absent = the family's reference config compiled into seedling.
    File {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        config: Option<Box<ModelSource>>,
        /// Without `config`: how the family's reference config was changed for what the
        /// file's weights say (ε SD 2.x, v-prediction SDXL); absent = unchanged.
        #[serde(default, skip_serializing_if = "ReferenceVariant::is_as_is")]
        reference: ReferenceVariant,
    },
}

impl ModelSource {
    /// Where the weights are, in full: `repo @ revision`, or the folder.
    pub fn describe(&self) -> String {
        match self {
            ModelSource::Hub { repo, revision } => format!("{repo} @ {revision}"),
            ModelSource::Local { path } => path.display().to_string(),
            ModelSource::File {
                path, config: None, ..
            } => path.display().to_string(),
            ModelSource::File {
                path,
                config: Some(c),
                ..
            } => format!("{} (configs of {})", path.display(), c.describe()),
        }
    }

    /// The repo id, or the folder's name.
    pub(crate) fn short_name(&self) -> String {
        match self {
            ModelSource::Hub { repo, .. } => repo.clone(),
            ModelSource::Local { path } | ModelSource::File { path, .. } => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
        }
    }
}

impl ModelRef {
    /// A short human name: the preset, else the repo, else the folder name.
    pub(crate) fn display_name(&self) -> String {
        if let Some(p) = &self.preset {
            return p.clone();
        }
        self.source.short_name()
    }

    /// A1111's `VAE` and `VAE hash` (sha256, first 10 hex digits) for a `--vae` replacement.
    pub(crate) fn vae_name_and_hash(&self) -> Option<(String, Option<String>)> {
        let vae = self.vae.as_ref()?;
        let hash = self
            .files
            .iter()
            .find(|(k, _)| k.starts_with("vae-override/"))
            .map(|(_, h)| h.chars().take(10).collect());
        Some((vae.short_name(), hash))
    }

    /// A1111-style short model hash: the first 10 hex digits of the UNet weights' sha256
    /// (A1111 hashes its single checkpoint file; the UNet is the part that identifies a model).
    /// For a single-file model it is that file's, exactly A1111's (AutoV2) hash.
    pub(crate) fn short_hash(&self) -> Option<String> {
        let checkpoint = |k: &str| k == crate::models::single_file::CHECKPOINT_KEY;
        self.files
            .iter()
            .find(|(k, _)| k.starts_with("unet/") || checkpoint(k))
            .or_else(|| self.files.iter().next())
            .map(|(_, v)| v.chars().take(10).collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ModelDType {
    #[default]
    F32,
    F16,
    Bf16,
}

impl ModelDType {
    pub const ALL: [ModelDType; 3] = [ModelDType::F32, ModelDType::F16, ModelDType::Bf16];

    pub fn name(self) -> &'static str {
        match self {
            ModelDType::F32 => "f32",
            ModelDType::F16 => "f16",
            ModelDType::Bf16 => "bf16",
        }
    }

    pub fn candle(self) -> candle_core::DType {
        match self {
            ModelDType::F32 => candle_core::DType::F32,
            ModelDType::F16 => candle_core::DType::F16,
            ModelDType::Bf16 => candle_core::DType::BF16,
        }
    }
}

impl fmt::Display for ModelDType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelDType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ModelDType::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown dtype '{s}'; use one of: {}",
                    ModelDType::ALL.map(|d| d.name()).join(", ")
                ))
            })
    }
}

impl Default for Recipe {
    /// A neutral recipe (no model yet, seed 0, 512×512, euler_a, 20 steps, cfg 7.5), for
    /// building recipes field by field and for checks that need one.
    fn default() -> Self {
        Recipe {
            schema: SCHEMA_VERSION,
            model: ModelRef {
                source: ModelSource::Local {
                    path: PathBuf::new(),
                },
                family: String::new(),
                preset: None,
                files: BTreeMap::new(),
                vae: None,
                loras: Vec::new(),
                embeddings: Vec::new(),
            },
            prompt: String::new(),
            negative_prompt: String::new(),
            seed: 0,
            rng: RngKind::default(),
            variation_seed: None,
            variation_strength: 0.0,
            width: 512,
            height: 512,
            sampler: SamplerKind::EulerAncestral,
            schedule: ScheduleKind::Default,
            steps: 20,
            cfg: 7.5,
            eta: 0.0,
            dtype: ModelDType::default(),
            truncate_prompt: false,
        }
    }
}

impl Recipe {
    /// Checks everything that can be checked without the model's weights. `factor` is the
    /// model's latent scale factor (2^(VAE levels − 1)), `max_train_steps` its scheduler's
    /// `num_train_timesteps`.
    pub fn validate(&self, factor: u32, max_train_steps: u32) -> Result<()> {
        if !(MIN_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&self.schema) {
            return Err(Error::Invalid(format!(
                "recipe schema {} is not supported by this seedling (it reads schemas \
                 {MIN_SCHEMA_VERSION} to {SCHEMA_VERSION}); use a seedling version that matches the image",
                self.schema
            )));
        }
        self.check_range("variation_strength")?;
        if self.variation_strength > 0.0 && self.variation_seed.is_none() {
            return Err(Error::hint(
                ErrorKind::BadInput,
                Message::text("a variation strength needs a variation seed; add ")
                    .set(Setting::field("variation_seed"), "N"),
            ));
        }
        check_side("width", self.width, factor)?;
        check_side("height", self.height, factor)?;
        if self.steps == 0 {
            return Err(Error::hint(
                ErrorKind::BadInput,
                Message::text("steps must be at least 1; try ")
                    .set(Setting::field("steps"), 20)
                    .then(" (or 1-4 for turbo models)"),
            ));
        }
        if self.steps > max_train_steps {
            return Err(Error::Invalid(format!(
                "steps {} is more than the model's {max_train_steps} training timesteps; use at most {max_train_steps}",
                self.steps
            )));
        }
        self.check_range("cfg")?;
        self.check_range("eta")
    }

    /// Refuses the field's value when it is outside the range its declaration gives.
    fn check_range(&self, name: &str) -> Result<()> {
        let f = field(name).expect("a declared field");
        f.in_range(&f.get(self)).map_err(Error::Invalid)
    }
}

/// Refuses a side that is zero, too large, or not a multiple of the latent factor.
pub fn check_side(name: &str, value: u32, factor: u32) -> Result<()> {
    if value == 0 || value > MAX_SIDE {
        return Err(Error::Invalid(format!(
            "{name} {value} is out of range; use a multiple of {factor} from {factor} to {MAX_SIDE}"
        )));
    }
    if !value.is_multiple_of(factor) {
        let below = value / factor * factor;
        let above = below + factor;
        let hint = if below == 0 {
            format!("try {above}")
        } else {
            format!("try {below} or {above}")
        };
        return Err(Error::Invalid(format!(
            "{name} {value} is not a multiple of {factor} (this model's latent scale factor); {hint}"
        )));
    }
    Ok(())
}

/// Changes to a recipe asked for on the command line (replay, variations). `None` = keep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub prompt: Option<String>,
    pub negative_prompt: Option<String>,
    pub seed: Option<u64>,
    pub rng: Option<RngKind>,
    pub variation_seed: Option<u64>,
    pub variation_strength: Option<f64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub sampler: Option<SamplerKind>,
    pub schedule: Option<ScheduleKind>,
    pub steps: Option<u32>,
    pub cfg: Option<f64>,
    pub eta: Option<f64>,
    pub dtype: Option<ModelDType>,
    pub truncate_prompt: Option<bool>,
}

impl Overrides {
    /// Applies the overrides and returns the new recipe and a `field=value` line for each
    /// field that actually changed (what the new image's provenance records), in the order of
    /// [`FIELDS`].
    pub fn apply(&self, recipe: &Recipe) -> (Recipe, Vec<String>) {
        let mut out = recipe.clone();
        let mut changed = Vec::new();
        for f in FIELDS {
            if let Some(v) = f.patched(self) {
                if v != f.get(&out) {
                    changed.push(format!("{}={v}", f.name));
                    f.set(&mut out, v);
                }
            }
        }
        (out, changed)
    }
}

#[cfg(test)]
mod override_tests {
    use super::*;

    #[test]
    fn every_override_is_applied_and_named() {
        let base = Recipe::default();
        let o = Overrides {
            schedule: Some(ScheduleKind::Karras),
            variation_seed: Some(7),
            variation_strength: Some(0.25),
            seed: Some(base.seed + 1),
            ..Default::default()
        };
        let (r, changed) = o.apply(&base);
        assert_eq!(r.schedule, ScheduleKind::Karras);
        assert_eq!(r.variation_seed, Some(7));
        assert_eq!(r.variation_strength, 0.25);
        assert_eq!(
            changed,
            [
                format!("seed={}", base.seed + 1),
                "schedule=karras".to_string(),
                "variation_seed=7".to_string(),
                "variation_strength=0.25".to_string(),
            ]
        );
        // The same values again change nothing.
        assert!(o.apply(&r).1.is_empty());
    }
}

#[cfg(test)]
mod model_ref_tests {
    use super::*;

    /// A single file's reference variant is recorded only when it changes the reference
    /// config, so a recipe from before reads as `as-is`, and a replay asks for what was used.
    #[test]
    fn a_files_reference_variant_is_recorded_when_not_as_is() {
        let file = |reference| ModelSource::File {
            path: "/m/x.safetensors".into(),
            config: None,
            reference,
        };
        let plain = serde_json::to_string(&file(ReferenceVariant::AsIs)).unwrap();
        assert_eq!(plain, r#"{"kind":"file","path":"/m/x.safetensors"}"#);
        let back: ModelSource = serde_json::from_str(&plain).unwrap();
        assert_eq!(back, file(ReferenceVariant::AsIs));
        let eps = serde_json::to_string(&file(ReferenceVariant::Sd2Epsilon)).unwrap();
        assert!(eps.contains(r#""reference":"sd2-epsilon""#), "{eps}");
        let back: ModelSource = serde_json::from_str(&eps).unwrap();
        match crate::models::ModelSpec::from_source(&back) {
            crate::models::ModelSpec::File { reference, .. } => {
                assert_eq!(reference, Some(ReferenceVariant::Sd2Epsilon))
            }
            other => panic!("{other:?}"),
        }
    }

    /// A different LoRA set is different weights; none serializes as before (no `loras` key)
    /// and a recipe without the key reads as none.
    #[test]
    fn loras_are_weights_and_absent_when_none() {
        let plain = Recipe::default();
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("loras"), "{json}");
        let back: Recipe = serde_json::from_str(&json).unwrap();
        assert!(back.model.loras.is_empty());
        let lora = LoraRef {
            name: "/x/detail.safetensors".into(),
            sha256: "ab".repeat(32),
            unet: 0.8,
            text_encoder: 0.8,
            a1111_hash: None,
        };
        let mut with = plain.model.clone();
        with.loras.push(lora.clone());
        assert!(plain.model.weight_differences(&plain.model).is_empty());
        let d = plain.model.weight_differences(&with);
        assert_eq!(d.len(), 1);
        assert!(
            d[0].contains("abababab") && d[0].contains("none recorded"),
            "{d:?}"
        );
        let mut weaker = with.clone();
        weaker.loras[0].unet = 0.5;
        assert_eq!(with.weight_differences(&weaker).len(), 1);
        assert!(with.weight_differences(&with.clone()).is_empty());
    }

    #[test]
    fn weight_differences_name_each_file_by_hash_only() {
        let with = |files: &[(&str, &str)], path: &str| ModelRef {
            source: ModelSource::Local { path: path.into() },
            family: "sd1".into(),
            preset: None,
            files: files
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            vae: None,
            loras: Vec::new(),
            embeddings: Vec::new(),
        };
        let recorded = with(
            &[("unet/a", &"1".repeat(64)), ("vae/b", &"2".repeat(64))],
            "x",
        );
        // Another folder with the same weights: no difference.
        assert!(recorded
            .weight_differences(&with(
                &[("unet/a", &"1".repeat(64)), ("vae/b", &"2".repeat(64))],
                "y"
            ))
            .is_empty());
        let here = with(
            &[
                ("unet/a", &"3".repeat(64)),
                ("vae-override/b", &"2".repeat(64)),
            ],
            "x",
        );
        assert_eq!(
            recorded.weight_differences(&here),
            [
                format!(
                    "unet/a (sha256 {}… recorded, {}… here)",
                    "1".repeat(16),
                    "3".repeat(16)
                ),
                "vae-override/b (loaded here, not recorded)".to_string(),
                "vae/b (recorded, not loaded here)".to_string(),
            ]
        );
    }
}
