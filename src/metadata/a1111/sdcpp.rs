//! stable-diffusion.cpp's dialect of the A1111 layout (examples/common/common.cpp,
//! `get_image_params`): the same lines and keys with its own names (`Sampler: euler_a karras`,
//! `RNG: cuda`, `CFG scale: 7.000000`, `Version: stable-diffusion.cpp`) and, in recent
//! versions, a trailing `, SDCPP: {json}` (schema `sdcpp.image.params/v1`) that repeats the
//! whole recipe unambiguously. `read` recognises the dialect and hands these parts here.

use super::names::key;
use crate::metadata::foreign::{declared, json_f64, list_leftovers, ForeignSettings};
use crate::noise::RngKind;
use crate::sampler::{SamplerKind, ScheduleKind};
use serde_json::Value;

/// Splits `…, Version: stable-diffusion.cpp, SDCPP: {json}` into the line before and the JSON.
pub(super) fn split_sdcpp_tail(line: &str) -> (&str, Option<&str>) {
    match line.find("SDCPP: ") {
        Some(at) => {
            let before = line[..at].trim_end().trim_end_matches(',');
            (before, Some(&line[at + "SDCPP: ".len()..]))
        }
        None => (line, None),
    }
}

/// The first JSON value at the start of `text` (anything after it is ignored).
pub(super) fn parse_first_json(text: &str) -> Option<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .next()
        .and_then(|r| r.ok())
}

/// seedling's name for an sd.cpp `sample_method` name (`sd_sample_method_name`).
fn sdcpp_sampler_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "euler_a" => "euler_a",
        "euler" => "euler",
        "dpm++2m" => "dpmpp_2m",
        "lcm" => "lcm",
        "ddim_trailing" | "ddim" => "ddim",
        _ => return None,
    })
}

/// seedling's schedule for an sd.cpp scheduler name (`sd_scheduler_name`).
fn sdcpp_schedule(name: &str) -> Option<ScheduleKind> {
    match name {
        "default" | "discrete" => Some(ScheduleKind::Default),
        "karras" => Some(ScheduleKind::Karras),
        _ => None,
    }
}

/// sd.cpp's `Sampler: euler_a karras` (method, then the scheduler when one was chosen).
pub(super) fn map_sdcpp_sampler(s: &mut ForeignSettings, value: Option<&str>) {
    let Some(v) = value.map(str::trim) else {
        s.unmapped(key::SAMPLER, "absent", "used seedling's default");
        return;
    };
    let mut parts = v.split_whitespace();
    let method = parts.next().unwrap_or("");
    let scheduler = parts.next();
    map_sdcpp_method(s, key::SAMPLER, method);
    map_sdcpp_scheduler(s, key::SAMPLER, scheduler);
}

fn map_sdcpp_method(s: &mut ForeignSettings, field: &str, method: &str) {
    match sdcpp_sampler_name(method) {
        Some(ours) => s.take(declared::SAMPLER, field, ours),
        None => s.unmapped(
            field,
            method,
            "seedling has no equivalent of this sd.cpp sampler",
        ),
    }
    if method == "ddim_trailing" {
        s.unmapped(
            field,
            method,
            "sd.cpp spaces DDIM's steps 'trailing'; seedling follows the model's scheduler \
             config, so the steps differ",
        );
    }
}

fn map_sdcpp_scheduler(s: &mut ForeignSettings, field: &str, scheduler: Option<&str>) {
    match scheduler {
        None => s.patch.schedule = Some(ScheduleKind::Default),
        Some(name) => match sdcpp_schedule(name) {
            Some(k) => s.patch.schedule = Some(k),
            None => s.unmapped(
                field,
                name,
                "seedling has no such schedule; used the model's default",
            ),
        },
    }
}

