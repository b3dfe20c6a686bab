//! Reading images made by other tools (AUTOMATIC1111 / Forge, stable-diffusion.cpp, ComfyUI,
//! InvokeAI, Fooocus): their metadata is mapped into a seedling [`Recipe`] as far as it can be,
//! and every field that could not be mapped — or that seedling had to fill from a default
//! because the file did not say — is listed as [`Unmapped`]. Nothing is silently defaulted, and
//! nothing is guessed: a model known only by a name that matches is a suggestion, not a choice.
//!
//! Each parser produces a [`ForeignSettings`]: the recipe fields the file gives, as a patch
//! ([`Overrides`]), each set through its declaration in [`FIELDS`] ([`ForeignSettings::take`]
//! parses with the field's own parser and lists what it cannot read in the field's own words),
//! plus what is not a recipe field (the tool, the model). A name a reader's table gives that this
//! build's enum lacks (a sampler another branch adds) becomes an unmapped entry, not a parse
//! failure. [`to_recipe`] then checks each value against its field's declared range, and what
//! is particular to other tools' files (sizes in multiples of the latent factor, both sides and
//! a variation seed with its strength given together, no more steps than training timesteps),
//! and fills the rest with the fields' defaults. The model a file names is looked up through
//! the [`ModelLookup`] the caller passes in.
//!
//! The readers of ComfyUI's, InvokeAI's and Fooocus's formats are here; A1111's text (which
//! stable-diffusion.cpp writes too) is read next to its writer, in `metadata::a1111`, and
//! `metadata::read_foreign` tries each in turn.

pub mod comfyui;
pub mod fooocus;
pub mod invokeai;
pub mod lookup;

pub use lookup::{ModelLookup, NoLookup, ResolvedModel};

/// The field declarations the readers set fields through, found by name while compiling: a name
/// that is not declared in [`FIELDS`] stops the build.
pub mod declared {
    use crate::recipe::{Field, FIELDS};

    pub const PROMPT: &Field = named("prompt");
    pub const NEGATIVE_PROMPT: &Field = named("negative_prompt");
    pub const SEED: &Field = named("seed");
    pub const CFG: &Field = named("cfg");
    pub const STEPS: &Field = named("steps");
    pub const SAMPLER: &Field = named("sampler");
    pub const SCHEDULE: &Field = named("schedule");
    pub const ETA: &Field = named("eta");
    pub const VARIATION_SEED: &Field = named("variation_seed");
    pub const VARIATION_STRENGTH: &Field = named("variation_strength");
    pub const WIDTH: &Field = named("width");
    pub const HEIGHT: &Field = named("height");
    pub const RNG: &Field = named("rng");

    /// The field called `name` in [`FIELDS`].
    const fn named(name: &str) -> &'static Field {
        let mut i = 0;
        while i < FIELDS.len() {
            if same(FIELDS[i].name.as_bytes(), name.as_bytes()) {
                return &FIELDS[i];
            }
            i += 1;
        }
        panic!("no such recipe field")
    }

    /// `a == b`, which is not a `const fn` for slices.
    const fn same(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}

use crate::recipe::fields::Kind;
use crate::recipe::{Field, ModelDType, ModelRef, Overrides, Recipe, Value, FIELDS, MAX_SIDE};
use crate::sampler::SamplerKind;
use serde::Serialize;
use serde_json::Value as Json;
use std::fmt;

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

/// What a foreign parser found, before it becomes a Recipe: the recipe fields the file gives, as
/// a patch of seedling's own values, and what is not a recipe field (the tool, the model).
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignSettings {
    pub tool: ForeignTool,
    /// The recipe fields the file gives, each read through its declaration in
    /// [`FIELDS`](crate::recipe::FIELDS) ([`ForeignSettings::take`]). `None` = the source does
    /// not say (or says something unusable, already explained in `unmapped`). Values are not
    /// range-checked yet: [`to_recipe`] checks them against the same declarations.
    pub patch: Overrides,
    /// The model as the file names it (checkpoint name, file name or repo).
    pub model_name: Option<String>,
    /// The model hash as the file gives it (A1111: first 10 hex digits of the file's sha256).
    pub model_hash: Option<String>,
    /// The LoRAs the prompt's tags apply.
    pub loras: Vec<ForeignLora>,
    /// The textual inversions the prompts used, as the file names and hashes them.
    pub embeddings: Vec<ForeignEmbedding>,
    /// A VAE used instead of the checkpoint's own, as the file names and hashes it.
    pub vae: Option<ForeignFile>,
    pub unmapped: Vec<Unmapped>,
}

