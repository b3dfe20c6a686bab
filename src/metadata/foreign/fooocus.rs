//! Reading Fooocus's recipe, which it writes into the same `parameters` chunk as A1111 but as one
//! line of JSON (modules/meta_parser.py, `FooocusMetadataParser.parse_string`: its own keys,
//! `prompt`, `negative_prompt`, `seed`, `steps`, `guidance_scale`, `resolution`, `sampler`,
//! `scheduler`, `base_model`, `base_model_hash`, …, most values as strings). Older Fooocus
//! versions and its forks write the same recipe under the labels of its log ("Prompt",
//! "Negative Prompt", "Seed", "Guidance Scale", "Resolution", "Base Model", …), which Fooocus
//! itself still reads (`load_parameter_button_click` tries the key, then the label); both are
//! read here.
//!
//! Fooocus samples with ComfyUI's code (modules/core.py `ksampler`): the initial noise is
//! ComfyUI's `prepare_noise` (torch CPU generator, seedling's `torch-cpu`), and its sampler and
//! scheduler names are ComfyUI's. What makes a Fooocus image Fooocus's — the prompt expansion
//! and styles it encodes instead of the prompt as written, sharpness, ADM guidance, CFG
//! mimicking, a refiner — has no seedling equivalent and is listed.

use super::comfyui::{comfy_sampler_name, comfy_schedule};
use super::{
    declared, json_f64, json_is_neutral, parse_f64, parse_u32, read_json, read_text, shorten,
    show_json, ForeignSettings, ForeignTool,
};
use crate::noise::RngKind;
use crate::recipe::{Field, Value as FieldValue};
use crate::sampler::SamplerKind;
use serde_json::{Map, Value};

/// Parses Fooocus's JSON, or says why a JSON `parameters` text is not Fooocus's.
pub fn parse(json: &Map<String, Value>) -> Result<ForeignSettings, String> {
    if !is_fooocus(json) {
        return Err(
            "the text is a JSON object, not AUTOMATIC1111's layout, and not Fooocus's JSON (no \
             prompt with Fooocus's guidance, model or performance keys) either"
                .to_string(),
        );
    }
    let mut r = Reader {
        json,
        used: Vec::new(),
        s: ForeignSettings::new(ForeignTool::Fooocus),
    };
    r.map_prompts();
    r.map_numbers();
    r.map_sampler();
    r.map_model();
    r.map_fooocus_only();
    r.list_leftovers();
    Ok(r.s)
}

/// A prompt and at least one of the keys only Fooocus writes.
fn is_fooocus(json: &Map<String, Value>) -> bool {
    let has = |keys: &[&str]| keys.iter().any(|k| json.contains_key(*k));
    let version = ["version", "Version"]
        .iter()
        .filter_map(|k| json.get(*k).and_then(Value::as_str))
        .any(|v| v.contains("Fooocus"));
    has(&["prompt", "Prompt"])
        && (version
            || has(&[
                "guidance_scale",
                "Guidance Scale",
                "base_model",
                "Base Model",
                "performance",
                "Performance",
                "sharpness",
                "Sharpness",
            ]))
}

struct Reader<'a> {
    json: &'a Map<String, Value>,
    /// The keys mapped or explained, so not listed again.
    used: Vec<&'a str>,
    s: ForeignSettings,
}