/// The `SDCPP: {json}` record (`sdcpp.image.params/v1`), which repeats the whole recipe
/// unambiguously; fields it does not map are listed unless they hold a neutral value.
pub(super) fn map_sdcpp_json(s: &mut ForeignSettings, json: &Value) {
    let mut used: Vec<&str> = vec!["schema", "generator"];
    let mut take = |path: &'static str| {
        used.push(path);
        pointer(json, path)
    };
    if let Some(v) = take("prompt.positive") {
        s.patch.prompt = v.as_str().map(str::to_string);
    }
    if let Some(v) = take("prompt.negative") {
        s.patch.negative_prompt = v.as_str().map(str::to_string);
    }
    for (path, field) in [
        ("seed", declared::SEED),
        ("width", declared::WIDTH),
        ("height", declared::HEIGHT),
        ("sampling.steps", declared::STEPS),
        ("sampling.guidance.txt_cfg", declared::CFG),
    ] {
        if let Some(v) = take(path) {
            s.take_json(field, path, v);
        }
    }
    let method = take("sampling.method").or_else(|| take("sampling.sample_method"));
    match method.and_then(Value::as_str) {
        Some(m) => map_sdcpp_method(s, "sampling.method", m),
        None => s.unmapped("sampling.method", "absent", "used seedling's default"),
    }
    let scheduler = take("sampling.scheduler").and_then(Value::as_str);
    map_sdcpp_scheduler(s, "sampling.scheduler", scheduler);
    let eta = take("sampling.eta").and_then(json_f64);
    if s.patch.sampler == Some(SamplerKind::Ddim) {
        // One that is not a number is left to `to_recipe`'s note on a DDIM eta absent.
        s.patch.eta = eta;
    } else if let Some(e) = eta.filter(|e| *e != 0.0) {
        s.unmapped("sampling.eta", e, "seedling uses eta only for ddim");
    }
    if let Some(m) = take("models.model").and_then(Value::as_str) {
        s.model_name = Some(m.to_string()).filter(|m| !m.is_empty());
    }
    let rng = take("rng").and_then(Value::as_str);
    map_rng(s, rng);
    if let Some(mode) = take("mode").and_then(Value::as_str) {
        if mode != "img_gen" {
            s.unmapped("mode", mode, "seedling makes images from text only");
        }
    }
    // clip_skip <= 0 means "the model's default", which is what seedling does.
    if let Some(c) = take("clip_skip").and_then(Value::as_i64).filter(|c| *c > 1) {
        s.unmapped(
            "clip_skip",
            c,
            "seedling always uses the model's default CLIP layer",
        );
    }
    list_leftovers(s, json, "", &used);
}

/// A dotted path into nested objects ("sampling.guidance.txt_cfg").
fn pointer<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(json, |v, key| v.get(key))
}

/// sd.cpp's `RNG` ("cpu", "cuda", "std_default"; absent: not recorded).
pub(super) fn map_rng(s: &mut ForeignSettings, value: Option<&str>) {
    let v = value.map(str::trim);
    let (rng, note): (Option<RngKind>, &str) = match v {
        // torch.Generator("cpu") + torch.randn, as A1111's CPU source.
        Some("cpu") => (Some(RngKind::TorchCpu), ""),
        // torch's CUDA (Philox) generator, as A1111's NV source reproduces it.
        Some("cuda") => (Some(RngKind::Philox), ""),
        Some("std_default") => (
            None,
            "sd.cpp's std_default RNG is the C++ standard library's, which seedling does not \
             reproduce",
        ),
        None => (None, "sd.cpp does not record it"),
        Some(_) => (None, "unknown noise source"),
    };
    s.patch.rng = rng;
    if rng.is_none() {
        s.unmapped(key::RNG, v.unwrap_or("absent"), note);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdcpp_names_at_the_string_level() {
        assert_eq!(sdcpp_sampler_name("dpm++2m"), Some("dpmpp_2m"));
        assert_eq!(sdcpp_sampler_name("euler_a"), Some("euler_a"));
        assert_eq!(sdcpp_sampler_name("dpm++2mv2"), None);
        assert_eq!(sdcpp_schedule("karras"), Some(ScheduleKind::Karras));
    }
}