impl ForeignSettings {
    pub fn new(tool: ForeignTool) -> Self {
        ForeignSettings {
            tool,
            patch: Overrides::default(),
            model_name: None,
            model_hash: None,
            loras: Vec::new(),
            embeddings: Vec::new(),
            vae: None,
            unmapped: Vec::new(),
        }
    }

    /// Records a field that is not mapped.
    pub fn unmapped(&mut self, field: &str, value: impl fmt::Display, note: impl Into<String>) {
        self.unmapped
            .push(Unmapped::new(field, value.to_string(), note.into()));
    }

    /// Sets `field` from the text the file holds under `source_key` ([`read_text`]); text the
    /// field cannot read is listed as unmapped, in the field's own words.
    pub fn take(&mut self, field: &'static Field, source_key: &str, text: &str) {
        self.put(field, source_key, text, read_text(field, text));
    }

    /// Sets `field` from a JSON value under `source_key` ([`read_json`]); one the field cannot
    /// use is listed as unmapped, in the field's own words.
    pub fn take_json(&mut self, field: &'static Field, source_key: &str, json: &Json) {
        self.put(field, source_key, show_json(json), read_json(field, json));
    }

    /// Sets `field` to `value` (of the field's kind, as [`read_text`] and [`read_json`] give
    /// it); `None` lists `source_key`'s value, as `shown`, with what the field takes.
    pub fn put(
        &mut self,
        field: &'static Field,
        source_key: &str,
        shown: impl fmt::Display,
        value: Option<Value>,
    ) {
        match value {
            Some(v) => field.patch(&mut self.patch, v),
            None => self.unmapped(source_key, shown, field.expected()),
        }
    }
}

/// A value of `field` read from a file's text, without its range (that is [`to_recipe`]'s
/// check): a number or seed by the field's own reader, a name or text by its parser. `None`
/// when the text is not one; for a name this build's enum lacks (one a reader's table gives,
/// such as a sampler another branch adds), that makes it an unmapped entry, not a failure.
pub fn read_text(field: &Field, text: &str) -> Option<Value> {
    match field.kind {
        Kind::Text | Kind::Choice(_) => field.parse(text).ok(),
        _ => field.typed(text),
    }
}

/// A value of `field` from JSON: a number for a number field (a whole one for counts and seeds,
/// where a float with no fraction counts, as JavaScript writes them), a string for a name or
/// text. A number written as a string is not one here (a reader that accepts those says so).
pub fn read_json(field: &Field, json: &Json) -> Option<Value> {
    match field.kind {
        Kind::Seed => json_u64(json).map(Value::Seed),
        Kind::Whole { .. } | Kind::Side => json_u32(json).map(Value::Whole),
        Kind::Number { .. } => json_f64(json).map(Value::Number),
        Kind::Flag => json.as_bool().map(Value::Flag),
        _ => json.as_str().and_then(|t| read_text(field, t)),
    }
}

/// A LoRA a foreign file's prompt applies (A1111's `<lora:NAME:TE:UNET>` tag), with the hash
/// its `Lora hashes` field gives for it (12 hex digits of the addnet hash, or the file's
/// `sshs_model_hash`). Reading does no I/O: the caller finds the file (by hash, else by name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForeignLora {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    pub text_encoder: f64,
    pub unet: f64,
}

/// A model file another tool names (a separate VAE: A1111's `VAE` and `VAE hash`, the file's
/// AutoV2). The caller finds it (by hash, else by name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForeignFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// A textual inversion a foreign file's prompts used (A1111's `TI hashes`: the word and 12 hex
/// digits of the file's sha256). The caller finds the file (by hash, else by name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForeignEmbedding {
    pub name: String,
    pub hash: String,
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
        // A models folder's file of that name is used by a replay, with a warning (A1111
        // loads a pasted infotext's "Model" by name too); a preset or cached repo is not.
        if matches!(m.source, crate::recipe::ModelSource::File { .. }) {
            return Some(Message::text(format!(
                "not identified by its weights; its name matches {} ({}), which a replay uses, \
                 though its weights may differ",
                m.model_arg(),
                m.how
            )));
        }
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
    /// The LoRAs the file's prompt applies, to be found by the caller (the recipe's
    /// `model.loras` records files by content, which reading cannot give).
    pub loras: Vec<ForeignLora>,
    /// The textual inversions the file says its prompts used, to be found by the caller.
    pub embeddings: Vec<ForeignEmbedding>,
    /// A VAE used instead of the checkpoint's own, to be found by the caller.
    pub vae: Option<ForeignFile>,
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
        let mut json = serde_json::json!({
            "source_tool": self.tool.name(),
            "source_format": self.tool.describe(),
            "recipe": recipe,
            "model": self.model,
            "unmapped": self.unmapped,
        });
        if !self.loras.is_empty() {
            json["loras"] = serde_json::to_value(&self.loras).unwrap_or_default();
        }
        if !self.embeddings.is_empty() {
            json["embeddings"] = serde_json::to_value(&self.embeddings).unwrap_or_default();
        }
        if let Some(vae) = &self.vae {
            json["vae"] = serde_json::to_value(vae).unwrap_or_default();
        }
        json
    }
}

