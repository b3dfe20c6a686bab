//! What a single file's weights say beyond its family, when no `--config` describes them: the
//! prediction type, as ComfyUI reads it (comfy/supported_models.py `SD20.model_type` and
//! `SDXL.model_type`; A1111 reads SD 2.x the same way in modules/sd_models_config.py).

use super::detect::UNET;
use super::Checkpoint;
use crate::models::reference::ReferenceVariant;
use crate::models::Family;
use crate::Result;
use candle_core::{DType, Device};

/// The SD 2.x tensor whose spread tells v-prediction (768-v) from ε (base) weights.
const SD2_PROBE: &str = "output_blocks.11.1.transformer_blocks.0.norm1.bias";
/// ComfyUI's threshold on its population standard deviation ("not sure how well this will
/// actually work"; it separates SD 2.0/2.1 768-v from 2.0/2.1-base).
const SD2_V_STD: f64 = 0.09;

/// The variant of its family's reference config `checkpoint` needs: SD 2.x is ε when the probe
/// tensor's standard deviation is at most 0.09 (a file without the tensor, unlike any SD 2.x
/// release, keeps the 768-v reference); SDXL with a `v_pred` key is v-prediction, with
/// `ztsnr` also zero terminal SNR.
pub(crate) fn of(checkpoint: &Checkpoint) -> Result<ReferenceVariant> {
    let has = |k: &str| checkpoint.header.tensors.contains_key(k);
    Ok(match checkpoint.family {
        Family::Sd1 => ReferenceVariant::AsIs,
        Family::Sd2 => {
            let probe = format!("{UNET}{SD2_PROBE}");
            if !has(&probe) {
                return Ok(ReferenceVariant::AsIs);
            }
            match population_std(checkpoint, &probe)? > SD2_V_STD {
                true => ReferenceVariant::AsIs,
                false => ReferenceVariant::Sd2Epsilon,
            }
        }
        Family::Sdxl => match (has("v_pred"), has("ztsnr")) {
            (false, _) => ReferenceVariant::AsIs,
            (true, false) => ReferenceVariant::SdxlV,
            (true, true) => ReferenceVariant::SdxlVZsnr,
        },
    })
}

/// torch's `std(unbiased=False)` of one tensor of the file, computed in f64.
fn population_std(checkpoint: &Checkpoint, key: &str) -> Result<f64> {
    let file = seedling_kernels::mmap::safetensors(&checkpoint.path)?;
    let values: Vec<f64> = file
        .load(key, &Device::Cpu)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1()?;
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    Ok(var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::single_file::header::Header;
    use candle_core::Tensor;
    use std::collections::HashMap;

    /// A checkpoint of `family` whose file holds `tensors` (only the header and the probed
    /// tensor matter here).
    fn checkpoint(dir: &std::path::Path, family: Family, tensors: &[(&str, Tensor)]) -> Checkpoint {
        let path = dir.join(format!("{}.safetensors", tensors.len()));
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(k, t)| (k.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        Checkpoint {
            header: Header::read(&path).unwrap(),
            path,
            family,
        }
    }

    /// ±s alternating: population standard deviation s.
    fn spread(s: f32) -> Tensor {
        let v: Vec<f32> = (0..1280).map(|i| if i % 2 == 0 { s } else { -s }).collect();
        Tensor::new(v, &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap()
    }

    #[test]
    fn sd2_prediction_follows_the_probe_and_sdxl_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let probe = format!("{UNET}{SD2_PROBE}");
        let one = || Tensor::ones(1, DType::F32, &Device::Cpu).unwrap();
        let of = |family, tensors: &[(&str, Tensor)]| of(&checkpoint(d, family, tensors)).unwrap();
        assert_eq!(
            of(Family::Sd2, &[(&probe, spread(0.2))]),
            ReferenceVariant::AsIs
        );
        assert_eq!(
            of(Family::Sd2, &[(&probe, spread(0.05)), ("x", one())]),
            ReferenceVariant::Sd2Epsilon
        );
        assert_eq!(of(Family::Sd2, &[("other", one())]), ReferenceVariant::AsIs);
        assert_eq!(
            of(Family::Sdxl, &[("other", one())]),
            ReferenceVariant::AsIs
        );
        assert_eq!(
            of(Family::Sdxl, &[("v_pred", one())]),
            ReferenceVariant::SdxlV
        );
        assert_eq!(
            of(Family::Sdxl, &[("v_pred", one()), ("ztsnr", one())]),
            ReferenceVariant::SdxlVZsnr
        );
    }

    #[test]
    fn variants_change_the_reference_config() {
        use crate::models::reference::configs_of;
        let eps = configs_of(Family::Sd2, ReferenceVariant::Sd2Epsilon);
        assert_eq!(eps.scheduler["prediction_type"], "epsilon");
        assert_eq!(eps.unet.sample_size, Some(64));
        let v = configs_of(Family::Sd2, ReferenceVariant::AsIs);
        assert_eq!(v.scheduler["prediction_type"], "v_prediction");
        assert_eq!(v.unet.sample_size, Some(96));
        let xl = configs_of(Family::Sdxl, ReferenceVariant::SdxlVZsnr);
        assert_eq!(xl.scheduler["prediction_type"], "v_prediction");
        assert_eq!(xl.scheduler["rescale_betas_zero_snr"], true);
    }
}
