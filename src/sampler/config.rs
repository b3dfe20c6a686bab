//! A model's `scheduler/scheduler_config.json` and its resolution for one sampler class.
//!
//! Resolution follows diffusers 0.42 `<Class>.from_config(config)`: a key the class's
//! `__init__` takes is read from the file; a key missing from the file gets that class's own
//! default (so one file gives DDIM "leading" spacing and Euler "linspace" when it has no
//! `timestep_spacing`); keys the class does not take are ignored. Settings we have not
//! implemented are refused with an error that names them, never silently approximated.
//!
//! Not reproduced here: `StableDiffusionPipeline.__init__` rewrites a loaded scheduler's
//! `steps_offset != 1` to 1 and `clip_sample: true` to false (a deprecation shim); that is
//! pipeline behaviour, not the scheduler class's.

use super::schedule::{BetaSchedule, TimestepSpacing};
use super::SamplerKind;
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

/// The keys of `scheduler_config.json` that DDIM, Euler and Euler-ancestral read, as written
/// (every one optional; JSON `null` counts as missing). Unknown keys are ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SchedulerConfig {
    /// The diffusers class the file was written for (informational: `resolve` picks the class).
    #[serde(rename = "_class_name")]
    pub class_name: Option<String>,
    pub num_train_timesteps: Option<usize>,
    pub beta_start: Option<f64>,
    pub beta_end: Option<f64>,
    pub beta_schedule: Option<String>,
    pub trained_betas: Option<Vec<f64>>,
    pub prediction_type: Option<String>,
    pub timestep_spacing: Option<String>,
    pub steps_offset: Option<i64>,
    pub rescale_betas_zero_snr: Option<bool>,
    // DDIMScheduler only.
    pub set_alpha_to_one: Option<bool>,
    pub clip_sample: Option<bool>,
    pub clip_sample_range: Option<f64>,
    pub thresholding: Option<bool>,
    // EulerDiscreteScheduler only.
    pub interpolation_type: Option<String>,
    pub use_karras_sigmas: Option<bool>,
    pub use_exponential_sigmas: Option<bool>,
    pub use_beta_sigmas: Option<bool>,
    pub timestep_type: Option<String>,
    pub final_sigmas_type: Option<String>,
}

/// What the model predicts (`prediction_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionType {
    /// The noise ε.
    Epsilon,
    /// v = sqrt(ᾱ)·ε − sqrt(1−ᾱ)·x₀ (Salimans & Ho 2022, section 4; Imagen Video 2.4).
    VPrediction,
    /// The clean sample x₀ ("sample"; Euler also accepts "original_sample").
    Sample,
}

impl PredictionType {
    pub fn name(self) -> &'static str {
        match self {
            PredictionType::Epsilon => "epsilon",
            PredictionType::VPrediction => "v_prediction",
            PredictionType::Sample => "sample",
        }
    }
}

/// Euler's `final_sigmas_type`: the sigma after the last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalSigmas {
    Zero,
    /// The sigma of training timestep 0.
    SigmaMin,
}

impl FinalSigmas {
    pub fn name(self) -> &'static str {
        match self {
            FinalSigmas::Zero => "zero",
            FinalSigmas::SigmaMin => "sigma_min",
        }
    }
}

/// Every parameter one sampler class uses, with that class's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedConfig {
    pub kind: SamplerKind,
    pub num_train_timesteps: usize,
    pub beta_schedule: BetaSchedule,
    pub rescale_betas_zero_snr: bool,
    pub prediction_type: PredictionType,
    pub timestep_spacing: TimestepSpacing,
    pub steps_offset: i64,
    /// DDIM only (false for the Euler samplers, which have no such setting).
    pub set_alpha_to_one: bool,
    /// DDIM only: `Some(clip_sample_range)` when `clip_sample` is on.
    pub clip_sample_range: Option<f64>,
    /// Euler only (`Zero` for the others, which always end at sigma 0).
    pub final_sigmas: FinalSigmas,
}

