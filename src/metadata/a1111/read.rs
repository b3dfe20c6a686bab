//! Reading AUTOMATIC1111-style `parameters` text ("infotext"), as AUTOMATIC1111, Forge and
//! stable-diffusion.cpp write it, and as `write` writes it. Names come from `names`, the table
//! the writer uses.
//!
//! The text is split exactly as A1111's `parse_generation_parameters`
//! (modules/infotext_utils.py) does: strip the whole text, split on "\n"; the last line is the
//! settings line when its `re_param` matches number at least 3, else it is part of the prompt;
//! every other line is stripped, and the lines from the one starting with `Negative prompt:`
//! on form the negative prompt. The settings line is scanned like A1111's
//! `re_param = \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)` with `findall`; a value in
//! double quotes is JSON-unquoted (A1111's `unquote`).
//!
//! stable-diffusion.cpp writes the same layout with its own names and, in recent versions,
//! appends `, SDCPP: {json}`: when that JSON is readable it is used instead of the line (see
//! `sdcpp`, which maps both).

use super::names::{self, key, NEGATIVE_PROMPT, UNIPC_VARIANT};
use super::python::{is_space, py_strip};
use super::sdcpp;
use crate::metadata::foreign::{
    declared, fooocus, parse_f64, parse_u32, prompt_syntax_caveat, shorten, ForeignEmbedding,
    ForeignFile, ForeignLora, ForeignSettings, ForeignTool,
};
use crate::prompt_networks::{take_tags, NetworkTag};
use crate::sampler::{SamplerKind, ScheduleKind};
use serde_json::Value;
use std::collections::HashMap;

/// Parses `parameters` text. Fails only when there is no settings line at all (then the text
/// is a caption, not a recipe), or when the text is a JSON object that is not Fooocus's.
pub fn parse(text: &str) -> Result<ForeignSettings, String> {
    // Fooocus writes its recipe into the same chunk as one line of JSON; read as infotext it
    // would give an empty prompt and fields cut out of the JSON.
    if let Some(json) = json_object(text) {
        return fooocus::parse(&json);
    }
    let split = split_infotext(text);
    if split.settings.is_empty() {
        return Err(if py_strip(text).is_empty() {
            "the text is empty".to_string()
        } else {
            "it has no settings line ('Steps: …, Seed: …, Size: …'), only text".to_string()
        });
    }
    let (line, sdcpp_json) = sdcpp::split_sdcpp_tail(&split.settings);
    let fields = Fields::new(find_params(line));
    let version = fields.get(key::VERSION).unwrap_or("");
    let tool = if sdcpp_json.is_some() || version.contains("stable-diffusion.cpp") {
        ForeignTool::StableDiffusionCpp
    } else {
        ForeignTool::Automatic1111
    };
    let ours = is_seedling_version(version);
    let mut s = ForeignSettings::new(tool);
    // The prompt A1111 encodes is the text without its extra-network tags
    // (modules/extra_networks.py `parse_prompt`; only the prompt is parsed, not the negative
    // prompt: processing.py `parse_extra_network_prompts`). stable-diffusion.cpp reads the
    // same `<lora:NAME:W>` tags.
    let (mut prompt, tags) = take_tags(&split.prompt);
    // seedling writes its LoRAs as ` <lora:…>` after the prompt (`write`): each tag's space
    // goes with it, giving back the recipe's prompt exactly.
    if ours && prompt.ends_with(&" ".repeat(tags.len())) {
        prompt.truncate(prompt.len() - tags.len());
    }
    s.patch.prompt = Some(prompt);
    s.patch.negative_prompt = split.negative.clone();

    match sdcpp_json.map(|j| (j, sdcpp::parse_first_json(j))) {
        Some((_, Some(Value::Object(json)))) => sdcpp::map_sdcpp_json(&mut s, &Value::Object(json)),
        Some((raw, _)) => {
            s.unmapped(
                "SDCPP",
                shorten(raw, 60),
                "not readable JSON; the settings line was used instead",
            );
            map_fields(&mut s, &fields, ours);
        }
        None => map_fields(&mut s, &fields, ours),
    }
    map_networks(&mut s, tags, fields.get(key::LORA_HASHES));
    map_embeddings(&mut s, fields.get(key::TI_HASHES));
    // seedling's own text (an image whose `seedling` chunk was lost) holds prompts seedling
    // reads as written.
    if !ours {
        if let Some(p) = s.patch.prompt.clone() {
            prompt_syntax_caveat(&mut s, "prompt", &p);
        }
        if let Some(n) = s.patch.negative_prompt.clone() {
            prompt_syntax_caveat(&mut s, "negative prompt", &n);
        }
    }
    Ok(s)
}

