//! Reading AUTOMATIC1111-style `parameters` text ("infotext"), as AUTOMATIC1111, Forge and
//! stable-diffusion.cpp write it. (Our writer of that text is `metadata::a1111`.)
//!
//! The text is split exactly as A1111's `parse_generation_parameters`
//! (modules/infotext_utils.py) does: strip the whole text, split on "\n"; the last line is the
//! settings line when its `re_param` matches number at least 3, else it is part of the prompt;
//! every other line is stripped, and the lines from the one starting with `Negative prompt:`
//! on form the negative prompt. The settings line is scanned like A1111's
//! `re_param = \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)` with `findall`; a value in
//! double quotes is JSON-unquoted (A1111's `unquote`).
//!
//! stable-diffusion.cpp (examples/common/common.cpp, `get_image_params`) writes the same layout
//! with its own names (`Sampler: euler_a karras`, `RNG: cuda`, `CFG scale: 7.000000`,
//! `Version: stable-diffusion.cpp`) and, in recent versions, appends `, SDCPP: {json}` (schema
//! `sdcpp.image.params/v1`): when that JSON is readable it is used instead of the line.

use super::{
    json_f64, json_is_neutral, json_u32, json_u64, parse_f64, parse_u32, parse_u64,
    prompt_syntax_caveat, shorten, show_json, ForeignSettings, ForeignTool,
};
use crate::metadata::a1111::py_strip;
use crate::sampler::ScheduleKind;
use serde_json::Value;
use std::collections::HashMap;