/// diffusers' `__init__` defaults shared by DDIM, Euler and Euler-ancestral.
const DEFAULT_NUM_TRAIN_TIMESTEPS: usize = 1000;
const DEFAULT_BETA_START: f64 = 0.0001;
const DEFAULT_BETA_END: f64 = 0.02;

fn unsupported(class: &str, setting: &str) -> Error {
    Error::Model(format!(
        "scheduler setting {setting} is not supported yet ({class}); \
         remove it from scheduler_config.json or pick another sampler"
    ))
}

impl SchedulerConfig {
    /// Reads `scheduler_config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("reading scheduler config", path, e))?;
        Self::from_json(&text)
            .map_err(|e| Error::Model(format!("scheduler config {}: {e}", path.display())))
    }

    /// Parses the text of a `scheduler_config.json`. Keys listed in `_use_default_values`
    /// (written by diffusers for values it defaulted) are dropped, as diffusers'
    /// `extract_init_dict` does, so each class applies its own default to them.
    pub fn from_json(text: &str) -> Result<Self> {
        let bad = |e: serde_json::Error| {
            Error::Model(format!(
                "scheduler_config.json is not valid: {e}; fix the file or re-download the model"
            ))
        };
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(bad)?;
        let Some(map) = value.as_object_mut() else {
            return Err(Error::Model(
                "scheduler_config.json must hold a JSON object; fix the file or re-download \
                 the model"
                    .into(),
            ));
        };
        if let Some(serde_json::Value::Array(defaulted)) = map.remove("_use_default_values") {
            for key in defaulted.iter().filter_map(|k| k.as_str()) {
                map.remove(key);
            }
        }
        serde_json::from_value(value).map_err(bad)
    }

    /// The parameters of `kind`'s diffusers class given this config: the file's value for each
    /// key the class takes, the class's `__init__` default for each missing one.
    pub fn resolve(&self, kind: SamplerKind) -> Result<ResolvedConfig> {
        let class = kind.diffusers_class();
        let num_train_timesteps = self
            .num_train_timesteps
            .unwrap_or(DEFAULT_NUM_TRAIN_TIMESTEPS);
        if num_train_timesteps == 0 {
            return Err(Error::Model(
                "scheduler num_train_timesteps is 0; it must be at least 1 (usually 1000)".into(),
            ));
        }
        let resolved = ResolvedConfig {
            kind,
            num_train_timesteps,
            beta_schedule: self.beta_schedule(class, num_train_timesteps)?,
            rescale_betas_zero_snr: self.rescale_betas_zero_snr.unwrap_or(false),
            prediction_type: self.prediction_type(kind)?,
            timestep_spacing: self.timestep_spacing(kind)?,
            steps_offset: self.steps_offset.unwrap_or(0),
            set_alpha_to_one: kind == SamplerKind::Ddim && self.set_alpha_to_one.unwrap_or(true),
            clip_sample_range: self.clip_sample_range(kind)?,
            final_sigmas: self.final_sigmas(kind)?,
        };
        if kind == SamplerKind::Euler {
            self.check_euler_only(&resolved)?;
        }
        Ok(resolved)
    }

    fn beta_schedule(&self, class: &str, num_train_timesteps: usize) -> Result<BetaSchedule> {
        // diffusers checks trained_betas first: with them, beta_schedule is not read.
        if let Some(betas) = &self.trained_betas {
            if betas.len() != num_train_timesteps {
                return Err(Error::Model(format!(
                    "scheduler trained_betas has {} values but num_train_timesteps is \
                     {num_train_timesteps}; they must agree",
                    betas.len()
                )));
            }
            if let Some(b) = betas.iter().find(|b| !(0.0..1.0).contains(*b)) {
                return Err(Error::Model(format!(
                    "scheduler trained_betas holds {b}; every beta must be in [0, 1)"
                )));
            }
            return Ok(BetaSchedule::Trained(betas.clone()));
        }
        let start = self.beta_start.unwrap_or(DEFAULT_BETA_START);
        let end = self.beta_end.unwrap_or(DEFAULT_BETA_END);
        let linear_range_ok = [start, end].iter().all(|b| (0.0..1.0).contains(b));
        let name = self.beta_schedule.as_deref().unwrap_or("linear");
        if matches!(name, "linear" | "scaled_linear") && !linear_range_ok {
            return Err(Error::Model(format!(
                "scheduler beta_start {start} / beta_end {end} must both be in [0, 1)"
            )));
        }
        match name {
            "linear" => Ok(BetaSchedule::Linear { start, end }),
            "scaled_linear" => Ok(BetaSchedule::ScaledLinear { start, end }),
            "squaredcos_cap_v2" => Ok(BetaSchedule::SquaredCosCapV2),
            other => Err(unsupported(class, &format!("beta_schedule '{other}'"))),
        }
    }

    fn prediction_type(&self, kind: SamplerKind) -> Result<PredictionType> {
        let class = kind.diffusers_class();
        match (self.prediction_type.as_deref().unwrap_or("epsilon"), kind) {
            ("epsilon", _) => Ok(PredictionType::Epsilon),
            ("v_prediction", _) => Ok(PredictionType::VPrediction),
            ("sample", SamplerKind::Ddim | SamplerKind::Euler) => Ok(PredictionType::Sample),
            ("original_sample", SamplerKind::Euler) => Ok(PredictionType::Sample),
            (other, _) => Err(unsupported(class, &format!("prediction_type '{other}'"))),
        }
    }

    fn timestep_spacing(&self, kind: SamplerKind) -> Result<TimestepSpacing> {
        let default = match kind {
            SamplerKind::Ddim => "leading",
            SamplerKind::Euler | SamplerKind::EulerAncestral => "linspace",
        };
        match self.timestep_spacing.as_deref().unwrap_or(default) {
            "leading" => Ok(TimestepSpacing::Leading),
            "trailing" => Ok(TimestepSpacing::Trailing),
            "linspace" => Ok(TimestepSpacing::Linspace),
            other => Err(unsupported(
                kind.diffusers_class(),
                &format!("timestep_spacing '{other}'"),
            )),
        }
    }

    fn clip_sample_range(&self, kind: SamplerKind) -> Result<Option<f64>> {
        if kind != SamplerKind::Ddim {
            return Ok(None);
        }
        if self.thresholding.unwrap_or(false) {
            return Err(unsupported(kind.diffusers_class(), "thresholding=true"));
        }
        if !self.clip_sample.unwrap_or(true) {
            return Ok(None);
        }
        let range = self.clip_sample_range.unwrap_or(1.0);
        if !(range.is_finite() && range > 0.0) {
            return Err(Error::Model(format!(
                "scheduler clip_sample_range {range} must be a positive number (usually 1.0)"
            )));
        }
        Ok(Some(range))
    }

    fn final_sigmas(&self, kind: SamplerKind) -> Result<FinalSigmas> {
        if kind != SamplerKind::Euler {
            return Ok(FinalSigmas::Zero);
        }
        match self.final_sigmas_type.as_deref().unwrap_or("zero") {
            "zero" => Ok(FinalSigmas::Zero),
            "sigma_min" => Ok(FinalSigmas::SigmaMin),
            other => Err(unsupported(
                kind.diffusers_class(),
                &format!("final_sigmas_type '{other}'"),
            )),
        }
    }

    /// EulerDiscreteScheduler's extra settings: only the defaults are implemented.
    fn check_euler_only(&self, resolved: &ResolvedConfig) -> Result<()> {
        let class = resolved.kind.diffusers_class();
        match self.interpolation_type.as_deref().unwrap_or("linear") {
            "linear" => {}
            other => return Err(unsupported(class, &format!("interpolation_type '{other}'"))),
        }
        let sigma_kinds = [
            ("use_karras_sigmas", self.use_karras_sigmas),
            ("use_exponential_sigmas", self.use_exponential_sigmas),
            ("use_beta_sigmas", self.use_beta_sigmas),
        ];
        if let Some((name, _)) = sigma_kinds.iter().find(|(_, on)| *on == Some(true)) {
            return Err(unsupported(class, &format!("{name}=true")));
        }
        // diffusers only acts on timestep_type "continuous" together with v_prediction; with
        // any other prediction type it behaves exactly like "discrete".
        match self.timestep_type.as_deref().unwrap_or("discrete") {
            "discrete" => Ok(()),
            "continuous" if resolved.prediction_type != PredictionType::VPrediction => Ok(()),
            other => Err(unsupported(
                class,
                &format!(
                    "timestep_type '{other}' with prediction_type '{}'",
                    resolved.prediction_type.name()
                ),
            )),
        }
    }
}