/// The text as a JSON object, when it is one (after Python's strip, as A1111 reads it).
fn json_object(text: &str) -> Option<serde_json::Map<String, Value>> {
    let t = py_strip(text);
    if !t.starts_with('{') {
        return None;
    }
    match serde_json::from_str(t) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The LoRAs of the prompt's tags, each with its hash from `Lora hashes` (`name: hash, …`,
/// keyed by the tag's name without `:` and `,`, as extensions-builtin/Lora/
/// extra_networks_lora.py `activate` writes it). Tags of other kinds, and hashes no tag gives
/// strengths for, are listed as not applied.
fn map_networks(s: &mut ForeignSettings, tags: Vec<NetworkTag>, hashes: Option<&str>) {
    let mut hashes: Vec<(String, String)> = hashes
        .unwrap_or("")
        .split(',')
        .filter_map(|entry| entry.rsplit_once(':'))
        .map(|(name, hash)| (name.trim().to_string(), hash.trim().to_string()))
        .collect();
    for tag in tags {
        if tag.kind != "lora" {
            let note = format!(
                "{} applies this {} network; seedling does not, so the image differs",
                s.tool.name(),
                tag.kind
            );
            s.unmapped("prompt", shorten(&tag.text, 60), note);
            continue;
        }
        match tag.lora() {
            Ok(l) => {
                let key = l.name.replace([':', ','], "");
                let hash = hashes
                    .iter()
                    .position(|(n, _)| *n == key)
                    .map(|i| hashes.remove(i).1);
                s.loras.push(ForeignLora {
                    name: l.name,
                    hash,
                    text_encoder: l.text_encoder,
                    unet: l.unet,
                });
            }
            Err(e) => s.unmapped("prompt", shorten(&tag.text, 60), e.to_string()),
        }
    }
    for (name, hash) in hashes {
        s.unmapped(
            key::LORA_HASHES,
            format!("{name}: {hash}"),
            "no <lora:…> tag in the prompt gives its strengths; not applied",
        );
    }
}

/// The textual inversions of `TI hashes` (`name: hash, …`, modules/sd_hijack_clip.py; A1111
/// lists one once per prompt that used it, so repeats are dropped). An entry that is not
/// `name: hash` is listed as not read.
fn map_embeddings(s: &mut ForeignSettings, hashes: Option<&str>) {
    for entry in hashes
        .unwrap_or("")
        .split(',')
        .filter(|e| !e.trim().is_empty())
    {
        match entry.rsplit_once(':') {
            Some((name, hash)) if !name.trim().is_empty() && !hash.trim().is_empty() => {
                let e = ForeignEmbedding {
                    name: name.trim().to_string(),
                    hash: hash.trim().to_string(),
                };
                if !s.embeddings.contains(&e) {
                    s.embeddings.push(e);
                }
            }
            _ => s.unmapped(key::TI_HASHES, entry.trim(), "not a name: hash entry"),
        }
    }
}

/// Whether a `Version` field is seedling's own (`provenance::TOOL`: "seedling 0.1.0"), so the
/// text means what seedling's writer meant (`metadata::a1111`), not what A1111 would.
fn is_seedling_version(version: &str) -> bool {
    version.trim().strip_prefix("seedling ").is_some()
}

/// The infotext in its three parts, as A1111 splits it.
#[derive(Debug, Clone, PartialEq)]
pub struct Infotext {
    pub prompt: String,
    /// `None` when there is no `Negative prompt:` line.
    pub negative: Option<String>,
    /// The settings line, or "" when the last line is not one.
    pub settings: String,
}

/// A1111's `parse_generation_parameters` split (see the module comment).
pub fn split_infotext(text: &str) -> Infotext {
    let mut lines: Vec<&str> = py_strip(text).split('\n').collect();
    let mut settings = String::new();
    if let Some(last) = lines.last() {
        if find_params(last).len() >= 3 {
            settings = last.to_string();
            lines.pop();
        }
    }
    let mut prompt = String::new();
    let mut negative: Option<String> = None;
    for line in lines {
        let mut line = py_strip(line);
        if let Some(rest) = line.strip_prefix(NEGATIVE_PROMPT) {
            line = py_strip(rest);
            negative.get_or_insert_with(String::new);
        }
        // A1111 joins with "\n" only once the part is non-empty.
        let part = negative.as_mut().unwrap_or(&mut prompt);
        if !part.is_empty() {
            part.push('\n');
        }
        part.push_str(line);
    }
    Infotext {
        prompt,
        negative,
        settings,
    }
}

/// A1111's `re_param.findall` on one line, values unquoted as A1111's `unquote` does.
pub fn find_params(line: &str) -> Vec<(String, String)> {
    scan_params(line).0
}

/// [`find_params`], and how many times it read a character of the line in all. The scan is
/// linear: that count stays within a small multiple of the line's length whatever the line
/// holds (a test checks it on the inputs that used to be quadratic).
///
/// Python's backtracking `findall` retries the pattern at every position after a failed one,
/// so a long run of key characters without a colon costs time quadratic in its length (as did
/// a port that did the same). Here a failed start skips the whole stretch it examined: every
/// start inside a run of key characters ends at the same character that is not a colon, so
/// fails the same way. And a quoted value's closing quote is looked up in a table built in one
/// pass, instead of a scan to the end of the line for every opening quote that never closes.
pub(crate) fn scan_params(line: &str) -> (Vec<(String, String)>, usize) {
    let c = Chars::new(line);
    let closes = closing_quotes(&c);
    let mut out = Vec::new();
    let mut p = 0;
    while p < c.len() {
        let (found, next) = match_param(&c, &closes, p);
        debug_assert!(next > p);
        if let Some((key, value)) = found {
            out.push((key, unquote(value)));
        }
        p = next;
    }
    (out, c.reads.get())
}

/// The line's characters, counting every read (see [`scan_params`]).
struct Chars {
    c: Vec<char>,
    reads: std::cell::Cell<usize>,
}

impl Chars {
    fn new(line: &str) -> Self {
        Chars {
            c: line.chars().collect(),
            reads: std::cell::Cell::new(0),
        }
    }

    fn len(&self) -> usize {
        self.c.len()
    }

    /// The character at `i`, if any.
    fn at(&self, i: usize) -> Option<char> {
        self.reads.set(self.reads.get() + 1);
        self.c.get(i).copied()
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.c[from..to].iter().collect()
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `[\w \-/]`, the characters of a key after its first.
fn is_key_char(c: char) -> bool {
    is_word(c) || c == ' ' || c == '-' || c == '/'
}

/// One `re_param` match starting at `p`: the (key, raw value) if one starts there, and where
/// the scan goes on (the end of the match, or past every start that fails as this one did).
/// The result is always past `p`.
fn match_param(c: &Chars, closes: &[usize], p: usize) -> (Option<(String, String)>, usize) {
    let n = c.len();
    let mut i = p;
    while c.at(i).is_some_and(is_space) {
        i += 1;
    }
    let key_start = i;
    if !c.at(i).is_some_and(is_word) {
        // Every start from p to here skips the same spaces to the same non-word character.
        return (None, i + 1);
    }
    i += 1;
    while c.at(i).is_some_and(is_key_char) {
        i += 1;
    }
    // `[\w \-/]+` needs at least one character after the first `\w`, then the colon. A start
    // later in this run reaches the same character `i` with a shorter key, so fails too.
    if i - key_start < 2 || c.at(i) != Some(':') {
        return (None, i.max(p + 1));
    }
    let key = c.text(key_start, i);
    i += 1;
    while c.at(i).is_some_and(is_space) {
        i += 1;
    }
    // First alternative: a quoted string, followed by "," or the end.
    if c.at(i) == Some('"') {
        let close = closes[i + 1];
        // `+`: at least one character between the quotes.
        if close != NO_QUOTE && close > i + 1 {
            let after = close + 1;
            match c.at(after) {
                None => return (Some((key, c.text(i, close + 1))), n),
                Some(',') => return (Some((key, c.text(i, close + 1))), after + 1),
                Some(_) => {}
            }
        }
    }
    // Second alternative: everything up to the next comma.
    let mut j = i;
    while c.at(j).is_some_and(|ch| ch != ',') {
        j += 1;
    }
    let end = if j < n { j + 1 } else { n };
    (Some((key, c.text(i, j))), end)
}

/// No closing quote (see [`closing_quotes`]).
const NO_QUOTE: usize = usize::MAX;

/// For every position `j` (and `len`, `len + 1`): where `(?:\\.|[^\\"])*` started at `j` stops
/// at a `"`, i.e. the quote that closes a value whose text starts at `j`, or [`NO_QUOTE`].
/// Built right to left in one pass: the scan from `j` continues exactly as the scan from the
/// next element's start (`j + 2` after a backslash escape, `j + 1` otherwise), so no character
/// is looked at twice however many values open a quote.
fn closing_quotes(c: &Chars) -> Vec<usize> {
    let n = c.len();
    let mut t = vec![NO_QUOTE; n + 2];
    for j in (0..n).rev() {
        t[j] = match c.at(j) {
            Some('"') => j,
            // `\\.`: a backslash and any character but a newline.
            Some('\\') if j + 1 < n && c.at(j + 1) != Some('\n') => t[j + 2],
            Some('\\') => NO_QUOTE,
            _ => t[j + 1],
        };
    }
    t
}

/// A1111's `unquote`: a value in double quotes is parsed as JSON; if that fails it stays as is.
fn unquote(value: String) -> String {
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        if let Ok(Value::String(s)) = serde_json::from_str::<Value>(&value) {
            return s;
        }
    }
    value
}

/// The settings line's fields as A1111's dict holds them: one entry per key, in the order the
/// keys first appear, each with its last value. Indexed by key, so building it and every lookup
/// cost the same for a line of 160 000 fields as for one of ten (a list that removed a key's
/// earlier entry on every insertion was quadratic).
struct Fields {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Fields {
    fn new(pairs: Vec<(String, String)>) -> Self {
        let mut entries: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        let mut index: HashMap<String, usize> = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            match index.get(&k) {
                Some(&at) => entries[at].1 = v,
                None => {
                    index.insert(k.clone(), entries.len());
                    entries.push((k, v));
                }
            }
        }
        Fields { entries, index }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&at| self.entries[at].1.as_str())
    }
}

/// Maps the settings line's fields (A1111 or sd.cpp names). `ours`: the text is seedling's own,
/// so its values mean what seedling ran, and A1111's readings of them do not apply.
fn map_fields(s: &mut ForeignSettings, fields: &Fields, ours: bool) {
    let get = |k: &str| fields.get(k);
    let sdcpp = s.tool == ForeignTool::StableDiffusionCpp;
    // `Lora hashes` belongs to the prompt's tags (`map_networks`).
    let mut used: Vec<&str> = vec![key::VERSION, key::LORA_HASHES, key::TI_HASHES];

    for k in [key::STEPS, key::CFG_SCALE, key::SEED] {
        take_field(s, fields, &mut used, k);
    }
    if let Some(v) = get(key::SIZE) {
        used.push(key::SIZE);
        match parse_size(v) {
            Some((w, h)) => {
                s.patch.width = Some(w);
                s.patch.height = Some(h);
            }
            None => s.unmapped(key::SIZE, v, "not WIDTHxHEIGHT"),
        }
    }
    if let Some(v) = get(key::MODEL) {
        used.push(key::MODEL);
        s.model_name = Some(v.trim().to_string()).filter(|n| !n.is_empty());
    }
    if let Some(v) = get(key::MODEL_HASH) {
        used.push(key::MODEL_HASH);
        s.model_hash = Some(v.trim().to_string()).filter(|n| !n.is_empty());
    }
    // A VAE chosen apart from the checkpoint (modules/sd_vae.py; its hash is the file's
    // AutoV2), found by the replay as the checkpoint is.
    let (vae, vae_hash) = (get(key::VAE), get(key::VAE_HASH));
    if vae.is_some() || vae_hash.is_some() {
        used.extend([key::VAE, key::VAE_HASH]);
        let clean = |v: Option<&str>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        s.vae = Some(ForeignFile {
            name: clean(vae),
            hash: clean(vae_hash),
        });
    }
    used.push(key::RNG);
    map_rng(s, get(key::RNG), sdcpp);
    used.push(key::SAMPLER);
    used.push(key::SCHEDULE_TYPE);
    if sdcpp {
        sdcpp::map_sdcpp_sampler(s, get(key::SAMPLER));
    } else {
        map_a1111_sampler(s, get(key::SAMPLER), get(key::SCHEDULE_TYPE), ours);
        if s.patch.sampler == Some(SamplerKind::UniPc) {
            used.extend([key::UNIPC_VARIANT, key::UNIPC_ORDER]);
            if !ours {
                map_a1111_unipc(s, get(key::UNIPC_VARIANT), get(key::UNIPC_ORDER));
            }
        }
    }
    for k in [key::VARIATION_SEED, key::VARIATION_SEED_STRENGTH] {
        take_field(s, fields, &mut used, k);
    }
    let ancestral = s.patch.sampler == Some(SamplerKind::EulerAncestral);
    if !ours && s.patch.variation_strength.unwrap_or(0.0) > 0.0 && ancestral {
        s.unmapped(
            key::VARIATION_SEED,
            get(key::VARIATION_SEED).unwrap_or("absent"),
            "A1111 mixes the variation seed into the initial noise only; seedling mixes every \
             draw, so an ancestral sampler's image differs",
        );
    }
    map_etas(s, &mut used, get(key::ETA_DDIM), get(key::ETA));
    // Values that equal seedling's behaviour: A1111 writes Clip skip only when > 1, and an
    // "Eta noise seed delta" of 0 changes nothing.
    for (k, neutral) in [
        (key::CLIP_SKIP, "1"),
        (key::ENSD, "0"),
        (key::ETA_NOISE_SEED_DELTA, "0"),
    ] {
        if get(k).map(str::trim) == Some(neutral) {
            used.push(k);
        }
    }
    for (k, v) in &fields.entries {
        if !used.contains(&k.as_str()) {
            s.unmapped(k, shorten(v, 120), "not used by seedling");
        }
    }
}

/// Reads the key `k`, if the line has it, and marks it used ([`take_as_is`]).
fn take_field<'k>(s: &mut ForeignSettings, fields: &Fields, used: &mut Vec<&'k str>, k: &'k str) {
    used.push(k);
    if let Some(v) = fields.get(k) {
        take_as_is(s, k, v);
    }
}

