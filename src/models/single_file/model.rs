//! A single-file checkpoint opened as a model: its configs (from `--config`, else the family's
//! reference config, with the sizes the shapes tell), its tokenizers (the config folder's,
//! else CLIP's built-in vocabulary), and its weights served from the one file.

use super::keys::{self, KeyMap, Layout, Mapping};
use super::{shapes, variant, Checkpoint};
use crate::models::configs::Activation;
use crate::models::location::{sha256_file, Location};
use crate::models::reference::ReferenceVariant;
use crate::models::{
    reference, tokenizer_files, Family, FolderConfigs, KeyMaps, ModelInfo, WeightFiles,
};
use crate::recipe::ModelDType;
use crate::sampler::SchedulerConfig;
use crate::text::{TokenizerFiles, PAD_EOS, PAD_EXCLAMATION};
use crate::{Error, ErrorKind, Message, Result, Setting};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// What a single-file model needs at load time.
pub struct CheckpointModel {
    pub checkpoint: Checkpoint,
    pub mapping: Mapping,
    /// The config files read from `--config` (paths inside it), hashed into the recipe.
    pub config_files: Vec<String>,
    /// The reference config used instead (file name, text), when there was no `--config`.
    pub reference: Option<(&'static str, &'static str)>,
}

/// Opens the checkpoint of `location` (a `Location::File`) as a model.
pub(crate) fn open(mut location: Location) -> Result<ModelInfo> {
    let Location::File {
        path,
        config,
        reference: recorded,
    } = &location
    else {
        unreachable!("single_file::model::open is called with a file");
    };
    let checkpoint = Checkpoint::open(path)?;
    let family = checkpoint.family;
    // A recipe's variant as recorded (so its image stays the same); else what the weights say.
    let variant = match (config, recorded) {
        (Some(_), _) => None,
        (None, Some(v)) => Some(*v),
        (None, None) => Some(variant::of(&checkpoint)?),
    };
    let mut c = match (config, variant) {
        (Some(config), _) => from_folder(config, family, &checkpoint.path)?,
        (None, v) => from_reference(family, v.unwrap_or_default())?,
    };
    let layout = Layout {
        family,
        unet_layers_per_block: c.unet.spec()?.layers_per_block,
        text_layers: c.text.num_hidden_layers,
        text_2_layers: c.text_2.as_ref().map_or(0, |t| t.num_hidden_layers),
    };
    let mapping = keys::map(&checkpoint.header, &layout, &checkpoint.path)?;
    let header = &checkpoint.header;
    shapes::unet(&mut c.unet, &mapping, header, &checkpoint.path)?;
    shapes::vae(&mut c.vae, &mapping.vae, header, &checkpoint.path)?;
    shapes::text(&mut c.text, &mapping.text_encoder, header);
    if let Some(t) = &mut c.text_2 {
        shapes::text(t, &mapping.text_encoder_2, header);
    }
    c.validate(&location)?;
    let tokenizer = |dir: &str, pad: &'static str| match config {
        Some(config) if config.has(&format!("{dir}/tokenizer_config.json")) => {
            tokenizer_files(config, dir)
        }
        _ => Ok(TokenizerFiles::BuiltIn { pad }),
    };
    // transformers' CLIP tokenizer configs of each family (SD 2.x and SDXL's second encoder
    // pad with "!", as open_clip pads with id 0).
    let first_pad = if family == Family::Sd2 {
        PAD_EXCLAMATION
    } else {
        PAD_EOS
    };
    let tokenizer_files = tokenizer("tokenizer", first_pad)?;
    let second = match c.text_2.take() {
        Some(t) => Some((t, tokenizer("tokenizer_2", PAD_EXCLAMATION)?)),
        None => None,
    };
    let reference = config.is_none().then(|| reference::file(family));
    let model = CheckpointModel {
        checkpoint,
        mapping,
        config_files: c.files.clone(),
        reference,
    };
    if let Location::File { reference, .. } = &mut location {
        *reference = variant;
    }
    Ok(ModelInfo::from_configs(
        location,
        None,
        family,
        c,
        (tokenizer_files, second),
        Some(Arc::new(model)),
    ))
}

/// `--config`'s configs, which must be of the checkpoint's family.
fn from_folder(config: &Location, family: Family, path: &Path) -> Result<FolderConfigs> {
    let c = FolderConfigs::read(config)?;
    let theirs = c.validate(config)?;
    if theirs != family {
        let message = Message::text(format!(
            "{} is an {} checkpoint, but the configs of {} describe an {} model; pass the \
             configs of an {} model to ",
            path.display(),
            family.name(),
            config.describe(),
            theirs.name(),
            family.name()
        ))
        .mention(Setting::Config);
        return Err(Error::hint(ErrorKind::Model, message));
    }
    Ok(c)
}

/// The family's reference config (models/arch/) changed as `variant` says, as a folder's
/// configs would be.
fn from_reference(family: Family, variant: ReferenceVariant) -> Result<FolderConfigs> {
    let r = reference::configs_of(family, variant);
    if let Some(t) = &r.text_encoder_2 {
        Activation::parse(&t.hidden_act)?;
    }
    let scheduler = SchedulerConfig::from_json(&r.scheduler.to_string())?;
    let (class_name, sdxl) = match family {
        Family::Sdxl => ("StableDiffusionXLPipeline", true),
        _ => ("StableDiffusionPipeline", false),
    };
    Ok(FolderConfigs {
        class_name: class_name.into(),
        sdxl,
        // diffusers' SDXL pipeline default (stable-diffusion-xl-base-1.0's model_index.json).
        force_zeros_for_empty_prompt: sdxl,
        unet: r.unet,
        vae: r.vae,
        text: r.text_encoder,
        text_2: r.text_encoder_2,
        scheduler: crate::models::pipeline_scheduler_config(scheduler),
        files: Vec::new(),
    })
}

impl CheckpointModel {
    /// The one file for every component (`--vae`'s for the VAE), hashed: the checkpoint under
    /// `CHECKPOINT_KEY`, each `--config` file under `config/`, or the reference config under
    /// `config/reference/`.
    pub(crate) fn weights(&self, info: &ModelInfo, dtype: ModelDType) -> Result<WeightFiles> {
        let path = &self.checkpoint.path;
        let mut hashes = BTreeMap::new();
        hashes.insert(super::CHECKPOINT_KEY.to_string(), sha256_file(path)?);
        for rel in &self.config_files {
            let file = info.location.fetch(rel)?;
            hashes.insert(format!("config/{rel}"), info.location.sha256(&file)?);
        }
        if let Some((name, text)) = self.reference {
            hashes.insert(
                format!("config/reference/{name}"),
                crate::provenance::sha256_hex(text.as_bytes()),
            );
        }
        let map = |m: &KeyMap| Some(Arc::new(m.clone()));
        let (vae, vae_map) = match &info.vae_override {
            Some(o) => o.weights(dtype, &mut hashes)?,
            None => (path.clone(), map(&self.mapping.vae)),
        };
        let sdxl = info.second.is_some();
        Ok(WeightFiles {
            unet: path.clone(),
            vae,
            text_encoder: path.clone(),
            text_encoder_2: sdxl.then(|| path.clone()),
            hashes,
            key_maps: KeyMaps {
                unet: map(&self.mapping.unet),
                vae: vae_map,
                text_encoder: map(&self.mapping.text_encoder),
                text_encoder_2: if sdxl {
                    map(&self.mapping.text_encoder_2)
                } else {
                    None
                },
            },
        })
    }
}