/// Turns parsed settings into a recipe: every field the source did not give (or gave in a form
/// seedling cannot use) gets seedling's default and an [`Unmapped`] entry saying so; every value
/// is checked against its field's declared range, and against what an SD 1.x/2.x model needs,
/// so the recipe passes [`Recipe::validate`] for one.
pub fn to_recipe(settings: ForeignSettings, lookup: &dyn ModelLookup) -> ForeignRecipe {
    let s = settings;
    let p = &s.patch;
    let mut out = Vec::new();
    let mut r = Recipe::default();
    set_in_range(p, &mut r, &mut out);
    note_absent(p, &mut out);
    map_size(p, &mut r, &mut out);
    map_steps_and_cfg(p, &mut r, &mut out);
    note_eta(p, &r, &mut out);
    map_variation(p, &mut r, &mut out);
    out.push(Unmapped::new(
        "dtype",
        "absent",
        format!(
            "{} does not record it; used {}",
            s.tool.name(),
            ModelDType::F32
        ),
    ));
    let model = map_model(&s, lookup, &mut r, &mut out);
    let mut unmapped = s.unmapped;
    unmapped.extend(out);
    ForeignRecipe {
        tool: s.tool,
        recipe: r,
        model,
        loras: s.loras,
        embeddings: s.embeddings,
        vae: s.vae,
        unmapped,
    }
}

/// The fields `to_recipe` checks two at a time, so that one entry explains both: a size needs
/// both sides, a variation seed its strength.
const PAIRED: [&str; 4] = [
    declared::WIDTH.name,
    declared::HEIGHT.name,
    declared::VARIATION_SEED.name,
    declared::VARIATION_STRENGTH.name,
];

/// Sets every field the patch gives (but the paired ones) that its declared range accepts; a
/// value the range refuses is listed with the field's own message, and the field keeps its
/// default.
fn set_in_range(p: &Overrides, r: &mut Recipe, out: &mut Vec<Unmapped>) {
    let defaults = Recipe::default();
    for f in FIELDS.iter().filter(|f| !PAIRED.contains(&f.name)) {
        let Some(v) = f.patched(p) else { continue };
        match f.in_range(&v) {
            Ok(()) => f.set(r, v),
            Err(why) => out.push(Unmapped::new(
                f.name,
                v.to_string(),
                format!("{why}; used {}", f.get(&defaults)),
            )),
        }
    }
}

/// An entry for each of the prompts, the seed, the noise, the sampler and the schedule that the
/// file does not give: seedling's default is a choice the file did not make.
fn note_absent(p: &Overrides, out: &mut Vec<Unmapped>) {
    let d = Recipe::default();
    let mut absent = |missing: bool, field: &str, value: &str, note: String| {
        if missing {
            out.push(Unmapped::new(field, value, note));
        }
    };
    absent(p.prompt.is_none(), "prompt", "absent", "used ''".into());
    absent(
        p.negative_prompt.is_none(),
        "negative prompt",
        "absent",
        "used ''".into(),
    );
    absent(
        p.seed.is_none(),
        "seed",
        "absent",
        format!("used {}", d.seed),
    );
    // A reader leaves these unset when the file names one seedling does not have, too.
    let unknown = "absent or not mappable";
    absent(p.rng.is_none(), "rng", unknown, format!("used {}", d.rng));
    absent(
        p.sampler.is_none(),
        "sampler",
        unknown,
        format!("used {}", d.sampler),
    );
    absent(
        p.schedule.is_none(),
        "schedule",
        "absent",
        format!("used {}", d.schedule),
    );
}

