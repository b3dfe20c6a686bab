//! Reading ComfyUI's `prompt` chunk: the API-format graph that ComfyUI's SaveImage node writes
//! (nodes.py, `SaveImage.save_images`): `{"<node id>": {"class_type": …, "inputs": {…}}}`,
//! where an input is a widget value or a link `[<node id>, <output index>]`.
//!
//! seedling maps the standard text-to-image chain: a `KSampler` (or `KSamplerAdvanced`) whose
//! `positive`/`negative` come from `CLIPTextEncode` nodes, whose `latent_image` is an
//! `EmptyLatentImage`, and whose `model` comes from a `CheckpointLoaderSimple`; the
//! `VAEDecode` of its output with the checkpoint's VAE and the `SaveImage`/`PreviewImage` of
//! that are part of it. Every other node (LoRA loaders, CLIP skip, ControlNets, upscalers, a
//! second sampler…) is listed as unmapped, as is every input that changes the result in a way
//! seedling does not reproduce.
//!
//! Noise: ComfyUI draws the initial noise with `torch.manual_seed(seed)` + `torch.randn` on the
//! CPU (comfy/sample.py, `prepare_noise`), which is seedling's `torch-cpu`.

use super::{
    declared, json_f64, json_u64, prompt_syntax_caveat, show_json, ForeignLora, ForeignSettings,
    ForeignTool,
};
use crate::noise::RngKind;
use crate::recipe::Field;
use crate::sampler::{SamplerKind, ScheduleKind};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// How far links are followed before giving up (a guard against cycles and absurd chains).
const MAX_HOPS: usize = 64;

/// Nodes that pass their single input through unchanged.
const PASS_THROUGH: [&str; 1] = ["Reroute"];

type Nodes = Map<String, Value>;

/// Parses a ComfyUI API-format prompt graph.
pub fn parse(text: &str) -> Result<ForeignSettings, String> {
    let graph: Value = serde_json::from_str(text)
        .map_err(|e| format!("the prompt graph is not valid JSON ({e})"))?;
    let Value::Object(nodes) = graph else {
        return Err("the prompt graph is not a JSON object of nodes".into());
    };
    let sampler_id = choose_sampler(&nodes).ok_or_else(|| {
        "no KSampler or KSamplerAdvanced node was found in the graph (seedling maps only \
         ComfyUI's standard sampler nodes)"
            .to_string()
    })?;
    let mut m = Mapper {
        nodes: &nodes,
        s: ForeignSettings::new(ForeignTool::ComfyUi),
        visited: BTreeSet::new(),
    };
    m.visited.insert(sampler_id.clone());
    m.map_sampler(&sampler_id);
    m.map_outputs(&sampler_id);
    m.list_unvisited();
    Ok(m.s)
}

/// The sampler node to map: the first (by numeric id) whose latent is an EmptyLatentImage, else
/// the first sampler at all.
fn choose_sampler(nodes: &Nodes) -> Option<String> {
    let mut ids: Vec<&String> = nodes
        .keys()
        .filter(|id| matches!(class(nodes, id), Some("KSampler" | "KSamplerAdvanced")))
        .collect();
    ids.sort_by_key(|id| (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string()));
    let from_empty = ids.iter().find(|id| {
        let latent = inputs(nodes, id).and_then(|i| i.get("latent_image"));
        latent
            .and_then(link_target)
            .and_then(|t| follow(nodes, &t))
            .is_some_and(|t| class(nodes, &t) == Some("EmptyLatentImage"))
    });
    from_empty.or(ids.first()).map(|id| id.to_string())
}

fn class<'a>(nodes: &'a Nodes, id: &str) -> Option<&'a str> {
    nodes.get(id)?.get("class_type")?.as_str()
}

fn inputs<'a>(nodes: &'a Nodes, id: &str) -> Option<&'a Map<String, Value>> {
    nodes.get(id)?.get("inputs")?.as_object()
}

