//! Reading InvokeAI's `invokeai_metadata` chunk (InvokeAI 3.x–5.x, the `core_metadata` node's
//! output): a flat JSON object with `positive_prompt`, `negative_prompt`, `seed`, `steps`,
//! `cfg_scale`, `scheduler`, `width`, `height`, `rand_device`, `model` (`{name, key, hash,
//! base, type}`; in 3.x `{model_name, base_model, model_type}`) and the optional features
//! (LoRAs, ControlNets, high-res fix, an SDXL refiner, …).
//!
//! InvokeAI runs diffusers schedulers with the model's own scheduler config, so its scheduler
//! names map onto seedling's samplers directly (`_k` = Karras sigmas). Its noise is
//! `torch.randn` with a `torch.Generator(rand_device).manual_seed(seed)`
//! (invokeai/app/invocations/noise.py, `get_noise`): `cpu` is seedling's `torch-cpu`, `cuda`
//! is torch's CUDA (Philox) generator.

use super::{
    declared, json_u64, list_leftovers, prompt_syntax_caveat, show_json, ForeignSettings,
    ForeignTool,
};
use crate::noise::RngKind;
use crate::sampler::ScheduleKind;
use serde_json::Value;

/// Parses `invokeai_metadata`.
pub fn parse(text: &str) -> Result<ForeignSettings, String> {
    let json: Value =
        serde_json::from_str(text).map_err(|e| format!("the metadata is not valid JSON ({e})"))?;
    if !json.is_object() {
        return Err("the metadata is not a JSON object".into());
    }
    let mut s = ForeignSettings::new(ForeignTool::InvokeAi);
    // Informational keys and the ones mapped below.
    let mut used: Vec<&str> = vec!["app_version", "generation_mode"];
    let mut take = |key: &'static str| {
        used.push(key);
        json.get(key)
    };

    let text_of = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    s.patch.prompt = text_of(take("positive_prompt"));
    s.patch.negative_prompt = text_of(take("negative_prompt"));
    for (key, field) in [
        ("seed", declared::SEED),
        ("steps", declared::STEPS),
        ("cfg_scale", declared::CFG),
        ("width", declared::WIDTH),
        ("height", declared::HEIGHT),
    ] {
        if let Some(v) = take(key) {
            s.take_json(field, key, v);
        }
    }

    match take("scheduler") {
        Some(Value::String(name)) => match invoke_scheduler(name) {
            Some((sampler, schedule)) => {
                s.take(declared::SAMPLER, "scheduler", sampler);
                s.patch.schedule = Some(schedule);
            }
            None => s.unmapped(
                "scheduler",
                name,
                "seedling has no equivalent of this InvokeAI scheduler",
            ),
        },
        other => s.unmapped(
            "scheduler",
            other.map_or("absent".into(), show_json),
            "not a scheduler name",
        ),
    }

    match take("rand_device").and_then(Value::as_str) {
        Some("cpu") => s.patch.rng = Some(RngKind::TorchCpu),
        Some("cuda") => s.patch.rng = Some(RngKind::Philox),
        other => s.unmapped(
            "rand_device",
            other.unwrap_or("absent"),
            "InvokeAI draws noise with torch on this device; seedling reproduces cpu and cuda",
        ),
    }
    // get_noise draws in the model's dtype (f16 on GPUs), which rounds the values.
    s.unmapped(
        "noise dtype",
        "not recorded",
        "InvokeAI draws the noise in the model's dtype (float16 on GPUs); seedling draws float32, \
         so the noise can differ by rounding",
    );

    if let Some(model) = take("model") {
        map_model(&mut s, model);
    }
    if let Some(mode) = json.get("generation_mode").and_then(Value::as_str) {
        if !matches!(mode, "txt2img" | "sdxl_txt2img") {
            s.unmapped(
                "generation_mode",
                mode,
                "seedling makes images from text only",
            );
        }
    }
    // clip_skip 0 is InvokeAI's default (the model's own layer), as in seedling.
    used.push("clip_skip");
    if let Some(c) = json.get("clip_skip").filter(|c| json_u64(c) != Some(0)) {
        s.unmapped(
            "clip_skip",
            show_json(c),
            "seedling always uses the model's default CLIP layer",
        );
    }
    // SDXL style prompts equal to the prompts change nothing.
    for (key, same_as) in [
        ("positive_style_prompt", s.patch.prompt.clone()),
        ("negative_style_prompt", s.patch.negative_prompt.clone()),
    ] {
        let v = json.get(key).and_then(Value::as_str);
        if v.is_none() || v == same_as.as_deref() || v == Some("") {
            used.push(key);
        }
    }
    // The high-res fix settings matter only when it ran.
    if json.get("hrf_enabled") != Some(&Value::Bool(true)) {
        used.extend(["hrf_method", "hrf_strength"]);
    }
    list_leftovers(&mut s, &json, "", &used);

    if let Some(p) = s.patch.prompt.clone() {
        prompt_syntax_caveat(&mut s, "prompt", &p);
    }
    if let Some(n) = s.patch.negative_prompt.clone() {
        prompt_syntax_caveat(&mut s, "negative prompt", &n);
    }
    Ok(s)
}