/// Reads a key whose value is a recipe field's, written as is ([`names::field_for`]), through
/// the field's declaration.
fn take_as_is(s: &mut ForeignSettings, k: &str, v: &str) {
    if let Some(field) = names::field_for(k) {
        s.take(field, k, v);
    }
}

/// "512x768" → (512, 768).
fn parse_size(v: &str) -> Option<(u32, u32)> {
    let (w, h) = v.trim().split_once('x')?;
    Some((parse_u32(w)?, parse_u32(h)?))
}

/// `Eta DDIM` is DDIM's eta; A1111's `Eta` is the ancestral samplers' (default 1, which is what
/// seedling's euler_a does); sd.cpp's `Eta` is its samplers' eta.
fn map_etas(
    s: &mut ForeignSettings,
    used: &mut Vec<&str>,
    eta_ddim: Option<&str>,
    eta: Option<&str>,
) {
    let ddim = s.patch.sampler == Some(SamplerKind::Ddim);
    let sdcpp = s.tool == ForeignTool::StableDiffusionCpp;
    if let Some(v) = eta_ddim.filter(|_| ddim) {
        used.push(key::ETA_DDIM);
        take_as_is(s, key::ETA_DDIM, v);
    }
    if let Some(v) = eta {
        let ancestral = s.patch.sampler == Some(SamplerKind::EulerAncestral);
        if ddim && sdcpp {
            // sd.cpp's `Eta` is its samplers' eta, which for DDIM is seedling's.
            used.push(key::ETA);
            s.take(declared::ETA, key::ETA, v);
        } else if !sdcpp && parse_f64(v) == Some(1.0) && ancestral {
            used.push(key::ETA);
        }
    }
}