/// The node a link `[id, output]` points to (ids are strings in the API format; numbers are
/// accepted too).
fn link_target(v: &Value) -> Option<String> {
    let a = v.as_array()?;
    if a.len() != 2 || !a[1].is_u64() {
        return None;
    }
    match &a[0] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

/// Follows pass-through nodes from `id`; `None` on a cycle, a dangling link or too many hops.
fn follow(nodes: &Nodes, id: &str) -> Option<String> {
    let mut cur = id.to_string();
    let mut seen = BTreeSet::new();
    for _ in 0..MAX_HOPS {
        if !nodes.contains_key(&cur) || !seen.insert(cur.clone()) {
            return None;
        }
        let is_pass = class(nodes, &cur).is_some_and(|c| PASS_THROUGH.contains(&c));
        if !is_pass {
            return Some(cur);
        }
        let links: Vec<String> = inputs(nodes, &cur)?
            .values()
            .filter_map(link_target)
            .collect();
        match links.as_slice() {
            [next] => cur = next.clone(),
            _ => return None,
        }
    }
    None
}

struct Mapper<'a> {
    nodes: &'a Nodes,
    s: ForeignSettings,
    visited: BTreeSet<String>,
}

impl Mapper<'_> {
    /// The node a link input leads to (through pass-through nodes, which count as visited).
    fn linked(&mut self, value: Option<&Value>) -> Option<String> {
        let start = value.and_then(link_target)?;
        let end = follow(self.nodes, &start)?;
        // Mark the pass-through nodes on the way.
        let mut cur = start;
        for _ in 0..MAX_HOPS {
            if cur == end {
                break;
            }
            self.visited.insert(cur.clone());
            let next = inputs(self.nodes, &cur)
                .and_then(|i| i.values().find_map(link_target))
                .unwrap_or_else(|| end.clone());
            cur = next;
        }
        Some(end)
    }

    /// A widget value, or the single value of a simple node a link leads to (a primitive).
    fn value(&mut self, value: Option<&Value>) -> Option<Value> {
        let v = value?;
        if link_target(v).is_none() {
            return Some(v.clone());
        }
        let id = self.linked(Some(v))?;
        let scalars: Vec<&Value> = inputs(self.nodes, &id)?
            .values()
            .filter(|v| link_target(v).is_none())
            .collect();
        match scalars.as_slice() {
            [one] if inputs(self.nodes, &id)?.len() == 1 => {
                self.visited.insert(id.clone());
                Some((*one).clone())
            }
            _ => None,
        }
    }

    fn describe(&self, id: &str) -> String {
        format!("node {id} ({})", class(self.nodes, id).unwrap_or("?"))
    }

    fn map_sampler(&mut self, id: &str) {
        let Some(i) = inputs(self.nodes, id) else {
            self.s
                .unmapped(&self.describe(id), "no inputs", "nothing to map");
            return;
        };
        let advanced = class(self.nodes, id) == Some("KSamplerAdvanced");
        let seed_key = if advanced { "noise_seed" } else { "seed" };
        let mut used = vec![
            seed_key,
            "steps",
            "cfg",
            "sampler_name",
            "scheduler",
            "model",
            "positive",
            "negative",
            "latent_image",
        ];
        for (key, field) in [
            (seed_key, declared::SEED),
            ("steps", declared::STEPS),
            ("cfg", declared::CFG),
        ] {
            let v = self.value(i.get(key));
            self.number(field, key, v);
        }
        let sampler = self.value(i.get("sampler_name"));
        self.map_sampler_name(sampler.as_ref());
        let scheduler = self.value(i.get("scheduler"));
        self.map_scheduler(scheduler.as_ref());
        if advanced {
            used.extend([
                "add_noise",
                "start_at_step",
                "end_at_step",
                "return_with_leftover_noise",
            ]);
            self.map_advanced(i);
        } else {
            used.push("denoise");
            let denoise = self.value(i.get("denoise"));
            if denoise.as_ref().and_then(json_f64) != Some(1.0) {
                self.s.unmapped(
                    "denoise",
                    denoise.as_ref().map_or("absent".into(), show_json),
                    "seedling always denoises fully (1.0) from pure noise",
                );
            }
        }
        // Initial noise: torch CPU generator (comfy/sample.py prepare_noise).
        self.s.patch.rng = Some(RngKind::TorchCpu);
        if self.s.patch.sampler == Some(SamplerKind::EulerAncestral) {
            self.s.unmapped(
                "sampler noise",
                "euler_ancestral",
                "ComfyUI's ancestral samplers draw their per-step noise from a second generator \
                 seeded with the same seed on the sampling device, not from the initial-noise \
                 stream as diffusers and seedling do; the image will differ",
            );
        }
        self.map_model(i.get("model"));
        let pos = self.text(i.get("positive"), "positive");
        self.s.patch.prompt = pos;
        let neg = self.text(i.get("negative"), "negative");
        self.s.patch.negative_prompt = neg;
        self.map_latent(i.get("latent_image"));
        for (k, v) in i {
            if !used.contains(&k.as_str()) {
                self.s.unmapped(
                    &format!("{} input {k}", self.describe(id)),
                    show_json(v),
                    "not used by seedling",
                );
            }
        }
    }

    /// Sets `field` from the input `key`'s value, or lists it: one the field cannot use in
    /// its own words, an absent or linked one as what seedling cannot read.
    fn number(&mut self, field: &'static Field, key: &str, value: Option<Value>) {
        match value {
            Some(v) => self.s.take_json(field, key, &v),
            None => self
                .s
                .unmapped(key, "absent or linked", "not a value seedling can read"),
        }
    }

    fn map_advanced(&mut self, i: &Map<String, Value>) {
        let add_noise = self.value(i.get("add_noise"));
        if add_noise.as_ref().and_then(Value::as_str) != Some("enable") {
            self.s.unmapped(
                "add_noise",
                add_noise.as_ref().map_or("absent".into(), show_json),
                "seedling always starts from fresh noise",
            );
        }
        let start = self.value(i.get("start_at_step"));
        if start.as_ref().and_then(json_u64) != Some(0) {
            self.s.unmapped(
                "start_at_step",
                start.as_ref().map_or("absent".into(), show_json),
                "seedling runs every step from the first",
            );
        }
        let end = self.value(i.get("end_at_step"));
        let end_n = end.as_ref().and_then(json_u64);
        let full = match (end_n, self.s.patch.steps) {
            (Some(e), Some(steps)) => e >= u64::from(steps),
            _ => false,
        };
        if !full {
            self.s.unmapped(
                "end_at_step",
                end.as_ref().map_or("absent".into(), show_json),
                "seedling runs every step to the last",
            );
            let leftover = self.value(i.get("return_with_leftover_noise"));
            if leftover.as_ref().and_then(Value::as_str) == Some("enable") {
                self.s.unmapped(
                    "return_with_leftover_noise",
                    "enable",
                    "seedling returns a fully denoised image",
                );
            }
        }
    }

    /// ComfyUI sampler names (comfy/samplers.py, KSAMPLER_NAMES + ddim, uni_pc, uni_pc_bh2).
    fn map_sampler_name(&mut self, v: Option<&Value>) {
        let Some(name) = v.and_then(Value::as_str) else {
            let shown = v.map_or("absent".into(), show_json);
            self.s.unmapped("sampler_name", shown, "not a sampler name");
            return;
        };
        match comfy_sampler_name(name) {
            Some(ours) => self.s.take(declared::SAMPLER, "sampler_name", ours),
            None => self.s.unmapped(
                "sampler_name",
                name,
                "seedling has no equivalent of this ComfyUI sampler",
            ),
        }
        if name == "uni_pc" {
            self.s.unmapped(
                "sampler_name",
                name,
                "ComfyUI's uni_pc is UniPC's bh1 variant; seedling's unipc follows diffusers \
                 (bh2 unless the model's config says otherwise)",
            );
        }
    }

    fn map_scheduler(&mut self, v: Option<&Value>) {
        let Some(name) = v.and_then(Value::as_str) else {
            let shown = v.map_or("absent".into(), show_json);
            self.s.unmapped("scheduler", shown, "not a scheduler name");
            return;
        };
        match comfy_schedule(name) {
            Some((kind, exact)) => {
                self.s.patch.schedule = Some(kind);
                if !exact {
                    self.s.unmapped(
                        "scheduler",
                        name,
                        "ComfyUI spaces these noise levels its own way; seedling follows the \
                         model's scheduler config, so the steps differ slightly",
                    );
                }
            }
            None => self.s.unmapped(
                "scheduler",
                name,
                "seedling has no such schedule; used the model's default",
            ),
        }
    }

    /// Follows `model` links back to a CheckpointLoaderSimple. LoRA loaders on the way are the
    /// recipe's LoRAs (in the order they apply: nearest the checkpoint first); other nodes on
    /// the way (model patches) stay unvisited, so they are listed.
    fn map_model(&mut self, link: Option<&Value>) {
        let mut cur = self.linked(link);
        let mut loras = Vec::new();
        for _ in 0..MAX_HOPS {
            let Some(id) = cur.clone() else { break };
            if let Some(lora) = self.lora_loader(&id) {
                loras.push(lora);
            }
            if class(self.nodes, &id) == Some("CheckpointLoaderSimple") {
                loras.reverse();
                self.s.loras.extend(loras);
                self.visited.insert(id.clone());
                let ckpt = inputs(self.nodes, &id)
                    .and_then(|i| i.get("ckpt_name"))
                    .cloned();
                match self.value(ckpt.as_ref()) {
                    Some(Value::String(name)) if !name.is_empty() => self.s.model_name = Some(name),
                    other => self.s.unmapped(
                        "ckpt_name",
                        other.as_ref().map_or("absent".into(), show_json),
                        "not a checkpoint name",
                    ),
                }
                return;
            }
            let next = inputs(self.nodes, &id)
                .and_then(|i| i.get("model"))
                .cloned();
            cur = self.linked(next.as_ref());
        }
        self.s.unmapped(
            "model",
            "no CheckpointLoaderSimple",
            "seedling maps only a checkpoint loaded by CheckpointLoaderSimple",
        );
    }

    /// The LoRA a `LoraLoader` (nodes.py: `lora_name` below models/loras, `strength_model`,
    /// `strength_clip`) or `LoraLoaderModelOnly` (no text encoder) node applies. Its strengths
    /// must be plain numbers; otherwise the node stays unvisited and is listed.
    fn lora_loader(&mut self, id: &str) -> Option<ForeignLora> {
        let model_only = match class(self.nodes, id)? {
            "LoraLoader" => false,
            "LoraLoaderModelOnly" => true,
            _ => return None,
        };
        let i = inputs(self.nodes, id)?.clone();
        let name = match self.value(i.get("lora_name"))? {
            Value::String(n) if !n.is_empty() => n,
            _ => return None,
        };
        let unet = self.value(i.get("strength_model"))?.as_f64()?;
        let text_encoder = match model_only {
            true => 0.0,
            false => self.value(i.get("strength_clip"))?.as_f64()?,
        };
        self.visited.insert(id.to_string());
        Some(ForeignLora {
            name,
            hash: None,
            text_encoder,
            unet,
        })
    }

    /// The text of the CLIPTextEncode node a conditioning input comes from.
    fn text(&mut self, link: Option<&Value>, which: &str) -> Option<String> {
        let Some(id) = self.linked(link) else {
            self.s
                .unmapped(which, "not linked", "no conditioning node to read");
            return None;
        };
        if class(self.nodes, &id) != Some("CLIPTextEncode") {
            let d = self.describe(&id);
            self.s.unmapped(
                which,
                d,
                "seedling reads the text of a CLIPTextEncode node only",
            );
            return None;
        }
        self.visited.insert(id.clone());
        let raw = inputs(self.nodes, &id).and_then(|i| i.get("text")).cloned();
        match self.value(raw.as_ref()) {
            Some(Value::String(t)) => {
                let field = if which == "positive" {
                    "prompt"
                } else {
                    "negative prompt"
                };
                prompt_syntax_caveat(&mut self.s, field, &t);
                Some(t)
            }
            other => {
                let d = self.describe(&id);
                self.s.unmapped(
                    &format!("{which} text"),
                    other
                        .as_ref()
                        .map_or(format!("computed by a node before {d}"), show_json),
                    "not a plain text seedling can read",
                );
                None
            }
        }
    }

    fn map_latent(&mut self, link: Option<&Value>) {
        let Some(id) = self.linked(link) else {
            self.s
                .unmapped("latent_image", "not linked", "no size to read");
            return;
        };
        if class(self.nodes, &id) != Some("EmptyLatentImage") {
            let d = self.describe(&id);
            self.s.unmapped(
                "latent_image",
                d,
                "seedling starts from pure noise at the recipe's size (img2img and other latent \
                 sources are not mapped)",
            );
            return;
        }
        self.visited.insert(id.clone());
        let Some(i) = inputs(self.nodes, &id) else {
            return;
        };
        let (w, h, b) = (i.get("width"), i.get("height"), i.get("batch_size"));
        let (w, h, b) = (self.value(w), self.value(h), self.value(b));
        self.number(declared::WIDTH, "width", w);
        self.number(declared::HEIGHT, "height", h);
        if let Some(n) = b.as_ref().and_then(json_u64).filter(|n| *n > 1) {
            self.s.unmapped(
                "batch_size",
                n,
                "ComfyUI draws one noise tensor for the whole batch; only its first image \
                 matches this seed, and this file may be another one",
            );
        }
    }

    /// The VAEDecode of the sampler's output with the checkpoint's own VAE, and the image
    /// outputs of that, are what seedling does too.
    fn map_outputs(&mut self, sampler: &str) {
        let ids: Vec<String> = self.nodes.keys().cloned().collect();
        let mut decoders = Vec::new();
        for id in &ids {
            if class(self.nodes, id) != Some("VAEDecode") {
                continue;
            }
            let Some(i) = inputs(self.nodes, id) else {
                continue;
            };
            let samples = i
                .get("samples")
                .and_then(link_target)
                .and_then(|t| follow(self.nodes, &t));
            let vae = i
                .get("vae")
                .and_then(link_target)
                .and_then(|t| follow(self.nodes, &t));
            let vae_ok =
                vae.is_some_and(|v| class(self.nodes, &v) == Some("CheckpointLoaderSimple"));
            if samples.as_deref() == Some(sampler) && vae_ok {
                self.visited.insert(id.clone());
                decoders.push(id.clone());
            }
        }
        for id in &ids {
            if !matches!(class(self.nodes, id), Some("SaveImage" | "PreviewImage")) {
                continue;
            }
            let images = inputs(self.nodes, id)
                .and_then(|i| i.get("images"))
                .and_then(link_target)
                .and_then(|t| follow(self.nodes, &t));
            if images.is_some_and(|t| decoders.contains(&t)) {
                self.visited.insert(id.clone());
            }
        }
    }

    /// Every node the mapping did not use, with its widget values.
    fn list_unvisited(&mut self) {
        let mut ids: Vec<&String> = self
            .nodes
            .keys()
            .filter(|id| !self.visited.contains(*id))
            .collect();
        ids.sort_by_key(|id| (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string()));
        for id in ids {
            let widgets: Vec<String> = inputs(self.nodes, id)
                .map(|i| {
                    i.iter()
                        .filter(|(_, v)| link_target(v).is_none())
                        .map(|(k, v)| format!("{k}={}", show_json(v)))
                        .collect()
                })
                .unwrap_or_default();
            let shown = if widgets.is_empty() {
                "no settings".to_string()
            } else {
                super::shorten(&widgets.join(", "), 160)
            };
            let d = self.describe(id);
            self.s.unmapped(&d, shown, "not used by seedling");
        }
    }
}