/// The main model: `{name, key, hash, base, type}` since InvokeAI 4, `{model_name, base_model,
/// model_type}` in 3.x. The name is looked up; InvokeAI's hashes are BLAKE3 ("blake3:…") or
/// random, not sha256, so they identify but cannot be looked up in the cache.
fn map_model(s: &mut ForeignSettings, model: &Value) {
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| model.get(*k).and_then(Value::as_str))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Value::String(name) = model {
        s.model_name = Some(name.trim().to_string()).filter(|n| !n.is_empty());
        return;
    }
    s.model_name = text(&["name", "model_name"]).map(str::to_string);
    s.model_hash = text(&["hash"]).map(str::to_string);
    if let Some(base) = text(&["base", "base_model"]) {
        if invoke_base_family(base).is_none() {
            s.unmapped(
                "model.base",
                base,
                "seedling runs SD 1.x, SD 2.x and SDXL main models",
            );
        }
    }
    if let Some(kind) = text(&["type", "model_type"]).filter(|t| *t != "main") {
        s.unmapped(
            "model.type",
            kind,
            "seedling runs main (diffusers or checkpoint) models",
        );
    }
}

/// seedling's model family for an InvokeAI base model (invokeai/backend/model_manager/
/// taxonomy.py, `BaseModelType`), if seedling runs it.
pub fn invoke_base_family(base: &str) -> Option<&'static str> {
    match base {
        "sd-1" => Some("sd1"),
        "sd-2" => Some("sd2"),
        "sdxl" => Some("sdxl"),
        // "sdxl-refiner" only refines another model's output; "sd-3", "flux", "cogview4", …
        // are other architectures.
        _ => None,
    }
}

/// seedling's sampler and schedule for an InvokeAI scheduler name
/// (invokeai/backend/stable_diffusion/schedulers/schedulers.py, SCHEDULER_MAP: each is the
/// diffusers class of the same name; `_k` sets `use_karras_sigmas=True`).
pub fn invoke_scheduler(name: &str) -> Option<(&'static str, ScheduleKind)> {
    let (base, schedule) = match name.strip_suffix("_k") {
        Some(base) => (base, ScheduleKind::Karras),
        None => (name, ScheduleKind::Default),
    };
    let sampler = match base {
        "ddim" => "ddim",
        "euler" => "euler",
        "euler_a" => "euler_a",
        "dpmpp_2m" => "dpmpp_2m",
        "unipc" => "unipc",
        "lcm" => "lcm",
        "pndm" => "pndm",
        _ => return None,
    };
    Some((sampler, schedule))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_names_at_the_string_level() {
        assert_eq!(
            invoke_scheduler("euler_a"),
            Some(("euler_a", ScheduleKind::Default))
        );
        assert_eq!(
            invoke_scheduler("dpmpp_2m_k"),
            Some(("dpmpp_2m", ScheduleKind::Karras))
        );
        assert_eq!(
            invoke_scheduler("unipc"),
            Some(("unipc", ScheduleKind::Default))
        );
        assert_eq!(
            invoke_scheduler("ddim"),
            Some(("ddim", ScheduleKind::Default))
        );
        assert_eq!(
            invoke_scheduler("lcm"),
            Some(("lcm", ScheduleKind::Default))
        );
        assert_eq!(
            invoke_scheduler("euler_k"),
            Some(("euler", ScheduleKind::Karras))
        );
        assert_eq!(invoke_scheduler("kdpm_2_a"), None);
        assert_eq!(invoke_scheduler("dpmpp_sde_k"), None);
    }
}
