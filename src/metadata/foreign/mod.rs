//! Reading images made by other tools (AUTOMATIC1111 / Forge, stable-diffusion.cpp, ComfyUI,
//! InvokeAI, Fooocus): their metadata is mapped into a seedling [`Recipe`] as far as it can be,
//! and every field that could not be mapped — or that seedling had to fill from a default
//! because the file did not say — is listed as [`Unmapped`]. Nothing is silently defaulted, and
//! nothing is guessed: a model known only by a name that matches is a suggestion, not a choice.
//!
//! Each parser produces a plain [`ForeignSettings`] holding seedling's own *names* (sampler,
//! rng) rather than enum values, so a name this build does not know yet (a sampler another
//! branch adds) becomes an unmapped entry at [`to_recipe`] instead of a parse failure. The
//! model a file names is looked up through the [`ModelLookup`] the caller passes in.
//!
//! The readers of ComfyUI's, InvokeAI's and Fooocus's formats are here; A1111's text (which
//! stable-diffusion.cpp writes too) is read next to its writer, in `metadata::a1111`, and
//! `metadata::read_foreign` tries each in turn.

pub mod comfyui;
pub mod fooocus;
pub mod invokeai;
pub mod lookup;

pub use lookup::{ModelLookup, NoLookup, ResolvedModel};

use crate::noise::RngKind;
use crate::recipe::{ModelDType, ModelRef, Recipe, MAX_SIDE};
use crate::sampler::{SamplerKind, ScheduleKind};
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// Keyword of InvokeAI's metadata chunk (InvokeAI 3.x–5.x).
pub const INVOKEAI_KEYWORD: &str = "invokeai_metadata";
/// Keyword of ComfyUI's API-format prompt graph.
pub const COMFYUI_KEYWORD: &str = "prompt";

/// The latent scale factor every model seedling supports uses (SD 1.x/2.x: 8); sizes from
/// another tool are checked against it so the mapped recipe is one seedling accepts.
const LATENT_FACTOR: u32 = 8;
/// Training timesteps of SD 1.x/2.x; more steps than this are refused by validation.
const MAX_STEPS: u32 = 1000;
/// The most characters of a field name or value an [`Unmapped`] entry shows.
const MAX_SHOWN: usize = 160;

/// Which tool wrote the metadata, and in which form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ForeignTool {
    Automatic1111,
    StableDiffusionCpp,
    ComfyUi,
    InvokeAi,
    Fooocus,
}

impl ForeignTool {
    /// e.g. "AUTOMATIC1111 (parameters text)", for `inspect` and the replay's provenance.
    pub fn describe(self) -> &'static str {
        match self {
            ForeignTool::Automatic1111 => "AUTOMATIC1111 (parameters text)",
            ForeignTool::StableDiffusionCpp => "stable-diffusion.cpp (parameters text)",
            ForeignTool::ComfyUi => "ComfyUI (prompt graph)",
            ForeignTool::InvokeAi => "InvokeAI (invokeai_metadata)",
            ForeignTool::Fooocus => "Fooocus (parameters JSON)",
        }
    }

    /// The short name used in messages ("AUTOMATIC1111").
    pub fn name(self) -> &'static str {
        match self {
            ForeignTool::Automatic1111 => "AUTOMATIC1111",
            ForeignTool::StableDiffusionCpp => "stable-diffusion.cpp",
            ForeignTool::ComfyUi => "ComfyUI",
            ForeignTool::InvokeAi => "InvokeAI",
            ForeignTool::Fooocus => "Fooocus",
        }
    }
}

/// One field the file has (or lacks) that the recipe does not carry as the tool meant it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmapped {
    /// The field as the source names it ("Clip skip", "node 10 (LoraLoader)"), or seedling's
    /// name for a field the source did not give ("negative prompt").
    pub field: String,
    /// Its value as written, or "absent".
    pub value: String,
    /// Why it is not mapped, or what seedling used instead.
    pub note: String,
}

impl Unmapped {
    pub fn new(
        field: impl Into<String>,
        value: impl Into<String>,
        note: impl Into<String>,
    ) -> Self {
        // Both are shown, never used: a huge one (a hostile file's) must not flood the terminal
        // or the replay's provenance.
        Unmapped {
            field: shorten(&field.into(), MAX_SHOWN),
            value: shorten(&value.into(), MAX_SHOWN),
            note: note.into(),
        }
    }
}

impl fmt::Display for Unmapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.value, self.note)
    }
}