impl ResolvedConfig {
    /// `alphas_cumprod` as this class builds it in `__init__` (see `schedule` for precision).
    /// With `rescale_betas_zero_snr` the Euler samplers set the last value to 2^-24 so that the
    /// largest sigma stays finite; DDIM keeps the exact 0.
    pub fn alphas_cumprod(&self) -> Vec<f64> {
        use super::schedule::{alphas_cumprod, betas, rescale_zero_terminal_snr};
        let mut b = betas(&self.beta_schedule, self.num_train_timesteps);
        if self.rescale_betas_zero_snr {
            b = rescale_zero_terminal_snr(&b);
        }
        let mut ac = alphas_cumprod(&b);
        if self.rescale_betas_zero_snr && self.kind != SamplerKind::Ddim {
            if let Some(last) = ac.last_mut() {
                *last = 2f64.powi(-24);
            }
        }
        ac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> SchedulerConfig {
        SchedulerConfig::from_json(json).unwrap()
    }

    #[test]
    fn empty_config_gets_each_class_defaults() {
        let c = cfg("{}");
        let ddim = c.resolve(SamplerKind::Ddim).unwrap();
        assert_eq!(ddim.timestep_spacing, TimestepSpacing::Leading);
        assert_eq!(ddim.clip_sample_range, Some(1.0));
        assert!(ddim.set_alpha_to_one);
        assert_eq!(
            ddim.beta_schedule,
            BetaSchedule::Linear {
                start: 0.0001,
                end: 0.02
            }
        );
        assert_eq!(ddim.prediction_type, PredictionType::Epsilon);
        assert_eq!(ddim.steps_offset, 0);
        assert_eq!(ddim.num_train_timesteps, 1000);
        for kind in [SamplerKind::Euler, SamplerKind::EulerAncestral] {
            let r = c.resolve(kind).unwrap();
            assert_eq!(r.timestep_spacing, TimestepSpacing::Linspace);
            assert_eq!(r.clip_sample_range, None);
            assert!(!r.set_alpha_to_one);
            assert_eq!(r.final_sigmas, FinalSigmas::Zero);
        }
    }

    #[test]
    fn nulls_and_unknown_keys_are_ignored() {
        let c = cfg(
            r#"{"trained_betas": null, "skip_prk_steps": true, "_class_name": "PNDMScheduler",
                        "use_karras_sigmas": null, "beta_schedule": "scaled_linear"}"#,
        );
        assert_eq!(c.class_name.as_deref(), Some("PNDMScheduler"));
        let r = c.resolve(SamplerKind::Euler).unwrap();
        assert_eq!(r.beta_schedule.name(), "scaled_linear");
    }