/// Parses `parameters` text. Fails only when there is no settings line at all (then the text
/// is a caption, not a recipe), or when the text is a JSON object that is not Fooocus's.
pub fn parse(text: &str) -> Result<ForeignSettings, String> {
    // Fooocus writes its recipe into the same chunk as one line of JSON; read as infotext it
    // would give an empty prompt and fields cut out of the JSON.
    if let Some(json) = json_object(text) {
        return super::fooocus::parse(&json);
    }
    let split = split_infotext(text);
    if split.settings.is_empty() {
        return Err(if py_strip(text).is_empty() {
            "the text is empty".to_string()
        } else {
            "it has no settings line ('Steps: …, Seed: …, Size: …'), only text".to_string()
        });
    }
    let (line, sdcpp_json) = split_sdcpp_tail(&split.settings);
    let fields = Fields::new(find_params(line));
    let version = fields.get("Version").unwrap_or("");
    let tool = if sdcpp_json.is_some() || version.contains("stable-diffusion.cpp") {
        ForeignTool::StableDiffusionCpp
    } else {
        ForeignTool::Automatic1111
    };
    let ours = is_seedling_version(version);
    let mut s = ForeignSettings::new(tool);
    s.prompt = Some(split.prompt.clone());
    s.negative_prompt = split.negative.clone();

    match sdcpp_json.map(|j| (j, parse_first_json(j))) {
        Some((_, Some(Value::Object(json)))) => map_sdcpp_json(&mut s, &Value::Object(json)),
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
    // seedling's own text (an image whose `seedling` chunk was lost) holds prompts seedling
    // reads as written.
    if !ours {
        if let Some(p) = s.prompt.clone() {
            prompt_syntax_caveat(&mut s, "prompt", &p);
        }
        if let Some(n) = s.negative_prompt.clone() {
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
        if let Some(rest) = line.strip_prefix("Negative prompt:") {
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
pub(super) fn scan_params(line: &str) -> (Vec<(String, String)>, usize) {
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

/// Python's `\s` (`str.isspace()`): Unicode White_Space plus the separators U+001C..U+001F.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
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

/// Splits `…, Version: stable-diffusion.cpp, SDCPP: {json}` into the line before and the JSON.
fn split_sdcpp_tail(line: &str) -> (&str, Option<&str>) {
    match line.find("SDCPP: ") {
        Some(at) => {
            let before = line[..at].trim_end().trim_end_matches(',');
            (before, Some(&line[at + "SDCPP: ".len()..]))
        }
        None => (line, None),
    }
}

/// The first JSON value at the start of `text` (anything after it is ignored).
fn parse_first_json(text: &str) -> Option<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .next()
        .and_then(|r| r.ok())
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
    let get = |key: &str| fields.get(key);
    let sdcpp = s.tool == ForeignTool::StableDiffusionCpp;
    let mut used: Vec<&str> = vec!["Version"];

    if let Some(v) = get("Steps") {
        used.push("Steps");
        s.steps = parse_u32(v);
        if s.steps.is_none() {
            s.unmapped("Steps", v, "not a whole number");
        }
    }
    if let Some(v) = get("CFG scale") {
        used.push("CFG scale");
        s.cfg = parse_f64(v);
        if s.cfg.is_none() {
            s.unmapped("CFG scale", v, "not a finite number");
        }
    }
    if let Some(v) = get("Seed") {
        used.push("Seed");
        s.seed = parse_u64(v);
        if s.seed.is_none() {
            s.unmapped("Seed", v, "not a seed from 0 to 2^64-1");
        }
    }
    if let Some(v) = get("Size") {
        used.push("Size");
        match parse_size(v) {
            Some((w, h)) => {
                s.width = Some(w);
                s.height = Some(h);
            }
            None => s.unmapped("Size", v, "not WIDTHxHEIGHT"),
        }
    }
    if let Some(v) = get("Model") {
        used.push("Model");
        s.model_name = Some(v.trim().to_string()).filter(|n| !n.is_empty());
    }
    if let Some(v) = get("Model hash") {
        used.push("Model hash");
        s.model_hash = Some(v.trim().to_string()).filter(|n| !n.is_empty());
    }
    used.push("RNG");
    map_rng(s, get("RNG"), sdcpp);
    used.push("Sampler");
    used.push("Schedule type");
    if sdcpp {
        map_sdcpp_sampler(s, get("Sampler"));
    } else {
        map_a1111_sampler(s, get("Sampler"), get("Schedule type"), ours);
        if s.sampler.as_deref() == Some("unipc") {
            used.extend(["UniPC variant", "UniPC order"]);
            if !ours {
                map_a1111_unipc(s, get("UniPC variant"), get("UniPC order"));
            }
        }
    }
    used.extend(["Variation seed", "Variation seed strength"]);
    if let Some(v) = get("Variation seed") {
        s.variation_seed = parse_u64(v);
        if s.variation_seed.is_none() {
            s.unmapped("Variation seed", v, "not a seed");
        }
    }
    if let Some(v) = get("Variation seed strength") {
        s.variation_strength = parse_f64(v);
        if s.variation_strength.is_none() {
            s.unmapped("Variation seed strength", v, "not a finite number");
        }
    }
    if !ours && s.variation_strength.unwrap_or(0.0) > 0.0 && s.sampler.as_deref() == Some("euler_a")
    {
        s.unmapped(
            "Variation seed",
            get("Variation seed").unwrap_or("absent"),
            "A1111 mixes the variation seed into the initial noise only; seedling mixes every \
             draw, so an ancestral sampler's image differs",
        );
    }
    map_etas(s, &mut used, get("Eta DDIM"), get("Eta"));
    // Values that equal seedling's behaviour: A1111 writes Clip skip only when > 1, and an
    // "Eta noise seed delta" of 0 changes nothing.
    for (key, neutral) in [
        ("Clip skip", "1"),
        ("ENSD", "0"),
        ("Eta noise seed delta", "0"),
    ] {
        if get(key).map(str::trim) == Some(neutral) {
            used.push(key);
        }
    }
    for (k, v) in &fields.entries {
        if !used.contains(&k.as_str()) {
            s.unmapped(k, shorten(v, 120), "not used by seedling");
        }
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
    let ddim = s.sampler.as_deref() == Some("ddim");
    let sdcpp = s.tool == ForeignTool::StableDiffusionCpp;
    let take = |s: &mut ForeignSettings, key: &str, value: &str| match parse_f64(value) {
        Some(e) => s.eta = Some(e),
        None => s.unmapped(key, value, "not a finite number"),
    };
    if let Some(v) = eta_ddim.filter(|_| ddim) {
        used.push("Eta DDIM");
        take(s, "Eta DDIM", v);
    }
    if let Some(v) = eta {
        if ddim && sdcpp {
            used.push("Eta");
            take(s, "Eta", v);
        } else if !sdcpp && parse_f64(v) == Some(1.0) && s.sampler.as_deref() == Some("euler_a") {
            used.push("Eta");
        }
    }
}

/// A1111's `RNG` ("CPU", "NV", "GPU"; absent means GPU, A1111's default) or sd.cpp's
/// ("cpu", "cuda", "std_default").
fn map_rng(s: &mut ForeignSettings, value: Option<&str>, sdcpp: bool) {
    let v = value.map(str::trim);
    let (rng, note): (Option<&str>, &str) = match (v, sdcpp) {
        // torch.Generator("cpu") + torch.randn: A1111's CPU source, sd.cpp's cpu RNG.
        (Some("CPU"), false) | (Some("cpu"), true) => (Some("torch-cpu"), ""),
        // torch's CUDA (Philox) generator, as A1111's NV source and sd.cpp's cuda RNG reproduce it.
        (Some("NV"), false) | (Some("cuda"), true) => (Some("philox"), ""),
        // Our own writer's name for the chacha stream (a seedling image whose chunk was lost).
        (Some("seedling-chacha-v1"), false) => (Some("chacha"), ""),
        (Some("GPU"), false) | (None, false) => (
            None,
            "A1111's GPU source is torch's generator on whatever device made the image; \
             which device is not recorded. If it was an NVIDIA GPU, --rng philox draws the same \
             noise",
        ),
        (Some("std_default"), true) => (
            None,
            "sd.cpp's std_default RNG is the C++ standard library's, which seedling does not \
             reproduce",
        ),
        (None, true) => (None, "sd.cpp does not record it"),
        (Some(_), _) => (None, "unknown noise source"),
    };
    s.rng = rng.map(str::to_string);
    if rng.is_none() {
        s.unmapped("RNG", v.unwrap_or("absent"), note);
    }
}

/// seedling's name for an A1111 sampler display name (modules/sd_samplers_kdiffusion.py,
/// sd_samplers_timesteps.py, sd_samplers_lcm.py), and whether A1111 runs it on k-diffusion
/// sigmas (whose uniform spacing differs from the diffusers one).
pub fn a1111_sampler_name(name: &str) -> Option<(&'static str, bool)> {
    Some(match name {
        "Euler a" => ("euler_a", true),
        "Euler" => ("euler", true),
        "DPM++ 2M" => ("dpmpp_2m", true),
        "DDIM" => ("ddim", false),
        // A1111's PLMS is the LDM PLMS sampler, diffusers' PNDM with skip_prk_steps.
        "PLMS" | "PNDM" => ("pndm", false),
        "UniPC" => ("unipc", false),
        // A1111's LCMSampler is a KDiffusionSampler: its steps follow "Schedule type" too.
        "LCM" => ("lcm", true),
        _ => return None,
    })
}

/// Splits an old combined name ("DPM++ 2M Karras", before A1111 1.9 split off "Schedule type")
/// into the sampler and the schedule it names.
pub fn split_a1111_sampler(name: &str) -> (&str, Option<&str>) {
    for suffix in [
        " Karras",
        " Exponential",
        " Polyexponential",
        " SGM Uniform",
    ] {
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
    match label {
        "Automatic" | "automatic" => Some(A1111Schedule::Automatic),
        "Uniform" | "uniform" => Some(A1111Schedule::Kind(ScheduleKind::Default)),
        "Karras" | "karras" => Some(A1111Schedule::Kind(ScheduleKind::Karras)),
        _ => None,
    }
}

/// The schedule A1111's "Automatic" runs for a sampler display name (its sampler options'
/// `scheduler`, sd_samplers_kdiffusion.py): Karras for "DPM++ 2M", else the uniform spacing
/// of `get_sigmas`.
pub fn a1111_automatic_schedule(sampler: &str) -> ScheduleKind {
    match sampler {
        "DPM++ 2M" => ScheduleKind::Karras,
        _ => ScheduleKind::Default,
    }
}

fn map_a1111_sampler(
    s: &mut ForeignSettings,
    sampler: Option<&str>,
    schedule: Option<&str>,
    ours: bool,
) {
    let Some(full) = sampler.map(str::trim) else {
        s.unmapped(
            "Sampler",
            "absent",
            "A1111 always records it; the text is incomplete",
        );
        return;
    };
    let (base, old_schedule) = split_a1111_sampler(full);
    let kdiffusion = match a1111_sampler_name(base) {
        Some((ours, k)) => {
            s.sampler = Some(ours.to_string());
            k
        }
        None => {
            s.unmapped(
                "Sampler",
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
            s.schedule = Some(ScheduleKind::Default)
        }
        Some((_, Some(A1111Schedule::Automatic))) => {
            s.schedule = Some(a1111_automatic_schedule(base))
        }
        Some((_, Some(A1111Schedule::Kind(k)))) => s.schedule = Some(k),
        Some((l, None)) => s.unmapped(
            "Schedule type",
            l,
            "seedling has no such schedule; used the model's default",
        ),
        None => s.schedule = Some(ScheduleKind::Default),
    }
    if kdiffusion && !ours && s.schedule == Some(ScheduleKind::Default) {
        s.unmapped(
            "Schedule type",
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
    if variant != Some(crate::metadata::a1111::UNIPC_VARIANT) {
        s.unmapped(
            "UniPC variant",
            variant.unwrap_or("absent (A1111's default, bh1)"),
            "seedling's unipc is the bh2 variant",
        );
    }
    let order = order.map(str::trim);
    if order != Some("2") {
        s.unmapped(
            "UniPC order",
            order.unwrap_or("absent (A1111's default, 3)"),
            "seedling's unipc takes its order from the model's scheduler config (2 unless it \
             says otherwise)",
        );
    }
}

/// seedling's name for an sd.cpp `sample_method` name (`sd_sample_method_name`).
pub fn sdcpp_sampler_name(name: &str) -> Option<&'static str> {
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
pub fn sdcpp_schedule(name: &str) -> Option<ScheduleKind> {
    match name {
        "default" | "discrete" => Some(ScheduleKind::Default),
        "karras" => Some(ScheduleKind::Karras),
        _ => None,
    }
}

/// sd.cpp's `Sampler: euler_a karras` (method, then the scheduler when one was chosen).
fn map_sdcpp_sampler(s: &mut ForeignSettings, value: Option<&str>) {
    let Some(v) = value.map(str::trim) else {
        s.unmapped("Sampler", "absent", "used seedling's default");
        return;
    };
    let mut parts = v.split_whitespace();
    let method = parts.next().unwrap_or("");
    let scheduler = parts.next();
    map_sdcpp_method(s, "Sampler", method);
    map_sdcpp_scheduler(s, "Sampler", scheduler);
}

fn map_sdcpp_method(s: &mut ForeignSettings, field: &str, method: &str) {
    match sdcpp_sampler_name(method) {
        Some(ours) => s.sampler = Some(ours.to_string()),
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
        None => s.schedule = Some(ScheduleKind::Default),
        Some(name) => match sdcpp_schedule(name) {
            Some(k) => s.schedule = Some(k),
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
fn map_sdcpp_json(s: &mut ForeignSettings, json: &Value) {
    let mut used: Vec<&str> = vec!["schema", "generator"];
    let mut take = |path: &'static str| {
        used.push(path);
        pointer(json, path)
    };
    if let Some(v) = take("prompt.positive") {
        s.prompt = v.as_str().map(str::to_string);
    }
    if let Some(v) = take("prompt.negative") {
        s.negative_prompt = v.as_str().map(str::to_string);
    }
    map_json_number(s, take("seed"), "seed", json_u64, |s, v| s.seed = Some(v));
    map_json_number(s, take("width"), "width", json_u32, |s, v| {
        s.width = Some(v)
    });
    map_json_number(s, take("height"), "height", json_u32, |s, v| {
        s.height = Some(v)
    });
    map_json_number(
        s,
        take("sampling.steps"),
        "sampling.steps",
        json_u32,
        |s, v| s.steps = Some(v),
    );
    map_json_number(
        s,
        take("sampling.guidance.txt_cfg"),
        "sampling.guidance.txt_cfg",
        json_f64,
        |s, v| s.cfg = Some(v),
    );
    let method = take("sampling.method").or_else(|| take("sampling.sample_method"));
    match method.and_then(Value::as_str) {
        Some(m) => map_sdcpp_method(s, "sampling.method", m),
        None => s.unmapped("sampling.method", "absent", "used seedling's default"),
    }
    let scheduler = take("sampling.scheduler").and_then(Value::as_str);
    map_sdcpp_scheduler(s, "sampling.scheduler", scheduler);
    let eta = take("sampling.eta").and_then(json_f64);
    if s.sampler.as_deref() == Some("ddim") {
        s.eta = eta;
    } else if let Some(e) = eta.filter(|e| *e != 0.0) {
        s.unmapped("sampling.eta", e, "seedling uses eta only for ddim");
    }
    if let Some(m) = take("models.model").and_then(Value::as_str) {
        s.model_name = Some(m.to_string()).filter(|m| !m.is_empty());
    }
    let rng = take("rng").and_then(Value::as_str);
    map_rng(s, rng, true);
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

/// Sets a numeric field from JSON through `convert`, or lists the value as unmapped.
pub(super) fn map_json_number<T: std::fmt::Display>(
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
pub(super) fn list_leftovers(s: &mut ForeignSettings, json: &Value, prefix: &str, used: &[&str]) {
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
        assert_eq!(sdcpp_sampler_name("dpm++2m"), Some("dpmpp_2m"));
        assert_eq!(sdcpp_sampler_name("euler_a"), Some("euler_a"));
        assert_eq!(sdcpp_sampler_name("dpm++2mv2"), None);
        assert_eq!(sdcpp_schedule("karras"), Some(ScheduleKind::Karras));
    }
}