impl<'a> Reader<'a> {
    /// The value under the first of `keys` present (Fooocus's key, then its label), marking all
    /// of them used.
    fn take(&mut self, keys: &[&'a str]) -> Option<(&'a str, &'a Value)> {
        self.used.extend_from_slice(keys);
        keys.iter()
            .find_map(|k| self.json.get_key_value(*k))
            .map(|(k, v)| (k.as_str(), v))
    }

    fn map_prompts(&mut self) {
        let prompt = self.take(&["prompt", "Prompt"]).map(|(_, v)| text_of(v));
        self.s.patch.prompt = prompt.clone();
        self.s.patch.negative_prompt = self
            .take(&["negative_prompt", "Negative Prompt"])
            .map(|(_, v)| text_of(v));
        // Fooocus encodes the styled and expanded prompts (a list, one conditioning each), not
        // the prompt as written.
        for (key, written) in [
            ("full_prompt", prompt),
            ("full_negative_prompt", self.s.patch.negative_prompt.clone()),
        ] {
            let Some((_, v)) = self.take(&[key]) else {
                continue;
            };
            let same = match v {
                Value::Array(items) => {
                    items.is_empty()
                        || (items.len() == 1 && items[0].as_str() == written.as_deref())
                }
                other => other.as_str() == written.as_deref() || json_is_neutral(other),
            };
            if !same {
                self.s.unmapped(
                    key,
                    show_json(v),
                    "Fooocus encoded these texts (the prompt with its styles and expansion); \
                     seedling encodes the prompt as written",
                );
            }
        }
        if let Some((key, v)) = self.take(&["Fooocus V2 Expansion"]) {
            if !is_none(v) {
                self.s.unmapped(
                    key,
                    show_json(v),
                    "Fooocus added this expansion to the prompt; seedling encodes the prompt as \
                     written",
                );
            }
        }
    }

    fn map_numbers(&mut self) {
        for (keys, field) in [
            (["seed", "Seed"], declared::SEED),
            (["steps", "Steps"], declared::STEPS),
            (["guidance_scale", "Guidance Scale"], declared::CFG),
        ] {
            if let Some((key, v)) = self.take(&keys) {
                self.s.put(field, key, show_json(v), number(field, v));
            }
        }
        if let Some((key, v)) = self.take(&["resolution", "Resolution"]) {
            match v.as_str().and_then(parse_resolution) {
                Some((w, h)) => {
                    self.s.patch.width = Some(w);
                    self.s.patch.height = Some(h);
                }
                None => self
                    .s
                    .unmapped(key, show_json(v), "not Fooocus's '(width, height)'"),
            }
        }
        // Fooocus's performance presets set the step count it records as `steps`; its label
        // format has no step count, and the preset alone does not say whether it was
        // overwritten.
        if let Some((key, v)) = self.take(&["performance", "Performance"]) {
            if self.s.patch.steps.is_none() {
                self.s.unmapped(
                    key,
                    show_json(v),
                    "a Fooocus preset (Speed runs 30 steps, Quality 60, unless overwritten); \
                     the step count is not recorded",
                );
            }
        }
    }

    fn map_sampler(&mut self) {
        // Initial noise: ComfyUI's prepare_noise, torch's CPU generator.
        self.s.patch.rng = Some(RngKind::TorchCpu);
        match self.take(&["sampler", "Sampler"]) {
            Some((key, Value::String(name))) => match comfy_sampler_name(name) {
                Some(ours) => self.s.take(declared::SAMPLER, key, ours),
                None => self.s.unmapped(
                    key,
                    name,
                    "seedling has no equivalent of this Fooocus (ComfyUI) sampler",
                ),
            },
            Some((key, v)) => self.s.unmapped(key, show_json(v), "not a sampler name"),
            None => {}
        }
        if self.s.patch.sampler == Some(SamplerKind::EulerAncestral) {
            self.s.unmapped(
                "sampler noise",
                "euler_ancestral",
                "Fooocus (ComfyUI) draws an ancestral sampler's per-step noise from a second \
                 generator, not from the initial-noise stream as seedling does; the image will \
                 differ",
            );
        }
        match self.take(&["scheduler", "Scheduler"]) {
            Some((key, Value::String(name))) => match comfy_schedule(name) {
                Some((kind, exact)) => {
                    self.s.patch.schedule = Some(kind);
                    if !exact {
                        self.s.unmapped(
                            key,
                            name,
                            "Fooocus (ComfyUI) spaces these noise levels its own way; seedling \
                             follows the model's scheduler config, so the steps differ slightly",
                        );
                    }
                }
                None => self.s.unmapped(
                    key,
                    name,
                    "seedling has no such schedule; used the model's default",
                ),
            },
            Some((key, v)) => self.s.unmapped(key, show_json(v), "not a scheduler name"),
            None => {}
        }
    }

    fn map_model(&mut self) {
        if let Some((_, v)) = self.take(&["base_model", "Base Model"]) {
            self.s.model_name = v
                .as_str()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string);
        }
        // The sha256 of the checkpoint file (Fooocus's `sha256`), which the cache can match.
        if let Some((_, v)) = self.take(&["base_model_hash"]) {
            self.s.model_hash = v
                .as_str()
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_string);
        }
    }

    /// Fooocus's own settings, listed unless they hold the value that changes nothing.
    fn map_fooocus_only(&mut self) {
        let refiner = self.take(&["refiner_model", "Refiner Model"]);
        let refiner_used = refiner.is_some_and(|(_, v)| !is_none(v));
        if let Some((key, v)) = refiner.filter(|_| refiner_used) {
            self.s.unmapped(
                key,
                show_json(v),
                "Fooocus switched to this refiner model for the last steps; seedling runs one \
                 model",
            );
        }
        // The switch point matters only with a refiner.
        if let Some((key, v)) = self.take(&["refiner_switch", "Refiner Switch"]) {
            if refiner_used {
                self.s
                    .unmapped(key, show_json(v), "the refiner's switch point");
            }
        }
        for (keys, neutral, note) in [
            (
                &["sharpness", "Sharpness"][..],
                "0",
                "Fooocus sharpens the model's predictions; seedling has no such filter",
            ),
            (
                &["adm_guidance", "ADM Guidance"][..],
                "(1.0, 1.0, 0.0)",
                "Fooocus scales SDXL's size conditioning (ADM); seedling uses the plain sizes",
            ),
            (
                &["styles", "Styles"][..],
                "[]",
                "Fooocus added these styles' texts to the prompt; seedling encodes the prompt \
                 as written",
            ),
        ] {
            if let Some((key, v)) = self.take(keys) {
                let shown = show_json(v);
                let same = match (number_f64(v), parse_f64(neutral)) {
                    (Some(a), Some(b)) => a == b,
                    _ => shown.replace(' ', "") == neutral.replace(' ', ""),
                };
                if !same && !is_none(v) {
                    self.s.unmapped(key, shown, note);
                }
            }
        }
        // Informational: which Fooocus, in which scheme, by whom.
        self.used.extend([
            "version",
            "Version",
            "metadata_scheme",
            "created_by",
            "User",
        ]);
    }

    /// Every other key whose value is not a neutral one.
    fn list_leftovers(&mut self) {
        for (key, value) in self.json {
            if self.used.contains(&key.as_str()) || is_none(value) || is_no_lora(value) {
                continue;
            }
            self.s
                .unmapped(key, show_json(value), "not used by seedling");
        }
    }
}