/// seedling's name for a ComfyUI sampler name. ComfyUI before April 2023 named its k-diffusion
/// samplers by their k-diffusion function (`sample_euler`, `sample_dpmpp_2m`, …); those are the
/// same samplers under the modern names.
pub fn comfy_sampler_name(name: &str) -> Option<&'static str> {
    let name = match name.strip_prefix("sample_") {
        Some(k @ ("euler" | "euler_ancestral" | "dpmpp_2m")) => k,
        Some(_) => return None,
        None => name,
    };
    Some(match name {
        "euler" => "euler",
        "euler_ancestral" => "euler_a",
        "dpmpp_2m" => "dpmpp_2m",
        "uni_pc" | "uni_pc_bh2" => "unipc",
        // ComfyUI's ddim is Euler on the DDIM timesteps, which is deterministic DDIM (eta 0).
        "ddim" => "ddim",
        "lcm" => "lcm",
        _ => return None,
    })
}

/// seedling's schedule for a ComfyUI scheduler name, and whether it is the same spacing.
pub fn comfy_schedule(name: &str) -> Option<(ScheduleKind, bool)> {
    match name {
        "karras" => Some((ScheduleKind::Karras, true)),
        "normal" | "simple" | "sgm_uniform" | "ddim_uniform" => {
            Some((ScheduleKind::Default, false))
        }
        _ => None,
    }
}
