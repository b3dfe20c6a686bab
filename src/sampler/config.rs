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

use super::kind::SamplerKind;
use super::schedule::{BetaSchedule, FinalSigmas, ScheduleParams, TimestepSpacing};
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

/// The keys of `scheduler_config.json` that our sampler classes read, as written (every one
/// optional; JSON `null` counts as missing). Unknown keys are ignored.
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
    // DDIM, PNDM and LCM.
    pub set_alpha_to_one: Option<bool>,
    // DDIM and LCM.
    pub clip_sample: Option<bool>,
    pub clip_sample_range: Option<f64>,
    pub thresholding: Option<bool>,
    // EulerDiscreteScheduler (and partly DPM-Solver / UniPC).
    pub interpolation_type: Option<String>,
    pub use_karras_sigmas: Option<bool>,
    pub use_exponential_sigmas: Option<bool>,
    pub use_beta_sigmas: Option<bool>,
    pub timestep_type: Option<String>,
    pub final_sigmas_type: Option<String>,
    /// Euler and UniPC: fixed ends of the Karras range (else the schedule's own).
    pub sigma_min: Option<f64>,
    pub sigma_max: Option<f64>,
    // DPMSolverMultistepScheduler and UniPCMultistepScheduler.
    pub solver_order: Option<usize>,
    pub solver_type: Option<String>,
    pub lower_order_final: Option<bool>,
    pub use_flow_sigmas: Option<bool>,
    pub use_dynamic_shifting: Option<bool>,
    // DPMSolverMultistepScheduler only.
    pub euler_at_final: Option<bool>,
    pub use_lu_lambdas: Option<bool>,
    pub lambda_min_clipped: Option<f64>,
    pub variance_type: Option<String>,
    // UniPCMultistepScheduler only.
    pub predict_x0: Option<bool>,
    pub disable_corrector: Option<Vec<i64>>,
    pub solver_p: Option<serde_json::Value>,
    pub shift_terminal: Option<serde_json::Value>,
    // PNDMScheduler only.
    pub skip_prk_steps: Option<bool>,
    // LCMScheduler only.
    pub original_inference_steps: Option<usize>,
    pub timestep_scaling: Option<f64>,
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

/// Every parameter one sampler class uses, with that class's defaults filled in. Fields a
/// class does not have hold the value that makes them inert (noted per field).
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedConfig {
    pub kind: SamplerKind,
    pub num_train_timesteps: usize,
    pub beta_schedule: BetaSchedule,
    /// false for PNDM, which has no such setting.
    pub rescale_betas_zero_snr: bool,
    pub prediction_type: PredictionType,
    /// Not read by LCM, whose timesteps come from `original_inference_steps`.
    pub timestep_spacing: TimestepSpacing,
    pub steps_offset: i64,
    /// DDIM, PNDM, LCM: the alpha after the last step is 1 (else `alphas_cumprod[0]`).
    /// false for the others.
    pub set_alpha_to_one: bool,
    /// DDIM, LCM: `Some(clip_sample_range)` when `clip_sample` is on. None for the others.
    pub clip_sample_range: Option<f64>,
    /// Euler, DPM-Solver, UniPC (`Zero` for the others, which always end at sigma 0).
    pub final_sigmas: FinalSigmas,
    /// Karras sigmas (diffusers `use_karras_sigmas`): from the file for the classes that take
    /// the key; `build` turns it on for `ScheduleKind::Karras`.
    pub karras: bool,
    /// Euler, UniPC: fixed ends of the Karras range (`sigma_min` / `sigma_max`). None otherwise.
    pub karras_sigma_min: Option<f64>,
    pub karras_sigma_max: Option<f64>,
    /// DPM-Solver, UniPC: use lower orders near the end (`lower_order_final`).
    pub lower_order_final: bool,
    /// DPM-Solver: first order at the last step (`euler_at_final`).
    pub euler_at_final: bool,
    /// UniPC: `solver_order` (1 or 2). dpmpp_2m is order 2 by name.
    pub solver_order: usize,
    /// LCM: `original_inference_steps` (the distillation schedule) and `timestep_scaling`.
    pub original_inference_steps: usize,
    pub timestep_scaling: f64,
}