/// A1111's `RNG` ("CPU", "NV", "GPU"; absent means GPU, A1111's default), or sd.cpp's
/// ([`sdcpp::map_rng`]).
fn map_rng(s: &mut ForeignSettings, value: Option<&str>, sdcpp: bool) {
    if sdcpp {
        return sdcpp::map_rng(s, value);
    }
    let v = value.map(str::trim);
    // seedling's own writer names its chacha stream too (a seedling image whose chunk was lost).
    let rng = v.and_then(names::rng_named);
    s.patch.rng = rng;
    if rng.is_none() {
        let note = match v {
            Some("GPU") | None => {
                "A1111's GPU source is torch's generator on whatever device made the image; \
                 which device is not recorded. If it was an NVIDIA GPU, --rng philox draws the \
                 same noise"
            }
            Some(_) => "unknown noise source",
        };
        s.unmapped(key::RNG, v.unwrap_or("absent"), note);
    }
}

/// seedling's name for an A1111 sampler display name (modules/sd_samplers_kdiffusion.py,
/// sd_samplers_timesteps.py, sd_samplers_lcm.py), and whether A1111 runs it on k-diffusion
/// sigmas (whose uniform spacing differs from the diffusers one).
pub fn a1111_sampler_name(name: &str) -> Option<(&'static str, bool)> {
    names::sampler_named(name).map(|s| (s.kind.name(), s.uses_schedule))
}

