//! The reference configs shipped in `models/arch/` (SD 1.5, SD 2.1, SDXL base at full size):
//! what a single-file checkpoint's shapes cannot tell (head counts, the scheduler) when no
//! `--config` is given, and the architectures `seedling bench --arch` builds.

use super::configs::{ClipTextConfig, UNetJson, VaeJson};
use super::Family;
use serde::{Deserialize, Serialize};

/// The configs of one architecture, as the model folder's config.json files would hold them.
#[derive(Debug, Clone, Deserialize)]
pub struct ArchConfigs {
    /// The scheduler config of the model.
    pub scheduler: serde_json::Value,
    pub unet: UNetJson,
    pub vae: VaeJson,
    pub text_encoder: ClipTextConfig,
    #[serde(default)]
    pub text_encoder_2: Option<ClipTextConfig>,
}

/// The file of a family's reference config, and its text.
pub(crate) fn file(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::Sd1 => ("sd15.json", include_str!("../../models/arch/sd15.json")),
        // SD 2.1 (768, v-prediction), as the SD 2.x single files most shared; an ε file
        // (2.x-base) is told by its weights (`ReferenceVariant::Sd2Epsilon`).
        Family::Sd2 => ("sd21.json", include_str!("../../models/arch/sd21.json")),
        Family::Sdxl => ("sdxl.json", include_str!("../../models/arch/sdxl.json")),
    }
}

/// The parsed reference config of `family`, as `variant` changes it.
pub(crate) fn configs_of(family: Family, variant: ReferenceVariant) -> ArchConfigs {
    let mut c = configs(family);
    variant.apply(&mut c);
    c
}

/// The parsed reference config of `family`.
pub(crate) fn configs(family: Family) -> ArchConfigs {
    let (name, json) = file(family);
    // The files are compiled in and parsed by a test, so a failure is a build bug.
    serde_json::from_str(json).unwrap_or_else(|e| panic!("models/arch/{name} is invalid: {e}"))
}

/// What a single file's weights say beyond its family, when no `--config` describes it: the
/// reference config as it is, or with another prediction type (ComfyUI's
/// comfy/supported_models.py `model_type`). Recorded in the recipe's source, so a replay uses
/// what the image was made with; recipes from before it read as `AsIs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferenceVariant {
    /// The family's reference config unchanged (SD 1.5 ε, SD 2.1 768 v-prediction, SDXL ε).
    #[default]
    AsIs,
    /// An ε-prediction SD 2.x (2.0/2.1-base, 512 px).
    Sd2Epsilon,
    /// A v-prediction SDXL (the file holds a `v_pred` key).
    SdxlV,
    /// A v-prediction SDXL trained with zero terminal SNR (`v_pred` and `ztsnr` keys).
    SdxlVZsnr,
}

impl ReferenceVariant {
    pub fn is_as_is(&self) -> bool {
        *self == ReferenceVariant::AsIs
    }

    /// The reference config `c` changed as this variant says.
    pub(crate) fn apply(self, c: &mut ArchConfigs) {
        let scheduler = &mut c.scheduler;
        match self {
            ReferenceVariant::AsIs => {}
            ReferenceVariant::Sd2Epsilon => {
                // stable-diffusion-2-base's scheduler and unet configs: ε, 512 px (64 latents).
                scheduler["prediction_type"] = "epsilon".into();
                c.unet.sample_size = Some(64);
            }
            ReferenceVariant::SdxlV | ReferenceVariant::SdxlVZsnr => {
                scheduler["prediction_type"] = "v_prediction".into();
                if self == ReferenceVariant::SdxlVZsnr {
                    scheduler["rescale_betas_zero_snr"] = true.into();
                }
            }
        }
    }
}