/// What a foreign parser found, in seedling's terms (names, not enums), before it becomes a
/// Recipe. `None` = the source does not say (or says something unusable, already explained in
/// `unmapped`).
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignSettings {
    pub tool: ForeignTool,
    pub prompt: Option<String>,
    pub negative_prompt: Option<String>,
    pub seed: Option<u64>,
    /// seedling's rng name: "torch-cpu", "philox", "chacha".
    pub rng: Option<String>,
    pub variation_seed: Option<u64>,
    pub variation_strength: Option<f64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// seedling's sampler name: "euler_a", "dpmpp_2m", …
    pub sampler: Option<String>,
    pub schedule: Option<ScheduleKind>,
    pub steps: Option<u32>,
    pub cfg: Option<f64>,
    pub eta: Option<f64>,
    /// The model as the file names it (checkpoint name, file name or repo).
    pub model_name: Option<String>,
    /// The model hash as the file gives it (A1111: first 10 hex digits of the file's sha256).
    pub model_hash: Option<String>,
    pub unmapped: Vec<Unmapped>,
}

impl ForeignSettings {
    pub fn new(tool: ForeignTool) -> Self {
        ForeignSettings {
            tool,
            prompt: None,
            negative_prompt: None,
            seed: None,
            rng: None,
            variation_seed: None,
            variation_strength: None,
            width: None,
            height: None,
            sampler: None,
            schedule: None,
            steps: None,
            cfg: None,
            eta: None,
            model_name: None,
            model_hash: None,
            unmapped: Vec::new(),
        }
    }

    /// Records a field that is not mapped.
    pub fn unmapped(&mut self, field: &str, value: impl fmt::Display, note: impl Into<String>) {
        self.unmapped
            .push(Unmapped::new(field, value.to_string(), note.into()));
    }
}

/// The model a foreign file names, and what seedling found for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForeignModel {
    pub name: Option<String>,
    pub hash: Option<String>,
    /// The model identified by the hash of its weights. `None`: not identified; replay needs
    /// `--model`.
    pub resolved: Option<ResolvedModel>,
    /// A model whose name matches when none is identified: a guess, shown to the user as the
    /// `--model` to pass if it is that model, never used on its own.
    pub suggested: Option<ResolvedModel>,
}

impl ForeignModel {
    /// Why replay needs a model and which to try, when the model is not identified ("not
    /// identified by its weights; its name matches sd15 (preset sd15, by name only), which is a
    /// guess: replay needs model (model = sd15 if it is that model)", the CLI saying `--model`).
    /// `None` when it is.
    pub fn needs_model(&self) -> Option<crate::message::Message> {
        use crate::message::{Message, Setting};
        if self.resolved.is_some() {
            return None;
        }
        let Some(m) = &self.suggested else {
            return Some(
                Message::text(
                    "not found among seedling's presets or in the Hugging Face cache; replay \
                     needs ",
                )
                .mention(Setting::Model),
            );
        };
        let guess = Message::text(format!(
            "not identified by its weights; its name matches {} ({}), which is a guess: replay \
             needs ",
            m.model_arg(),
            m.how
        ));
        Some(
            guess
                .mention(Setting::Model)
                .then(" (")
                .set(Setting::Model, m.model_arg())
                .then(" if it is that model)"),
        )
    }
}

/// A recipe mapped from another tool's metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForeignRecipe {
    pub tool: ForeignTool,
    /// The mapped recipe. Its `model` is meaningful only when `model.resolved` is set (a
    /// suggested model is not put into it).
    pub recipe: Recipe,
    pub model: ForeignModel,
    pub unmapped: Vec<Unmapped>,
}

impl ForeignRecipe {
    /// The JSON `inspect --json` prints: the tool, the recipe (`model: null` when the model was
    /// not found), the model as the file names it, and every unmapped field.
    pub fn to_json(&self) -> serde_json::Value {
        let mut recipe = serde_json::to_value(&self.recipe).unwrap_or(serde_json::Value::Null);
        if self.model.resolved.is_none() {
            recipe["model"] = serde_json::Value::Null;
        }
        serde_json::json!({
            "source_tool": self.tool.name(),
            "source_format": self.tool.describe(),
            "recipe": recipe,
            "model": self.model,
            "unmapped": self.unmapped,
        })
    }
}