/// Splits an old combined name ("DPM++ 2M Karras", before A1111 1.9 split off "Schedule type")
/// into the sampler and the schedule it names.
pub fn split_a1111_sampler(name: &str) -> (&str, Option<&str>) {
    for suffix in names::OLD_SCHEDULE_SUFFIXES {
        if let Some(base) = name.strip_suffix(suffix) {
            return (base, Some(suffix.trim_start()));
        }
    }
    (name, None)
}

/// What an A1111 "Schedule type" (modules/sd_schedulers.py: a scheduler's label or name, as
/// A1111's `schedulers_map` takes either) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum A1111Schedule {
    /// "Automatic": the sampler's own default (Karras for "DPM++ 2M" since A1111 1.9).
    Automatic,
    /// A schedule seedling has.
    Kind(ScheduleKind),
}

/// The "Schedule type" seedling can run, or `None` (Exponential, SGM Uniform, …).
pub fn a1111_schedule(label: &str) -> Option<A1111Schedule> {
    let (automatic, automatic_name) = names::AUTOMATIC;
    if label == automatic || label == automatic_name {
        return Some(A1111Schedule::Automatic);
    }
    names::schedule_named(label).map(A1111Schedule::Kind)
}

/// The schedule A1111's "Automatic" runs for a sampler display name (its sampler options'
/// `scheduler`, sd_samplers_kdiffusion.py): Karras for "DPM++ 2M", else the uniform spacing
/// of `get_sigmas` (also for a sampler seedling does not have).
pub fn a1111_automatic_schedule(sampler: &str) -> ScheduleKind {
    names::sampler_named(sampler).map_or(ScheduleKind::Default, |s| s.automatic)
}