/// diffusers' `__init__` defaults for the beta schedule: LCM's are SD's scaled_linear
/// 0.00085..0.012; every other class defaults to linear 0.0001..0.02.
const DEFAULT_NUM_TRAIN_TIMESTEPS: usize = 1000;
const fn default_betas(kind: SamplerKind) -> (f64, f64, &'static str) {
    match kind {
        SamplerKind::Lcm => (0.00085, 0.012, "scaled_linear"),
        _ => (0.0001, 0.02, "linear"),
    }
}

fn unsupported(class: &str, setting: &str) -> Error {
    Error::Model(format!(
        "scheduler setting {setting} is not supported yet ({class}); \
         remove it from scheduler_config.json or pick another sampler"
    ))
}

/// Python's `json.dump` writes float infinities as the bare token `-Infinity`, which is not
/// JSON: DPMSolverMultistepScheduler saves its default `lambda_min_clipped` that way. Outside
/// string literals that token becomes `null`, which every class reads as its default (-inf).
fn python_json_to_strict(text: &str) -> String {
    const TOKEN: &str = "-Infinity";
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !in_string && rest.starts_with(TOKEN) {
            out.push_str("null");
            rest = &rest[TOKEN.len()..];
            continue;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
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
        let text = python_json_to_strict(text);
        let mut value: serde_json::Value = serde_json::from_str(&text).map_err(bad)?;
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
        use SamplerKind::*;
        let class = kind.diffusers_class();
        let num_train_timesteps = self
            .num_train_timesteps
            .unwrap_or(DEFAULT_NUM_TRAIN_TIMESTEPS);
        if num_train_timesteps == 0 {
            return Err(Error::Model(
                "scheduler num_train_timesteps is 0; it must be at least 1 (usually 1000)".into(),
            ));
        }
        let has_karras_key = matches!(kind, Euler | DpmPp2m | UniPc);
        let has_sigma_range = matches!(kind, Euler | UniPc);
        let multistep = matches!(kind, DpmPp2m | UniPc);
        let resolved = ResolvedConfig {
            kind,
            num_train_timesteps,
            beta_schedule: self.beta_schedule(kind, num_train_timesteps)?,
            rescale_betas_zero_snr: kind != Pndm && self.rescale_betas_zero_snr.unwrap_or(false),
            prediction_type: self.prediction_type(kind)?,
            timestep_spacing: self.timestep_spacing(kind)?,
            steps_offset: self.steps_offset.unwrap_or(0),
            set_alpha_to_one: match kind {
                Ddim | Lcm => self.set_alpha_to_one.unwrap_or(true),
                Pndm => self.set_alpha_to_one.unwrap_or(false),
                _ => false,
            },
            clip_sample_range: self.clip_sample_range(kind)?,
            final_sigmas: self.final_sigmas(kind)?,
            karras: has_karras_key && self.use_karras_sigmas.unwrap_or(false),
            karras_sigma_min: self.sigma_min.filter(|_| has_sigma_range),
            karras_sigma_max: self.sigma_max.filter(|_| has_sigma_range),
            lower_order_final: multistep && self.lower_order_final.unwrap_or(true),
            euler_at_final: kind == DpmPp2m && self.euler_at_final.unwrap_or(false),
            solver_order: match kind {
                UniPc => self.solver_order.unwrap_or(2),
                _ => 2,
            },
            original_inference_steps: self.original_inference_steps.unwrap_or(50),
            timestep_scaling: self.timestep_scaling.unwrap_or(10.0),
        };
        if has_karras_key {
            self.check_sigma_kinds(class)?;
        }
        if has_sigma_range {
            for (name, v) in [("sigma_min", self.sigma_min), ("sigma_max", self.sigma_max)] {
                if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
                    return Err(Error::Model(format!(
                        "scheduler {name} {v} must be a positive number; fix it or remove it"
                    )));
                }
            }
        }
        match kind {
            Euler => self.check_euler_only(&resolved)?,
            DpmPp2m => self.check_dpm_only(class)?,
            UniPc => self.check_unipc_only(class, &resolved)?,
            Pndm => self.check_pndm_only(class)?,
            Lcm => self.check_lcm_only(class, &resolved)?,
            Ddim | EulerAncestral => {}
        }
        Ok(resolved)
    }

    fn beta_schedule(&self, kind: SamplerKind, num_train_timesteps: usize) -> Result<BetaSchedule> {
        let class = kind.diffusers_class();
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
        let (default_start, default_end, default_name) = default_betas(kind);
        let start = self.beta_start.unwrap_or(default_start);
        let end = self.beta_end.unwrap_or(default_end);
        let linear_range_ok = [start, end].iter().all(|b| (0.0..1.0).contains(b));
        let name = self.beta_schedule.as_deref().unwrap_or(default_name);
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
        use SamplerKind::*;
        let class = kind.diffusers_class();
        // Which classes take which: EulerAncestral and PNDM raise on "sample"; only Euler
        // also accepts the spelling "original_sample".
        match (self.prediction_type.as_deref().unwrap_or("epsilon"), kind) {
            ("epsilon", _) => Ok(PredictionType::Epsilon),
            ("v_prediction", _) => Ok(PredictionType::VPrediction),
            ("sample", Ddim | Euler | DpmPp2m | UniPc | Lcm) => Ok(PredictionType::Sample),
            ("original_sample", Euler) => Ok(PredictionType::Sample),
            (other, _) => Err(unsupported(class, &format!("prediction_type '{other}'"))),
        }
    }

    fn timestep_spacing(&self, kind: SamplerKind) -> Result<TimestepSpacing> {
        use SamplerKind::*;
        let default = match kind {
            Ddim | Pndm | Lcm => "leading",
            Euler | EulerAncestral | DpmPp2m | UniPc => "linspace",
        };
        match self.timestep_spacing.as_deref().unwrap_or(default) {
            "leading" => Ok(TimestepSpacing::Leading),
            "trailing" => Ok(TimestepSpacing::Trailing),
            "linspace" => Ok(TimestepSpacing::Linspace),
            // LCMScheduler stores timestep_spacing but never reads it.
            _ if kind == Lcm => Ok(TimestepSpacing::Leading),
            other => Err(unsupported(
                kind.diffusers_class(),
                &format!("timestep_spacing '{other}'"),
            )),
        }
    }

    fn clip_sample_range(&self, kind: SamplerKind) -> Result<Option<f64>> {
        let default_clip = match kind {
            SamplerKind::Ddim => true,
            SamplerKind::Lcm => false,
            _ => return Ok(None),
        };
        if self.thresholding.unwrap_or(false) {
            return Err(unsupported(kind.diffusers_class(), "thresholding=true"));
        }
        if !self.clip_sample.unwrap_or(default_clip) {
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
        if !matches!(
            kind,
            SamplerKind::Euler | SamplerKind::DpmPp2m | SamplerKind::UniPc
        ) {
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

    /// The sigma schedules other than the default and Karras (Euler, DPM-Solver, UniPC).
    fn check_sigma_kinds(&self, class: &str) -> Result<()> {
        let sigma_kinds = [
            ("use_exponential_sigmas", self.use_exponential_sigmas),
            ("use_beta_sigmas", self.use_beta_sigmas),
            ("use_lu_lambdas", self.use_lu_lambdas),
            ("use_flow_sigmas", self.use_flow_sigmas),
            ("use_dynamic_shifting", self.use_dynamic_shifting),
        ];
        match sigma_kinds.iter().find(|(_, on)| *on == Some(true)) {
            Some((name, _)) => Err(unsupported(class, &format!("{name}=true"))),
            None => Ok(()),
        }
    }

    /// EulerDiscreteScheduler's extra settings: only the defaults are implemented.
    fn check_euler_only(&self, resolved: &ResolvedConfig) -> Result<()> {
        let class = resolved.kind.diffusers_class();
        match self.interpolation_type.as_deref().unwrap_or("linear") {
            "linear" => {}
            other => return Err(unsupported(class, &format!("interpolation_type '{other}'"))),
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

    /// DPMSolverMultistepScheduler: dpmpp_2m fixes algorithm_type "dpmsolver++" and
    /// solver_order 2 (so those keys are not read); the rest must be the defaults we implement.
    fn check_dpm_only(&self, class: &str) -> Result<()> {
        if self.thresholding.unwrap_or(false) {
            return Err(unsupported(class, "thresholding=true"));
        }
        // diffusers maps UniPC's names ("bh1", "bh2", "logrho") to "midpoint".
        match self.solver_type.as_deref().unwrap_or("midpoint") {
            "midpoint" | "logrho" | "bh1" | "bh2" => {}
            other => return Err(unsupported(class, &format!("solver_type '{other}'"))),
        }
        if let Some(v) = self.variance_type.as_deref() {
            return Err(unsupported(class, &format!("variance_type '{v}'")));
        }
        match self.lambda_min_clipped {
            Some(l) if l != f64::NEG_INFINITY => {
                Err(unsupported(class, &format!("lambda_min_clipped {l}")))
            }
            _ => Ok(()),
        }
    }

    /// UniPCMultistepScheduler: bh2, predict_x0, order 1 or 2, corrector everywhere.
    fn check_unipc_only(&self, class: &str, resolved: &ResolvedConfig) -> Result<()> {
        if self.thresholding.unwrap_or(false) {
            return Err(unsupported(class, "thresholding=true"));
        }
        // diffusers maps DPM-Solver's names ("midpoint", "heun", "logrho") to "bh2".
        match self.solver_type.as_deref().unwrap_or("bh2") {
            "bh2" | "midpoint" | "heun" | "logrho" => {}
            other => return Err(unsupported(class, &format!("solver_type '{other}'"))),
        }
        if !self.predict_x0.unwrap_or(true) {
            return Err(unsupported(class, "predict_x0=false"));
        }
        if !(1..=2).contains(&resolved.solver_order) {
            return Err(unsupported(
                class,
                &format!("solver_order {} (use 1 or 2)", resolved.solver_order),
            ));
        }
        // Without lower_order_final a second-order last step to sigma 0 divides by zero.
        if !resolved.lower_order_final {
            return Err(unsupported(class, "lower_order_final=false"));
        }
        if self
            .disable_corrector
            .as_ref()
            .is_some_and(|d| !d.is_empty())
        {
            return Err(unsupported(class, "disable_corrector"));
        }
        if self.solver_p.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(unsupported(class, "solver_p"));
        }
        if self.shift_terminal.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(unsupported(class, "shift_terminal"));
        }
        Ok(())
    }

    /// PNDMScheduler: only the PLMS steps (`skip_prk_steps: true`, as Stable Diffusion's
    /// configs have); the class default `false` would start with Runge-Kutta steps.
    fn check_pndm_only(&self, class: &str) -> Result<()> {
        if self.skip_prk_steps != Some(true) {
            return Err(unsupported(
                class,
                "skip_prk_steps=false (the Runge-Kutta warm-up; SD configs set it true)",
            ));
        }
        Ok(())
    }

    fn check_lcm_only(&self, class: &str, resolved: &ResolvedConfig) -> Result<()> {
        let orig = resolved.original_inference_steps;
        if orig == 0 || orig > resolved.num_train_timesteps {
            return Err(Error::Model(format!(
                "scheduler original_inference_steps {orig} must be from 1 to \
                 num_train_timesteps ({}); usually 50",
                resolved.num_train_timesteps
            )));
        }
        if !resolved.timestep_scaling.is_finite() {
            return Err(unsupported(
                class,
                &format!("timestep_scaling {}", resolved.timestep_scaling),
            ));
        }
        Ok(())
    }
}

impl ResolvedConfig {
    /// `alphas_cumprod` as this class builds it in `__init__` (see `schedule` for precision).
    /// With `rescale_betas_zero_snr` the sigma-based classes (Euler, Euler-ancestral,
    /// DPM-Solver, UniPC) set the last value to 2^-24 so that the largest sigma stays finite;
    /// DDIM and LCM keep the exact 0.
    pub(crate) fn alphas_cumprod(&self) -> Vec<f64> {
        use super::schedule::{alphas_cumprod, betas, rescale_zero_terminal_snr};
        let mut b = betas(&self.beta_schedule, self.num_train_timesteps);
        if self.rescale_betas_zero_snr {
            b = rescale_zero_terminal_snr(&b);
        }
        let mut ac = alphas_cumprod(&b);
        let sigma_based = matches!(
            self.kind,
            SamplerKind::Euler
                | SamplerKind::EulerAncestral
                | SamplerKind::DpmPp2m
                | SamplerKind::UniPc
        );
        if self.rescale_betas_zero_snr && sigma_based {
            if let Some(last) = ac.last_mut() {
                *last = 2f64.powi(-24);
            }
        }
        ac
    }

    /// What `set_timesteps` reads of this class's settings (see `schedule`).
    pub(crate) fn schedule_params(&self) -> ScheduleParams {
        ScheduleParams {
            num_train_timesteps: self.num_train_timesteps,
            timestep_spacing: self.timestep_spacing,
            steps_offset: self.steps_offset,
            alphas_cumprod: self.alphas_cumprod(),
            karras: self.karras,
            karras_sigma_min: self.karras_sigma_min,
            karras_sigma_max: self.karras_sigma_max,
            final_sigmas: self.final_sigmas,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::schedule::{
        euler_schedule, multistep_schedule, Multistep, MultistepSchedule,
    };

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
                r#"{"use_exponential_sigmas": true}"#,
                SamplerKind::DpmPp2m,
                "use_exponential_sigmas",
            ),
            (
                r#"{"use_lu_lambdas": true}"#,
                SamplerKind::DpmPp2m,
                "use_lu_lambdas",
            ),
            (r#"{"solver_type": "heun"}"#, SamplerKind::DpmPp2m, "heun"),
            (
                r#"{"variance_type": "learned_range"}"#,
                SamplerKind::DpmPp2m,
                "learned_range",
            ),
            (
                r#"{"lambda_min_clipped": -5.1}"#,
                SamplerKind::DpmPp2m,
                "lambda_min_clipped",
            ),
            (r#"{"predict_x0": false}"#, SamplerKind::UniPc, "predict_x0"),
            (r#"{"solver_type": "bh1"}"#, SamplerKind::UniPc, "bh1"),
            (
                r#"{"solver_order": 3}"#,
                SamplerKind::UniPc,
                "solver_order 3",
            ),
            (
                r#"{"disable_corrector": [0]}"#,
                SamplerKind::UniPc,
                "disable_corrector",
            ),
            (
                r#"{"use_flow_sigmas": true}"#,
                SamplerKind::UniPc,
                "use_flow_sigmas",
            ),
            (
                r#"{"prediction_type": "sample", "skip_prk_steps": true}"#,
                SamplerKind::Pndm,
                "sample",
            ),
            (
                r#"{"thresholding": true}"#,
                SamplerKind::Lcm,
                "thresholding",
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
    fn class_defaults_of_the_new_samplers() {
        let c = cfg(r#"{"skip_prk_steps": true}"#);
        // LCM's betas default to SD's scaled_linear 0.00085..0.012, set_alpha_to_one true,
        // clip_sample false; PNDM's set_alpha_to_one is false, spacing leading.
        let lcm = c.resolve(SamplerKind::Lcm).unwrap();
        assert_eq!(
            lcm.beta_schedule,
            BetaSchedule::ScaledLinear {
                start: 0.00085,
                end: 0.012
            }
        );
        assert!(lcm.set_alpha_to_one);
        assert_eq!(lcm.clip_sample_range, None);
        assert_eq!(
            (lcm.original_inference_steps, lcm.timestep_scaling),
            (50, 10.0)
        );
        let pndm = c.resolve(SamplerKind::Pndm).unwrap();
        assert!(!pndm.set_alpha_to_one);
        assert_eq!(pndm.timestep_spacing, TimestepSpacing::Leading);
        for kind in [SamplerKind::DpmPp2m, SamplerKind::UniPc] {
            let r = c.resolve(kind).unwrap();
            assert_eq!(r.timestep_spacing, TimestepSpacing::Linspace);
            assert!(r.lower_order_final && !r.karras);
            assert_eq!(r.final_sigmas, FinalSigmas::Zero);
            assert_eq!(r.solver_order, 2);
        }
    }

    #[test]
    fn karras_from_the_file_only_for_classes_that_take_it() {
        let c = cfg(r#"{"use_karras_sigmas": true, "sigma_min": 0.1, "sigma_max": 10.0}"#);
        for kind in [SamplerKind::Euler, SamplerKind::DpmPp2m, SamplerKind::UniPc] {
            assert!(c.resolve(kind).unwrap().karras, "{kind}");
        }
        assert!(!c.resolve(SamplerKind::EulerAncestral).unwrap().karras);
        assert!(!c.resolve(SamplerKind::Ddim).unwrap().karras);
        // sigma_min / sigma_max exist in Euler and UniPC only.
        let dpm = c.resolve(SamplerKind::DpmPp2m).unwrap();
        assert_eq!((dpm.karras_sigma_min, dpm.karras_sigma_max), (None, None));
        let unipc = c.resolve(SamplerKind::UniPc).unwrap();
        assert_eq!(
            (unipc.karras_sigma_min, unipc.karras_sigma_max),
            (Some(0.1), Some(10.0))
        );
    }

    #[test]
    fn python_infinity_is_read_as_the_default() {
        // diffusers writes DPMSolverMultistepScheduler's default lambda_min_clipped as the
        // bare token -Infinity; inside a string it stays text.
        let c = cfg(r#"{"lambda_min_clipped": -Infinity, "_class_name": "x-Infinity"}"#);
        assert_eq!(c.lambda_min_clipped, None);
        assert_eq!(c.class_name.as_deref(), Some("x-Infinity"));
        assert!(c.resolve(SamplerKind::DpmPp2m).is_ok());
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

    // Schedules of resolved configs (`schedule` itself takes plain parameters).

    /// SD 1.5's betas resolved for `kind`, with Karras sigmas.
    fn sd(kind: SamplerKind, extra: &str) -> ResolvedConfig {
        let json = format!(
            r#"{{"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                 "skip_prk_steps": true {extra}}}"#
        );
        let mut c = SchedulerConfig::from_json(&json)
            .unwrap()
            .resolve(kind)
            .unwrap();
        c.karras = true;
        c
    }

    /// The multistep schedule of `c`'s class (DPM-Solver or UniPC), as its sampler builds it.
    fn multistep(c: &ResolvedConfig, steps: usize) -> MultistepSchedule {
        let solver = match c.kind {
            SamplerKind::UniPc => Multistep::UniPc,
            _ => Multistep::DpmSolver {
                cosine_betas: c.beta_schedule == BetaSchedule::SquaredCosCapV2,
            },
        };
        multistep_schedule(&c.schedule_params(), steps, solver).unwrap()
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= tol * w.abs().max(1.0),
                "{what}: {got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn euler_karras_matches_the_numpy_reference() {
        // Values printed by testdata/karras_reference.py (an independent numpy implementation
        // from the paper and diffusers' documented behaviour; see that file). "leading"
        // spacing: the Karras range ends at the interpolated sigma of timestep 1, not t = 0,
        // and the timesteps stay fractional.
        let c = sd(
            SamplerKind::Euler,
            r#", "timestep_spacing": "leading", "steps_offset": 1"#,
        );
        let e = euler_schedule(&c.schedule_params(), 6).unwrap();
        let want_sigmas = [
            5.906451702117916,
            2.79078631406478,
            1.2051021760801002,
            0.4640108336590629,
            0.1536244041650389,
            0.041314478963613496,
            0.0,
        ];
        assert_close(&e.sigmas, &want_sigmas, 1e-6, "sigmas");
        let want_t = [
            830.9999873840832,
            654.2946317365087,
            410.4855885492942,
            153.51215833968442,
            24.64932565199316,
            1.000000060425075,
        ];
        assert_close(&e.timesteps, &want_t, 1e-5, "timesteps");
        let s0 = want_sigmas[0];
        assert!((e.init_noise_sigma - (s0 * s0 + 1.0).sqrt()).abs() < 1e-5);
    }

    #[test]
    fn multistep_karras_matches_the_numpy_reference() {
        // testdata/karras_reference.py: the whole training range, rounded timesteps.
        let want_sigmas = [
            14.614648818969727,
            4.796544551849365,
            1.274105429649353,
            0.2479517161846161,
            0.029167532920837402,
            0.0,
        ];
        let want_t = [999.0, 786.0, 427.0, 59.0, 0.0];
        for kind in [SamplerKind::DpmPp2m, SamplerKind::UniPc] {
            let m = multistep(&sd(kind, ""), 5);
            assert_close(&m.sigmas, &want_sigmas, 1e-6, "sigmas");
            assert_eq!(m.timesteps, want_t);
        }
        // final_sigmas_type sigma_min: the last Karras sigma for UniPC, training sigma_min for
        // DPM-Solver (equal here, as the range ends at the training sigma_min).
        let m = multistep(
            &sd(SamplerKind::UniPc, r#", "final_sigmas_type": "sigma_min""#),
            5,
        );
        assert_eq!(m.sigmas[5], m.sigmas[4]);
    }

    #[test]
    fn euler_ancestral_karras_is_eulers() {
        let a = euler_schedule(&sd(SamplerKind::EulerAncestral, "").schedule_params(), 7).unwrap();
        let e = euler_schedule(&sd(SamplerKind::Euler, "").schedule_params(), 7).unwrap();
        assert_eq!((a.timesteps, a.sigmas), (e.timesteps, e.sigmas));
    }
}