/// A text value (Fooocus writes some as lists of texts, joined here with ", " as its A1111
/// writer does).
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        other => shorten(&other.to_string(), 200),
    }
}

/// Fooocus's "nothing": JSON's neutral values, and "None", as it writes an unset model or VAE.
fn is_none(v: &Value) -> bool {
    json_is_neutral(v)
        || v.as_str()
            .is_some_and(|s| matches!(s.trim(), "None" | "none" | "[]" | "Default (model)"))
}

/// An unused LoRA slot: "None : 1.0", or "True : None : 1.0" with the enable flag.
fn is_no_lora(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let parts: Vec<&str> = s.split(" : ").map(str::trim).collect();
    match parts.as_slice() {
        [name, _] => *name == "None",
        [enabled, name, _] => *name == "None" || *enabled == "False",
        _ => false,
    }
}

/// "(1152, 896)", also with quoted numbers ("('1152', '896')").
fn parse_resolution(text: &str) -> Option<(u32, u32)> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (w, h) = inner.split_once(',')?;
    let side = |s: &str| parse_u32(s.trim().trim_matches(['\'', '"']));
    Some((side(w)?, side(h)?))
}

/// A value of `field` as Fooocus writes numbers: a JSON number, or one in a string (its
/// `parse_string` keeps most values as the strings its UI gives).
fn number(field: &Field, v: &Value) -> Option<FieldValue> {
    read_json(field, v).or_else(|| v.as_str().and_then(|t| read_text(field, t)))
}

fn number_f64(v: &Value) -> Option<f64> {
    json_f64(v).or_else(|| v.as_str().and_then(parse_f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_and_lora_slots() {
        assert_eq!(parse_resolution("(1152, 896)"), Some((1152, 896)));
        assert_eq!(parse_resolution("('1024', '1024')"), Some((1024, 1024)));
        assert_eq!(parse_resolution("1152x896"), None);
        assert!(is_no_lora(&Value::from("None : 1.0")));
        assert!(is_no_lora(&Value::from("True : None : 1.0")));
        assert!(is_no_lora(&Value::from("False : detail.safetensors : 0.5")));
        assert!(!is_no_lora(&Value::from("detail.safetensors : 0.5")));
    }
}