fn map_a1111_sampler(
    s: &mut ForeignSettings,
    sampler: Option<&str>,
    schedule: Option<&str>,
    ours: bool,
) {
    let Some(full) = sampler.map(str::trim) else {
        s.unmapped(
            key::SAMPLER,
            "absent",
            "A1111 always records it; the text is incomplete",
        );
        return;
    };
    let (base, old_schedule) = split_a1111_sampler(full);
    let kdiffusion = match names::sampler_named(base) {
        Some(sampler) => {
            s.patch.sampler = Some(sampler.kind);
            sampler.uses_schedule
        }
        None => {
            s.unmapped(
                key::SAMPLER,
                full,
                "seedling has no equivalent of this A1111 sampler",
            );
            false
        }
    };
    // An explicit "Schedule type" wins over a schedule in an old combined name. Without either
    // (A1111 before 1.9, which wrote no "Schedule type"), the steps were uniform.
    let label = schedule.map(str::trim).or(old_schedule);
    match label.map(|l| (l, a1111_schedule(l))) {
        // seedling wrote "Automatic" for its default schedule before it wrote "Uniform".
        Some((_, Some(A1111Schedule::Automatic))) if ours => {
            s.patch.schedule = Some(ScheduleKind::Default)
        }
        Some((_, Some(A1111Schedule::Automatic))) => {
            s.patch.schedule = Some(a1111_automatic_schedule(base))
        }
        Some((_, Some(A1111Schedule::Kind(k)))) => s.patch.schedule = Some(k),
        Some((l, None)) => s.unmapped(
            key::SCHEDULE_TYPE,
            l,
            "seedling has no such schedule; used the model's default",
        ),
        None => s.patch.schedule = Some(ScheduleKind::Default),
    }
    if kdiffusion && !ours && s.patch.schedule == Some(ScheduleKind::Default) {
        s.unmapped(
            key::SCHEDULE_TYPE,
            label.unwrap_or("absent (uniform)"),
            "A1111's k-diffusion samplers space the steps evenly from timestep 999 to 0; \
             seedling follows the model's scheduler config (for SD 1.5 'leading'), so the \
             noise levels differ slightly",
        );
    }
}