/// Turns parsed settings into a recipe: every field the source did not give (or gave in a form
/// seedling cannot use) gets seedling's default and an [`Unmapped`] entry saying so; every value
/// is range-checked so the recipe passes [`Recipe::validate`] for an SD 1.x/2.x model.
pub fn to_recipe(settings: ForeignSettings, lookup: &dyn ModelLookup) -> ForeignRecipe {
    let mut s = settings;
    let mut out = Vec::new();
    let defaults = Recipe::default();
    let mut r = Recipe::default();
    let tool = s.tool.name();

    r.prompt = s.prompt.take().unwrap_or_else(|| {
        out.push(Unmapped::new("prompt", "absent", "used ''"));
        String::new()
    });
    r.negative_prompt = s.negative_prompt.take().unwrap_or_else(|| {
        out.push(Unmapped::new("negative prompt", "absent", "used ''"));
        String::new()
    });
    r.seed = s.seed.unwrap_or_else(|| {
        out.push(Unmapped::new("seed", "absent", "used 0"));
        0
    });
    r.rng = map_name::<RngKind>(s.rng.as_deref(), "rng", defaults.rng, &mut out);
    r.sampler =
        map_name::<SamplerKind>(s.sampler.as_deref(), "sampler", defaults.sampler, &mut out);
    r.schedule = s.schedule.unwrap_or_else(|| {
        out.push(Unmapped::new(
            "schedule",
            "absent",
            format!("used {}", ScheduleKind::Default),
        ));
        ScheduleKind::Default
    });
    map_size(&s, &mut r, &mut out);
    r.steps = match s.steps {
        Some(n) if (1..=MAX_STEPS).contains(&n) => n,
        other => {
            let value = other.map_or("absent".to_string(), |n| n.to_string());
            out.push(Unmapped::new(
                "steps",
                value,
                format!("must be 1 to {MAX_STEPS}; used {}", defaults.steps),
            ));
            defaults.steps
        }
    };
    r.cfg = match s.cfg {
        Some(c) if c.is_finite() && (0.0..=100.0).contains(&c) => c,
        other => {
            let value = other.map_or("absent".to_string(), |c| c.to_string());
            out.push(Unmapped::new(
                "cfg",
                value,
                format!("must be 0 to 100; used {}", defaults.cfg),
            ));
            defaults.cfg
        }
    };
    r.eta = match s.eta {
        Some(e) if e.is_finite() && (0.0..=1.0).contains(&e) => e,
        Some(e) => {
            out.push(Unmapped::new(
                "eta",
                e.to_string(),
                "must be 0 to 1; used 0",
            ));
            0.0
        }
        // Only DDIM reads eta; for the others 0 is no choice at all.
        None if r.sampler == SamplerKind::Ddim => {
            out.push(Unmapped::new(
                "eta",
                "absent",
                "used 0 (deterministic DDIM)",
            ));
            0.0
        }
        None => 0.0,
    };
    map_variation(&s, &mut r, &mut out);
    out.push(Unmapped::new(
        "dtype",
        "absent",
        format!("{tool} does not record it; used {}", ModelDType::F32),
    ));

    // Only a model identified by its weights goes into the recipe; a name match is a suggestion.
    let found = lookup.find(s.model_name.as_deref(), s.model_hash.as_deref());
    let (resolved, suggested) = match found {
        Some(m) if m.by_content => (Some(m), None),
        other => (None, other),
    };
    let model = ForeignModel {
        name: s.model_name.clone(),
        hash: s.model_hash.clone(),
        resolved,
        suggested,
    };
    if let Some(m) = &model.resolved {
        r.model = ModelRef {
            source: m.source.clone(),
            family: m.family.clone(),
            preset: m.preset.clone(),
            files: Default::default(),
            vae: None,
        };
    }
    if let Some(why) = model.needs_model() {
        let named = match (&s.model_name, &s.model_hash) {
            (None, None) => "absent".to_string(),
            _ => describe_model(s.model_name.as_deref(), s.model_hash.as_deref()),
        };
        out.push(Unmapped::new("model", named, why));
    }

    let mut unmapped = s.unmapped;
    unmapped.extend(out);
    ForeignRecipe {
        tool: s.tool,
        recipe: r,
        model,
        unmapped,
    }
}

/// "v1-5-pruned-emaonly (hash 6ce0161689)" for messages.
pub fn describe_model(name: Option<&str>, hash: Option<&str>) -> String {
    match (name, hash) {
        (Some(n), Some(h)) => format!("'{n}' (hash {h})"),
        (Some(n), None) => format!("'{n}' (no hash recorded)"),
        (None, Some(h)) => format!("with hash {h} (no name recorded)"),
        (None, None) => "(not recorded)".to_string(),
    }
}

/// Parses one of seedling's names; a name this build does not know becomes an entry.
fn map_name<T: FromStr + fmt::Display + Copy>(
    name: Option<&str>,
    field: &str,
    default: T,
    out: &mut Vec<Unmapped>,
) -> T {
    match name {
        Some(n) => n.parse::<T>().unwrap_or_else(|_| {
            out.push(Unmapped::new(
                field,
                n,
                format!("this seedling build has no {field} '{n}'; used {default}"),
            ));
            default
        }),
        None => {
            out.push(Unmapped::new(
                field,
                "absent or not mappable",
                format!("used {default}"),
            ));
            default
        }
    }
}

fn side_ok(v: u32) -> bool {
    (1..=MAX_SIDE).contains(&v) && v.is_multiple_of(LATENT_FACTOR)
}