    #[test]
    fn use_default_values_keys_fall_back_to_the_class_default() {
        let c =
            cfg(r#"{"timestep_spacing": "leading", "_use_default_values": ["timestep_spacing"]}"#);
        let r = c.resolve(SamplerKind::Euler).unwrap();
        assert_eq!(r.timestep_spacing, TimestepSpacing::Linspace);
    }

    #[test]
    fn class_specific_keys_only_affect_their_class() {
        // DDIM has no use_karras_sigmas; Euler-ancestral has no interpolation_type; Euler has no
        // thresholding: from_config ignores keys a class does not take.
        let c = cfg(r#"{"use_karras_sigmas": true, "interpolation_type": "log_linear"}"#);
        assert!(c.resolve(SamplerKind::Ddim).is_ok());
        assert!(c.resolve(SamplerKind::EulerAncestral).is_ok());
        assert!(c.resolve(SamplerKind::Euler).is_err());
        let c = cfg(r#"{"thresholding": true}"#);
        assert!(c.resolve(SamplerKind::Euler).is_ok());
        assert!(c.resolve(SamplerKind::Ddim).is_err());
    }

    fn model_error(json: &str, kind: SamplerKind) -> String {
        match cfg(json).resolve(kind) {
            Err(Error::Model(m)) => m,
            other => panic!("expected a Model error for {json}, got {other:?}"),
        }
    }

    #[test]
    fn unsupported_settings_are_named() {
        let cases = [
            (
                r#"{"use_karras_sigmas": true}"#,
                SamplerKind::Euler,
                "use_karras_sigmas",
            ),
            (
                r#"{"use_beta_sigmas": true}"#,
                SamplerKind::Euler,
                "use_beta_sigmas",
            ),
            (
                r#"{"interpolation_type": "log_linear"}"#,
                SamplerKind::Euler,
                "log_linear",
            ),
            (
                r#"{"timestep_type": "continuous", "prediction_type": "v_prediction"}"#,
                SamplerKind::Euler,
                "continuous",
            ),
            (
                r#"{"beta_schedule": "sigmoid"}"#,
                SamplerKind::Ddim,
                "sigmoid",
            ),
            (
                r#"{"timestep_spacing": "karras"}"#,
                SamplerKind::Ddim,
                "karras",
            ),
            (
                r#"{"prediction_type": "sample"}"#,
                SamplerKind::EulerAncestral,
                "sample",
            ),
            (r#"{"prediction_type": "flow"}"#, SamplerKind::Ddim, "flow"),
            (
                r#"{"thresholding": true}"#,
                SamplerKind::Ddim,
                "thresholding",
            ),
            (
                r#"{"final_sigmas_type": "one"}"#,
                SamplerKind::Euler,
                "final_sigmas_type",
            ),
        ];
        for (json, kind, setting) in cases {
            let msg = model_error(json, kind);
            assert!(msg.contains(setting), "{msg}");
            assert!(msg.contains("not supported yet"), "{msg}");
        }
    }

    #[test]
    fn continuous_timesteps_without_v_prediction_are_discrete() {
        let c = cfg(r#"{"timestep_type": "continuous"}"#);
        assert!(c.resolve(SamplerKind::Euler).is_ok());
    }

    #[test]
    fn trained_betas_override_the_schedule_and_must_fit() {
        let c = cfg(
            r#"{"num_train_timesteps": 3, "trained_betas": [0.1, 0.2, 0.3],
                        "beta_schedule": "no_such_schedule"}"#,
        );
        let r = c.resolve(SamplerKind::Ddim).unwrap();
        assert_eq!(r.beta_schedule, BetaSchedule::Trained(vec![0.1, 0.2, 0.3]));
        let msg = model_error(
            r#"{"num_train_timesteps": 4, "trained_betas": [0.1, 0.2, 0.3]}"#,
            SamplerKind::Ddim,
        );
        assert!(msg.contains("trained_betas has 3 values"), "{msg}");
    }

    #[test]
    fn bad_json_and_missing_files_are_clear_errors() {
        assert!(matches!(
            SchedulerConfig::from_json("{not json"),
            Err(Error::Model(_))
        ));
        assert!(matches!(
            SchedulerConfig::from_json(r#"{"beta_start": "abc"}"#),
            Err(Error::Model(_))
        ));
        assert!(matches!(
            SchedulerConfig::from_json("[1, 2]"),
            Err(Error::Model(_))
        ));
        let err = SchedulerConfig::from_file("/nonexistent/scheduler_config.json").unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
        assert!(err
            .to_string()
            .contains("/nonexistent/scheduler_config.json"));
    }

    #[test]
    fn zero_snr_euler_caps_the_last_alpha() {
        let c = cfg(
            r#"{"rescale_betas_zero_snr": true, "beta_schedule": "scaled_linear",
                        "beta_start": 0.00085, "beta_end": 0.012}"#,
        );
        let euler = c.resolve(SamplerKind::Euler).unwrap().alphas_cumprod();
        let ddim = c.resolve(SamplerKind::Ddim).unwrap().alphas_cumprod();
        assert_eq!(*euler.last().unwrap(), 2f64.powi(-24));
        assert_eq!(*ddim.last().unwrap(), 0.0);
    }
}