/// A1111's UniPC settings, which its text records only when pasted ones were overridden (or
/// when seedling wrote it): absent means A1111's defaults, variant bh1 and order 3.
fn map_a1111_unipc(s: &mut ForeignSettings, variant: Option<&str>, order: Option<&str>) {
    let variant = variant.map(str::trim);
    if variant != Some(UNIPC_VARIANT) {
        s.unmapped(
            key::UNIPC_VARIANT,
            variant.unwrap_or("absent (A1111's default, bh1)"),
            "seedling's unipc is the bh2 variant",
        );
    }
    let order = order.map(str::trim);
    if order != Some("2") {
        s.unmapped(
            key::UNIPC_ORDER,
            order.unwrap_or("absent (A1111's default, 3)"),
            "seedling's unipc takes its order from the model's scheduler config (2 unless it \
             says otherwise)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn re_param_semantics() {
        // Quoted values keep their commas and colons; unquoted ones stop at the next comma.
        let got = find_params(
            r#"Steps: 20, Model: "my model: v2, final", Lora hashes: "a: 1, b: 2", Size: 512x768"#,
        );
        assert_eq!(
            got,
            vec![
                ("Steps".into(), "20".into()),
                ("Model".into(), "my model: v2, final".into()),
                ("Lora hashes".into(), "a: 1, b: 2".into()),
                ("Size".into(), "512x768".into()),
            ]
        );
        // A quote not followed by "," or the end falls back to the plain alternative.
        assert_eq!(
            find_params(r#"Ab: "x" y, B2: 2"#),
            vec![("Ab".into(), r#""x" y"#.into()), ("B2".into(), "2".into())]
        );
        // Escaped quotes inside, and JSON escapes decoded.
        assert_eq!(
            find_params(r#"Prompt: "say \"hi\"\nthere""#),
            vec![("Prompt".into(), "say \"hi\"\nthere".into())]
        );
        // One-character keys do not match (the regex needs two); text without a colon is skipped.
        assert_eq!(
            find_params("a: 1, no colon here, bb: 2"),
            vec![("bb".into(), "2".into())]
        );
    }

    #[test]
    fn split_like_a1111() {
        let t = split_infotext(
            "  a cat,\n (sitting) \nNegative prompt: dog\n  ugly\nSteps: 20, Seed: 1, Size: 8x8\n",
        );
        assert_eq!(t.prompt, "a cat,\n(sitting)");
        assert_eq!(t.negative.as_deref(), Some("dog\nugly"));
        assert_eq!(t.settings, "Steps: 20, Seed: 1, Size: 8x8");
        // Fewer than three fields: the last line is prompt text.
        let t = split_infotext("a cat\nSteps: 20, Seed: 1");
        assert_eq!(t.prompt, "a cat\nSteps: 20, Seed: 1");
        assert_eq!(t.settings, "");
        assert_eq!(t.negative, None);
    }

    #[test]
    fn sampler_names_at_the_string_level() {
        assert_eq!(
            split_a1111_sampler("DPM++ 2M Karras"),
            ("DPM++ 2M", Some("Karras"))
        );
        assert_eq!(a1111_sampler_name("DPM++ 2M"), Some(("dpmpp_2m", true)));
        assert_eq!(a1111_sampler_name("Euler a"), Some(("euler_a", true)));
        assert_eq!(a1111_sampler_name("UniPC"), Some(("unipc", false)));
        assert_eq!(a1111_sampler_name("PLMS"), Some(("pndm", false)));
        assert_eq!(a1111_sampler_name("LCM"), Some(("lcm", true)));
        assert_eq!(a1111_sampler_name("DDIM"), Some(("ddim", false)));
        assert_eq!(a1111_sampler_name("Heun"), None);
        assert_eq!(
            a1111_schedule("Karras"),
            Some(A1111Schedule::Kind(ScheduleKind::Karras))
        );
        assert_eq!(
            a1111_schedule("Uniform"),
            Some(A1111Schedule::Kind(ScheduleKind::Default))
        );
        assert_eq!(a1111_schedule("Automatic"), Some(A1111Schedule::Automatic));
        assert_eq!(a1111_schedule("Exponential"), None);
        assert_eq!(a1111_automatic_schedule("DPM++ 2M"), ScheduleKind::Karras);
        assert_eq!(a1111_automatic_schedule("Euler a"), ScheduleKind::Default);
        // sd.cpp's names: `sdcpp::tests`.
    }
}