fn map_size(s: &ForeignSettings, r: &mut Recipe, out: &mut Vec<Unmapped>) {
    let d = Recipe::default();
    match (s.width, s.height) {
        (Some(w), Some(h)) if side_ok(w) && side_ok(h) => {
            r.width = w;
            r.height = h;
        }
        (w, h) => {
            let show = |v: Option<u32>| v.map_or("?".to_string(), |v| v.to_string());
            let value = if w.is_none() && h.is_none() {
                "absent".to_string()
            } else {
                format!("{}x{}", show(w), show(h))
            };
            out.push(Unmapped::new(
                "size",
                value,
                format!(
                    "needs both sides, multiples of {LATENT_FACTOR} up to {MAX_SIDE}; used {}x{}",
                    d.width, d.height
                ),
            ));
        }
    }
}

fn map_variation(s: &ForeignSettings, r: &mut Recipe, out: &mut Vec<Unmapped>) {
    match (s.variation_seed, s.variation_strength) {
        (None, None) => {}
        (Some(seed), Some(w)) if w.is_finite() && (0.0..=1.0).contains(&w) => {
            r.variation_seed = Some(seed);
            r.variation_strength = w;
        }
        (seed, w) => {
            let show_seed = seed.map_or("absent".to_string(), |v| v.to_string());
            let show_w = w.map_or("absent".to_string(), |v| v.to_string());
            out.push(Unmapped::new(
                "variation seed",
                format!("seed {show_seed}, strength {show_w}"),
                "needs a seed and a strength from 0 to 1; no variation used",
            ));
        }
    }
}

/// Parses a whole number the way these tools write them ("20", " 20", "7.0" is refused for
/// integers: a fraction is not a count).
pub fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok()
}

pub fn parse_u32(text: &str) -> Option<u32> {
    text.trim().parse::<u32>().ok()
}

/// A finite float ("7", "7.5", "7.000000"); NaN and infinities are refused.
pub fn parse_f64(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// A JSON number as a whole count (a float with no fraction counts, as JavaScript writes them).
pub fn json_u64(v: &serde_json::Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1.8e19).then_some(f as u64)
}

pub fn json_u32(v: &serde_json::Value) -> Option<u32> {
    json_u64(v).and_then(|n| u32::try_from(n).ok())
}

pub fn json_f64(v: &serde_json::Value) -> Option<f64> {
    v.as_f64().filter(|x| x.is_finite())
}

/// A JSON value shown in a message, shortened so a huge value cannot flood the terminal.
pub fn show_json(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    shorten(&text, 120)
}

/// At most `max` characters, with "…" when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max).collect();
    s.push('…');
    s
}

/// Whether a JSON value says "nothing": null, false, 0, "", [] or {}. Such leftovers are the
/// tools' neutral defaults and change nothing, so they are not listed as unmapped.
pub fn json_is_neutral(v: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match v {
        V::Null => true,
        V::Bool(b) => !b,
        V::Number(n) => n.as_f64() == Some(0.0),
        V::String(s) => s.is_empty(),
        V::Array(a) => a.is_empty(),
        V::Object(o) => o.is_empty(),
    }
}

/// Sets a numeric field from JSON through `convert`, or lists the value as unmapped.
pub(crate) fn map_json_number<T: std::fmt::Display>(
    s: &mut ForeignSettings,
    value: Option<&Value>,
    field: &str,
    convert: fn(&Value) -> Option<T>,
    set: impl FnOnce(&mut ForeignSettings, T),
) {
    if let Some(v) = value {
        match convert(v) {
            Some(x) => set(s, x),
            None => s.unmapped(field, show_json(v), "not a number seedling can use"),
        }
    }
}

/// Lists every leaf of `json` not under a used path, unless it is neutral.
pub(crate) fn list_leftovers(s: &mut ForeignSettings, json: &Value, prefix: &str, used: &[&str]) {
    let Value::Object(map) = json else { return };
    for (key, value) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if used.contains(&path.as_str()) {
            continue;
        }
        match value {
            Value::Object(_) if !json_is_neutral(value) => list_leftovers(s, value, &path, used),
            v if json_is_neutral(v) => {}
            v => s.unmapped(&path, show_json(v), "not used by seedling"),
        }
    }
}

/// A caveat for prompts that use a tool's emphasis or extra-network syntax, which seedling
/// passes to the tokenizer as plain text.
pub fn prompt_syntax_caveat(settings: &mut ForeignSettings, which: &str, text: &str) {
    let emphasis = text.contains('(') || text.contains('[');
    let networks =
        text.contains("<lora:") || text.contains("<hypernet:") || text.contains("<lyco:");
    if emphasis || networks {
        settings.unmapped(
            which,
            shorten(text, 60),
            format!(
                "{} weights words with ( ) [ ] and loads <lora:…> networks; seedling reads the \
                 text as is, so emphasis and networks are not applied",
                settings.tool.name()
            ),
        );
    }
}
