//! The reference configs shipped in `models/arch/` (SD 1.5, SD 2.1, SDXL base at full size):
//! what a single-file checkpoint's shapes cannot tell (head counts, the scheduler) when no
//! `--config` is given, and the architectures `seedling bench --arch` builds.

use super::configs::{ClipTextConfig, UNetJson, VaeJson};
use super::Family;
use serde::Deserialize;

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
        // SD 2.1 (768, v-prediction), as the SD 2.x single files most shared; an ε model
        // (2.x-base) needs its configs (`--config`): nothing in the file tells them apart.
        Family::Sd2 => ("sd21.json", include_str!("../../models/arch/sd21.json")),
        Family::Sdxl => ("sdxl.json", include_str!("../../models/arch/sdxl.json")),
    }
}

/// The parsed reference config of `family`.
pub(crate) fn configs(family: Family) -> ArchConfigs {
    let (name, json) = file(family);
    // The files are compiled in and parsed by a test, so a failure is a build bug.
    serde_json::from_str(json).unwrap_or_else(|e| panic!("models/arch/{name} is invalid: {e}"))
}