/// A field's declared bounds, as its messages write them ("0", "100").
fn bounds(f: &Field) -> (String, String) {
    match f.kind {
        Kind::Whole { min, max } => (min.to_string(), max.to_string()),
        Kind::Number { min, max } => (min.to_string(), max.to_string()),
        _ => (String::new(), String::new()),
    }
}

/// Steps beyond the model's training timesteps are refused (the declared range has no such
/// bound: it depends on the model); the steps and guidance scale absent are listed.
fn map_steps_and_cfg(p: &Overrides, r: &mut Recipe, out: &mut Vec<Unmapped>) {
    let d = Recipe::default();
    let (min_steps, _) = bounds(declared::STEPS);
    let steps_note = format!("must be {min_steps} to {MAX_STEPS}; used {}", d.steps);
    match p.steps {
        None => out.push(Unmapped::new("steps", "absent", steps_note)),
        Some(n) if n > MAX_STEPS => {
            out.push(Unmapped::new("steps", n.to_string(), steps_note));
            r.steps = d.steps;
        }
        Some(_) => {}
    }
    if p.cfg.is_none() {
        let (min, max) = bounds(declared::CFG);
        let note = format!("must be {min} to {max}; used {}", d.cfg);
        out.push(Unmapped::new("cfg", "absent", note));
    }
}

/// Only DDIM reads eta: for it an absent eta is a choice (deterministic DDIM), for the others
/// none at all.
fn note_eta(p: &Overrides, r: &Recipe, out: &mut Vec<Unmapped>) {
    if p.eta.is_none() && r.sampler == SamplerKind::Ddim {
        out.push(Unmapped::new(
            "eta",
            "absent",
            "used 0 (deterministic DDIM)",
        ));
    }
}

/// Puts the model into the recipe when it is identified by its weights (a name match is a
/// suggestion only), and says why replay needs `--model` when it is not.
fn map_model(
    s: &ForeignSettings,
    lookup: &dyn ModelLookup,
    r: &mut Recipe,
    out: &mut Vec<Unmapped>,
) -> ForeignModel {
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
            loras: Vec::new(),
            embeddings: Vec::new(),
        };
    }
    if let Some(why) = model.needs_model() {
        let named = match (&s.model_name, &s.model_hash) {
            (None, None) => "absent".to_string(),
            _ => describe_model(s.model_name.as_deref(), s.model_hash.as_deref()),
        };
        out.push(Unmapped::new("model", named, why));
    }
    model
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

/// Whether `v` is a side its field declares and a multiple of the latent factor.
fn side_ok(field: &Field, v: u32) -> bool {
    field.in_range(&Value::Whole(v)).is_ok() && v.is_multiple_of(LATENT_FACTOR)
}

fn map_size(p: &Overrides, r: &mut Recipe, out: &mut Vec<Unmapped>) {
    let d = Recipe::default();
    match (p.width, p.height) {
        (Some(w), Some(h)) if side_ok(declared::WIDTH, w) && side_ok(declared::HEIGHT, h) => {
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
            // MAX_SIDE is the bound the sides' declarations (`Kind::Side`) check.
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

fn map_variation(p: &Overrides, r: &mut Recipe, out: &mut Vec<Unmapped>) {
    let strength = declared::VARIATION_STRENGTH;
    match (p.variation_seed, p.variation_strength) {
        (None, None) => {}
        (Some(seed), Some(w)) if strength.in_range(&Value::Number(w)).is_ok() => {
            r.variation_seed = Some(seed);
            r.variation_strength = w;
        }
        (seed, w) => {
            let show_seed = seed.map_or("absent".to_string(), |v| v.to_string());
            let show_w = w.map_or("absent".to_string(), |v| v.to_string());
            let (min, max) = bounds(strength);
            out.push(Unmapped::new(
                "variation seed",
                format!("seed {show_seed}, strength {show_w}"),
                format!("needs a seed and a strength from {min} to {max}; no variation used"),
            ));
        }
    }
}

/// Parses a whole number the way these tools write them ("20", " 20", "7.0" is refused for
/// integers: a fraction is not a count).
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

/// Lists every leaf of `json` not under a used path, unless it is neutral.
pub(crate) fn list_leftovers(s: &mut ForeignSettings, json: &Json, prefix: &str, used: &[&str]) {
    let Json::Object(map) = json else { return };
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
            Json::Object(_) if !json_is_neutral(value) => list_leftovers(s, value, &path, used),
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
