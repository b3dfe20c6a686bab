//! Job files for `seedling batch`: a TOML list of jobs — each a prompt, its seeds and any recipe
//! settings — with shared defaults at the top. This module only turns a file into plain data
//! ([`JobFile`]); the batch command builds and validates the recipes (checks that need the model,
//! such as a width that is a multiple of 8, happen there, before any weights load).
//!
//! # Format
//!
//! ```toml
//! # Optional: what every job starts from. A job's own fields win, field by field.
//! [defaults]
//! model = "sd-turbo"
//! steps = 2
//! seeds = "716-719"
//!
//! [[job]]
//! name = "dunes"                 # optional; unnamed jobs are "job-1", "job-2", … (by position)
//! prompt = "wind-carved dunes at dusk"
//! seed = 721                     # with count = 4: seeds 721, 722, 723, 724
//! count = 4
//!
//! [[job]]                        # job-2: the default seeds 716-719
//! prompt = "a glacier lake under the northern lights"
//! sampler = "euler"
//! negative = "blurry, text"
//! ```
//!
//! Fields (in `[defaults]` and in each `[[job]]`):
//!
//! | field | value |
//! |---|---|
//! | `model` | as `--model`: a preset (`sd-turbo`), `owner/name[@revision]`, or a diffusers folder; a relative folder is relative to the job file's folder |
//! | `negative` | negative prompt (text) |
//! | `seeds` | `"716-724"`, `"1,5,9"`, `"1-3,10"`, or a list `[1, 5, "10-12"]` |
//! | `seed`, `count` | `count` consecutive seeds from `seed` (`count` defaults to 1) |
//! | `vae` | as `--vae`: a VAE instead of the model's own (relative folders as `model`) |
//! | `loras` | a list as `--lora` takes each: `["style:0.8", "detail.safetensors:0.5:1"]` (a file relative to the job file's folder, or a name in the models folders); a job's list replaces the defaults'. A1111's `<lora:NAME:W>` tags in `prompt` apply too |
//! | every other recipe field | by its recipe name, with the values and ranges its flag takes (`recipe::FIELDS`; `seedling generate --help`): `rng`, `sampler`, `schedule`, `steps`, `cfg`, `eta`, `width`, `height`, `dtype`, `variation_seed` (needs `variation_strength`), `variation_strength` (needs `variation_seed`), and `truncate` (`true` drops prompt tokens past the encoder's limit) |
//!
//! Only in `[[job]]`: `prompt` (required) and `name` (unique within the file).
//!
//! Seeds: a job that gives `seed` or `seeds` replaces the default seeds; `count` applies to a
//! `seed` from the job or the defaults. `seed` and `seeds` cannot share a table, nor can `seeds`
//! and `count`. A job must end up with seeds: a file run twice makes the same images.
//! A setting that neither the job nor the defaults give is left `None`: the model's preset
//! default applies, as on the command line. Unknown fields are errors (a typo like `stpes`
//! would otherwise silently change nothing).

use crate::grid::seeds::{self, MAX_SEEDS};
use crate::models::{preset, ModelSpec};
use crate::recipe::fields::Kind;
use crate::recipe::{Field, Overrides, Value, FIELDS};
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A parsed job file: the jobs in file order, each with the defaults already applied.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFile {
    pub path: PathBuf,
    pub jobs: Vec<Job>,
}

/// One job: a prompt rendered once per seed with the same settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The job's `name`, else `job-<n>` (n counted from 1); unique within the file.
    pub name: String,
    pub prompt: String,
    pub negative: Option<String>,
    /// Every seed, expanded, in the order written.
    pub seeds: Vec<u64>,
    /// As `--model` takes it; a relative folder is already joined to the job file's folder.
    pub model: Option<String>,
    /// A VAE instead of the model's own, as `--vae` takes it (relative as `model`).
    pub vae: Option<String>,
    /// LoRAs as `--lora` takes each (a relative file already joined to the job file's folder).
    pub loras: Vec<String>,
    /// Every other recipe field the job or the defaults set (`prompt`, `negative_prompt` and
    /// `seed` stay `None`: they are the fields above). `None` = not set.
    pub settings: Overrides,
    /// 1-based line of the job's `[[job]]` header, for messages.
    pub line: usize,
}

/// Reads and parses a job file.
pub fn load(path: &Path) -> Result<JobFile> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist; check the path (it is relative to the current folder)".to_string()
        } else {
            format!("cannot be read: {e}")
        };
        Error::Invalid(format!("job file {} {why}", path.display()))
    })?;
    parse(&text, path)
}

/// Parses the text of a job file; `path` names it in messages and anchors relative model folders.
pub(crate) fn parse(text: &str, path: &Path) -> Result<JobFile> {
    let doc = DeTable::parse(text).map_err(|e| {
        // The toml crate's message carries the line, column and a caret under the problem.
        Error::Invalid(format!("{}: {}", path.display(), e.to_string().trim_end()))
    })?;
    let src = Source::new(text, path);
    let mut defaults = None;
    let mut job_values = None;
    for (key, value) in in_file_order(doc.get_ref()) {
        match key.get_ref().as_ref() {
            "defaults" => defaults = Some(value),
            "job" => job_values = Some(value),
            other => {
                let hint = suggestion(other, &["defaults", "job"])
                    .map(|s| match s {
                        "job" => "did you mean [[job]]? ",
                        _ => "did you mean [defaults]? ",
                    })
                    .unwrap_or_default();
                return Err(src.at(
                    src.line(key.span()),
                    &format!(
                        "unknown top-level table or field '{other}'; {hint}a job file has a \
                         [defaults] table and [[job]] tables"
                    ),
                ));
            }
        }
    }
    let defaults = match defaults {
        Some(v) => parse_defaults(&src, v)?,
        None => Fields::default(),
    };
    let tables = job_tables(&src, job_values)?;
    let mut jobs = Vec::with_capacity(tables.len());
    let mut images = 0;
    for (i, table) in tables.into_iter().enumerate() {
        let job = parse_job(&src, i + 1, table, &defaults)?;
        images += job.seeds.len();
        if images > MAX_IMAGES {
            return Err(src.at(
                job.line,
                &format!(
                    "{} brings the file to {images} images, more than the {MAX_IMAGES} one job \
                     file may make; split it into several files",
                    job_label(i + 1, None)
                ),
            ));
        }
        jobs.push(job);
    }
    check_unique_names(&src, &jobs)?;
    Ok(JobFile {
        path: path.to_path_buf(),
        jobs,
    })
}

/// Most images one job file may make (all jobs' seeds together). Each seed becomes a planned
/// recipe before any rendering, so without a cap a small file (20 000 jobs sharing a default of
/// 10 000 seeds) would plan 200 million images and run out of memory; this is days of rendering
/// on a fast GPU, and a bigger run can be split into several files.
pub(crate) const MAX_IMAGES: usize = 100_000;

/// The fields of a job file that are not recipe fields of their own declaration: the model
/// and VAE (as `--model` and `--vae` take them), and the seed forms.
const FILE_FIELDS: [&str; 7] = [
    "model", "vae", "loras", "negative", "seed", "seeds", "count",
];

/// The recipe fields a job file sets through their declarations (`recipe::FIELDS`): all but
/// the prompts and the seed, which job files write their own way.
fn recipe_fields() -> impl Iterator<Item = &'static Field> {
    FIELDS
        .iter()
        .filter(|f| !matches!(f.name, "prompt" | "negative_prompt" | "seed"))
}

/// A recipe field's key in a job file: its name, or its flag where the flag is a short form
/// of it (`negative`, `truncate`).
fn key(f: &Field) -> &'static str {
    if f.flag == f.name.replace('_', "-") {
        f.name
    } else {
        f.flag
    }
}

/// Fields allowed in `[defaults]` and in each `[[job]]`.
pub(crate) fn setting_fields() -> Vec<&'static str> {
    FILE_FIELDS
        .into_iter()
        .chain(recipe_fields().map(key))
        .collect()
}

/// Fields allowed only in a `[[job]]`.
pub(crate) const JOB_FIELDS: [&str; 2] = ["name", "prompt"];

/// Names people reach for that are spelled differently here (recipe JSON, diffusers, CLI habits).
const ALIASES: [(&str, &str); 8] = [
    ("negative_prompt", "negative"),
    ("truncate_prompt", "truncate"),
    ("cfg_scale", "cfg"),
    ("guidance", "cfg"),
    ("guidance_scale", "cfg"),
    ("num_inference_steps", "steps"),
    ("scheduler", "sampler"),
    ("seed_list", "seeds"),
];

/// The file being parsed, for line numbers and messages.
struct Source<'a> {
    path: &'a Path,
    /// Byte offset of every `\n`, in order: found once, so a line number is a binary search.
    /// (Counting newlines from the start for every key made a 20 000-job file quadratic: half a
    /// minute before the first check.)
    newlines: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(text: &str, path: &'a Path) -> Self {
        let newlines = text
            .bytes()
            .enumerate()
            .filter_map(|(i, b)| (b == b'\n').then_some(i))
            .collect();
        Source { path, newlines }
    }

    /// 1-based line of a byte offset (spans are byte ranges into the text): one more than the
    /// number of newlines before it.
    fn line(&self, span: Range<usize>) -> usize {
        self.newlines.partition_point(|&nl| nl < span.start) + 1
    }

    /// `path:line: where: message`.
    fn error(&self, line: usize, place: &str, message: &str) -> Error {
        self.at(line, &format!("{place}: {message}"))
    }

    /// `path:line: message`.
    fn at(&self, line: usize, message: &str) -> Error {
        Error::Invalid(format!("{}:{line}: {message}", self.path.display()))
    }
}

/// A value and the line it was written on (so a merged job still points at the right line).
#[derive(Debug, Clone)]
struct At<T> {
    value: T,
    line: usize,
}

/// One table's settings, as written (before defaults are applied).
#[derive(Debug, Clone, Default)]
struct Fields {
    model: Option<At<String>>,
    vae: Option<At<String>>,
    loras: Option<At<Vec<String>>>,
    negative: Option<At<String>>,
    seed: Option<At<u64>>,
    seeds: Option<At<Vec<u64>>>,
    count: Option<At<usize>>,
    /// Every other recipe field the table sets, by its declaration's name.
    settings: BTreeMap<&'static str, At<Value>>,
}

impl Fields {
    fn setting(&self, name: &str) -> Option<&At<Value>> {
        self.settings.get(name)
    }
}

/// Which table a message is about: `[defaults]`, `job 3` or `job 3 ("dunes")`.
fn job_label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("job {index} ({n:?})"),
        None => format!("job {index}"),
    }
}

/// A table's entries in the order they appear in the file (the parsed map is sorted by key),
/// so the first error reported is the first one in the file.
fn in_file_order<'t, 'i>(
    table: &'t DeTable<'i>,
) -> Vec<(
    &'t Spanned<toml::de::DeString<'i>>,
    &'t Spanned<DeValue<'i>>,
)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

fn parse_defaults(src: &Source, value: &Spanned<DeValue>) -> Result<Fields> {
    let place = "[defaults]";
    let line = src.line(value.span());
    let DeValue::Table(table) = value.get_ref() else {
        return Err(src.error(
            line,
            place,
            &format!(
                "expected a table, found {}; write [defaults] on its own line with settings below it",
                kind(value.get_ref())
            ),
        ));
    };
    let mut fields = Fields::default();
    for (key, v) in in_file_order(table) {
        let name = key.get_ref().as_ref();
        let key_line = src.line(key.span());
        if JOB_FIELDS.contains(&name) {
            return Err(src.error(
                key_line,
                &format!("{place}, field {name}"),
                "each job gives its own; move it into the [[job]] tables",
            ));
        }
        set_setting(
            &mut fields,
            name,
            v.get_ref(),
            key_line,
            src.path,
            &setting_fields(),
        )
        .map_err(|m| src.error(key_line, &format!("{place}, field {name}"), &m))?;
    }
    check_seed_fields(&fields)
        .map_err(|(line, field, m)| src.error(line, &format!("{place}, field {field}"), &m))?;
    Ok(fields)
}

/// The `[[job]]` tables with their spans; a missing or misshapen `job` is an error.
fn job_tables<'t, 'i>(
    src: &Source,
    value: Option<&'t Spanned<DeValue<'i>>>,
) -> Result<Vec<&'t Spanned<DeValue<'i>>>> {
    let none = || {
        Error::Invalid(format!(
            "{}: no jobs; add a [[job]] table with a prompt and seeds, e.g.\n\n[[job]]\nprompt = \"a lighthouse at dawn\"\nseeds = \"716-724\"",
            src.path.display()
        ))
    };
    let Some(value) = value else {
        return Err(none());
    };
    let line = src.line(value.span());
    match value.get_ref() {
        DeValue::Array(items) if items.is_empty() => Err(none()),
        DeValue::Array(items) => Ok(items.iter().collect()),
        DeValue::Table(_) => Err(src.at(
            line,
            "write [[job]] (two brackets) for each job; [job] makes a single table",
        )),
        other => Err(src.error(
            line,
            "field job",
            &format!(
                "expected [[job]] tables, found {}; write each job as a [[job]] table",
                kind(other)
            ),
        )),
    }
}

fn parse_job(
    src: &Source,
    index: usize,
    value: &Spanned<DeValue>,
    defaults: &Fields,
) -> Result<Job> {
    let line = src.line(value.span());
    let DeValue::Table(table) = value.get_ref() else {
        return Err(src.error(
            line,
            &job_label(index, None),
            &format!(
                "expected a table, found {}; write each job as a [[job]] table",
                kind(value.get_ref())
            ),
        ));
    };
    let entries = in_file_order(table);
    // The name first, so every later message can say which job it is about.
    let mut name = None;
    for (key, v) in &entries {
        if key.get_ref().as_ref() == "name" {
            let key_line = src.line(key.span());
            let n = job_name(v.get_ref()).map_err(|m| {
                src.error(
                    key_line,
                    &format!("{}, field name", job_label(index, None)),
                    &m,
                )
            })?;
            name = Some(n);
        }
    }
    let label = job_label(index, name.as_deref());
    let known: Vec<&str> = JOB_FIELDS.into_iter().chain(setting_fields()).collect();
    let mut prompt = None;
    let mut fields = Fields::default();
    for (key, v) in &entries {
        let field = key.get_ref().as_ref();
        let key_line = src.line(key.span());
        let fail = |m: String| src.error(key_line, &format!("{label}, field {field}"), &m);
        match field {
            "name" => {}
            "prompt" => prompt = Some(text(v.get_ref()).map_err(fail)?),
            _ => set_setting(&mut fields, field, v.get_ref(), key_line, src.path, &known)
                .map_err(fail)?,
        }
    }
    let prompt = prompt.ok_or_else(|| {
        src.at(
            line,
            &format!("{label} has no prompt; add prompt = \"what to draw\" to this job"),
        )
    })?;
    check_seed_fields(&fields)
        .map_err(|(l, field, m)| src.error(l, &format!("{label}, field {field}"), &m))?;
    let seeds = job_seeds(&fields, defaults).map_err(|(at, m)| match at {
        Some((l, field)) => src.error(l, &format!("{label}, field {field}"), &m),
        None => src.at(line, &format!("{label} {m}")),
    })?;
    let merged = merge(fields, defaults);
    check_variation(&merged)
        .map_err(|(l, field, m)| src.error(l, &format!("{label}, field {field}"), &m))?;
    let settings = overrides(&merged);
    Ok(Job {
        name: name.unwrap_or_else(|| format!("job-{index}")),
        prompt,
        negative: merged.negative.map(|a| a.value),
        seeds,
        model: merged.model.map(|a| a.value),
        vae: merged.vae.map(|a| a.value),
        loras: merged.loras.map(|a| a.value).unwrap_or_default(),
        settings,
        line,
    })
}

fn job_name(v: &DeValue) -> std::result::Result<String, String> {
    let name = text(v)?;
    if name.trim().is_empty() {
        return Err("a name cannot be empty; give the job a short name or leave name out".into());
    }
    Ok(name)
}

/// Parses one setting into `fields`; the error is the bare message (the caller adds the place).
fn set_setting(
    fields: &mut Fields,
    field: &str,
    v: &DeValue,
    line: usize,
    job_file: &Path,
    known: &[&str],
) -> std::result::Result<(), String> {
    fn at<T>(value: T, line: usize) -> Option<At<T>> {
        Some(At { value, line })
    }
    match field {
        "model" => fields.model = at(model(&text(v)?, job_file)?, line),
        "vae" => fields.vae = at(model(&text(v)?, job_file)?, line),
        "loras" => fields.loras = at(loras(v, job_file)?, line),
        "negative" => fields.negative = at(text(v)?, line),
        "seed" => fields.seed = at(seed(v)?, line),
        "seeds" => fields.seeds = at(seed_list(v)?, line),
        "count" => fields.count = at(count(v)?, line),
        other => {
            let f = recipe_fields()
                .find(|f| key(f) == other)
                .ok_or_else(|| unknown_field(other, known))?;
            let value = field_value(f, v)?;
            fields.settings.insert(f.name, At { value, line });
        }
    }
    Ok(())
}

/// A recipe field's value as TOML writes it, read by the field's declared type and checked
/// against its declared range.
fn field_value(f: &Field, v: &DeValue) -> std::result::Result<Value, String> {
    let value = match f.kind {
        Kind::Text => Value::Text(text(v)?),
        Kind::Seed => Value::Seed(seed(v)?),
        Kind::Whole { min, max } => {
            let n = whole(v, i128::from(min), i128::from(max)).map_err(|_| {
                format!(
                    "{} must be a whole number {}, not {}",
                    f.name,
                    f.range_help,
                    shown(v)
                )
            })?;
            Value::Whole(n as u32)
        }
        Kind::Side => Value::Whole(side(v)?),
        Kind::Number { .. } => Value::Number(number(v)?),
        Kind::Choice(_) => f.parse(&text(v)?)?,
        Kind::Flag => Value::Flag(boolean(v)?),
    };
    f.in_range(&value)?;
    Ok(value)
}

fn unknown_field(field: &str, known: &[&str]) -> String {
    let hint = ALIASES
        .iter()
        .find(|(alias, _)| *alias == field)
        .map(|(_, real)| *real)
        .or_else(|| suggestion(field, known))
        .map(|s| format!("did you mean '{s}'? "))
        .unwrap_or_default();
    format!("unknown field; {hint}known fields: {}", known.join(", "))
}

/// The known name closest to a typo (at most 2 edits away), if any.
fn suggestion<'k>(typo: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(typo, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, with a swap of two neighbours counting as one edit (so `stpes` is
/// one edit from `steps`): the optimal-string-alignment variant.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// `seed` and `seeds` (or `seeds` and `count`) in one table contradict each other.
/// Errors are (line, field, message).
fn check_seed_fields(f: &Fields) -> std::result::Result<(), (usize, &'static str, String)> {
    if let (Some(list), Some(one)) = (&f.seeds, &f.seed) {
        let (line, field) = later((list.line, "seeds"), (one.line, "seed"));
        return Err((
            line,
            field,
            "give either seeds (a list or ranges) or seed (with count), not both".into(),
        ));
    }
    if let (Some(list), Some(count)) = (&f.seeds, &f.count) {
        let (line, field) = later((list.line, "seeds"), (count.line, "count"));
        return Err((
            line,
            field,
            "count goes with seed; with seeds, list every seed (e.g. seeds = \"716-719\")".into(),
        ));
    }
    Ok(())
}

fn later<'f>(a: (usize, &'f str), b: (usize, &'f str)) -> (usize, &'f str) {
    if b.0 >= a.0 {
        b
    } else {
        a
    }
}

/// Where (line and field, or `None` for the job as a whole) and what.
type SeedError = (Option<(usize, &'static str)>, String);

/// The job's seeds: its own `seeds` or `seed` if it gives one, else the defaults'; `count`
/// (job's, else defaults', else 1) runs on from a `seed`.
fn job_seeds(job: &Fields, defaults: &Fields) -> std::result::Result<Vec<u64>, SeedError> {
    let (list, start) = if job.seeds.is_some() || job.seed.is_some() {
        (&job.seeds, &job.seed)
    } else {
        (&defaults.seeds, &defaults.seed)
    };
    let count = job.count.as_ref().or(defaults.count.as_ref());
    if let Some(list) = list {
        if let Some(c) = &job.count {
            return Err((
                Some((c.line, "count")),
                "count needs a seed to count from, and the seeds here come from [defaults] \
                 seeds; add seed = N to this job, or list its seeds with seeds = \"…\""
                    .into(),
            ));
        }
        return Ok(list.value.clone());
    }
    match start {
        Some(s) => {
            let n = count.map_or(1, |c| c.value);
            seeds::consecutive(s.value, n).map_err(|e| {
                let at = match count {
                    Some(c) => (c.line, "count"),
                    None => (s.line, "seed"),
                };
                (Some(at), e.to_string())
            })
        }
        None => Err((
            None,
            "has no seeds; add seed = 721 (with count = 4 for 721-724) or seeds = \"716-724\" \
             to this job or to [defaults]"
                .into(),
        )),
    }
}

/// Job fields win over defaults, field by field (seeds are handled by `job_seeds`).
fn merge(job: Fields, d: &Fields) -> Fields {
    let d = d.clone();
    let mut settings = d.settings;
    settings.extend(job.settings);
    Fields {
        model: job.model.or(d.model),
        vae: job.vae.or(d.vae),
        loras: job.loras.or(d.loras),
        negative: job.negative.or(d.negative),
        seed: None,
        seeds: None,
        count: None,
        settings,
    }
}

/// A strength above 0 mixes in another seed's noise, so it needs that seed (as in
/// `Recipe::validate`, but here the message can point at the line); and a variation seed with
/// no strength mixes in nothing, so it is refused rather than ignored without a word (as
/// `--variation-seed` without `--variation-strength` is). An explicit strength of 0 is allowed.
fn check_variation(f: &Fields) -> std::result::Result<(), (usize, &'static str, String)> {
    let strength = f.setting("variation_strength");
    match (strength, f.setting("variation_seed")) {
        (Some(s), None) if s.value != Value::Number(0.0) => Err((
            s.line,
            "variation_strength",
            "a variation strength needs a variation seed; add variation_seed = N".into(),
        )),
        (None, Some(v)) => Err((
            v.line,
            "variation_seed",
            format!(
                "variation_seed {} changes nothing without variation_strength, how much of its \
                 noise to mix in (0 = none, 1 = all); add e.g. variation_strength = 0.1",
                v.value
            ),
        )),
        _ => Ok(()),
    }
}

fn overrides(f: &Fields) -> Overrides {
    let mut o = Overrides::default();
    for (name, at) in &f.settings {
        let field = recipe_fields()
            .find(|f| f.name == *name)
            .expect("a declared field");
        field.patch(&mut o, at.value.clone());
    }
    o
}

fn check_unique_names(src: &Source, jobs: &[Job]) -> Result<()> {
    let mut seen: HashMap<&str, (usize, usize)> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        if let Some((first, first_line)) = seen.get(job.name.as_str()) {
            return Err(src.at(
                job.line,
                &format!(
                    "job {} is named {:?}, as job {first} (line {first_line}) is (unnamed jobs are \
                     job-1, job-2, …); give each job its own name",
                    i + 1,
                    job.name
                ),
            ));
        }
        seen.insert(&job.name, (i + 1, job.line));
    }
    Ok(())
}

// ---- Values. Each returns the bare message; the caller says where.

/// "an integer", "a string", … for messages.
fn kind(v: &DeValue) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The value as written, for messages: `4`, `"four"`, or its kind.
fn shown(v: &DeValue) -> String {
    match v {
        DeValue::String(s) => format!("{:?}", s.as_ref()),
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        other => kind(other).to_string(),
    }
}

fn text(v: &DeValue) -> std::result::Result<String, String> {
    match v {
        DeValue::String(s) => Ok(s.to_string()),
        other => Err(format!(
            "expected text in quotes, found {} ({})",
            kind(other),
            shown(other)
        )),
    }
}

fn boolean(v: &DeValue) -> std::result::Result<bool, String> {
    match v {
        DeValue::Boolean(b) => Ok(*b),
        other => Err(format!(
            "expected true or false (no quotes), found {} ({})",
            kind(other),
            shown(other)
        )),
    }
}

/// A TOML integer in `min..=max`. The parser keeps integers as digits plus radix (TOML allows
/// 0x, 0o, 0b), so values up to u64::MAX survive.
fn whole(v: &DeValue, min: i128, max: i128) -> std::result::Result<i128, String> {
    let DeValue::Integer(i) = v else {
        return Err(format!(
            "expected a whole number, found {} ({})",
            kind(v),
            shown(v)
        ));
    };
    let n = i128::from_str_radix(i.as_str(), i.radix())
        .map_err(|_| format!("{i} is not a whole number seedling can use"))?;
    if !(min..=max).contains(&n) {
        return Err(format!(
            "{n} is out of range; use a whole number from {min} to {max}"
        ));
    }
    Ok(n)
}

fn seed(v: &DeValue) -> std::result::Result<u64, String> {
    whole(v, 0, u64::MAX as i128).map(|n| n as u64)
}

fn count(v: &DeValue) -> std::result::Result<usize, String> {
    whole(v, 1, MAX_SEEDS as i128)
        .map(|n| n as usize)
        .map_err(|_| {
            format!(
                "count must be a whole number from 1 to {MAX_SEEDS}, not {}",
                shown(v)
            )
        })
}

fn side(v: &DeValue) -> std::result::Result<u32, String> {
    whole(v, 1, u32::MAX as i128)
        .map(|n| n as u32)
        .map_err(|_| {
            format!(
                "expected a size in pixels (a whole number like 512), found {}",
                shown(v)
            )
        })
}

/// A number (integer or float, so `cfg = 7` works); its range is the field's.
fn number(v: &DeValue) -> std::result::Result<f64, String> {
    match v {
        DeValue::Integer(_) => Ok(whole(v, i64::MIN as i128, i64::MAX as i128)? as f64),
        DeValue::Float(f) => f
            .as_str()
            .parse::<f64>()
            .map_err(|_| format!("{f} is not a number")),
        other => Err(format!(
            "expected a number, found {} ({})",
            kind(other),
            shown(other)
        )),
    }
}

/// `"716-724"`, `"1,5,9"`, a bare seed, or a list mixing seeds and such strings.
fn seed_list(v: &DeValue) -> std::result::Result<Vec<u64>, String> {
    let parse_text = |s: &str| seeds::parse_seed_list(s).map_err(|e| e.to_string());
    let mut out = Vec::new();
    match v {
        DeValue::String(s) => out = parse_text(s)?,
        DeValue::Integer(_) => out.push(seed(v)?),
        DeValue::Array(items) => {
            if items.is_empty() {
                return Err(
                    "the list is empty; list at least one seed, e.g. seeds = [1, 5, \"10-12\"]"
                        .into(),
                );
            }
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(s) => out.extend(parse_text(s)?),
                    DeValue::Integer(_) => out.push(seed(item.get_ref())?),
                    other => {
                        return Err(format!(
                            "list items must be seeds (721) or ranges in quotes (\"716-724\"), \
                             found {} ({})",
                            kind(other),
                            shown(other)
                        ))
                    }
                }
                if out.len() > MAX_SEEDS {
                    break;
                }
            }
        }
        other => {
            return Err(format!(
                "expected seeds like \"716-724\", \"1,5,9\" or [1, 5, \"10-12\"], found {} ({})",
                kind(other),
                shown(other)
            ))
        }
    }
    if out.len() > MAX_SEEDS {
        return Err(format!(
            "more than {MAX_SEEDS} seeds in one job; split it into smaller jobs"
        ));
    }
    let mut seen = HashSet::new();
    if let Some(dup) = out.iter().find(|s| !seen.insert(**s)) {
        return Err(format!(
            "seed {dup} is listed twice; a seed makes the same image every time, so list it once"
        ));
    }
    Ok(out)
}

/// `model` as `--model` takes it, with a relative folder joined to the job file's folder (so a
/// job file works from any current folder). A value is a folder when it is not a preset and is
/// absolute, starts with `.`, has a backslash or two or more `/` (as `ModelSpec::parse` decides),
/// or names a folder next to the job file; otherwise it is a Hugging Face repo id, checked with
/// `ModelSpec::parse`. A missing folder or a malformed name fails here, with its line, rather
/// than after earlier jobs have run.
/// `loras`: a list of strings as `--lora` takes them; a `FILE` part that names a file relative to
/// the job file's folder is joined to it (a name stays a name, found in the models folders).
fn loras(v: &DeValue, job_file: &Path) -> std::result::Result<Vec<String>, String> {
    let DeValue::Array(items) = v else {
        return Err("loras is a list of LoRAs as --lora takes them, e.g. [\"style:0.8\"]".into());
    };
    let base = job_file.parent().unwrap_or(Path::new(""));
    items
        .iter()
        .map(|item| {
            let spec = text(item.get_ref())?;
            if spec.trim().is_empty() {
                return Err("a LoRA in loras is empty; give a file or a name".into());
            }
            // The file part ends where the `:WEIGHT` parts begin: try the longest first.
            let mut cut = spec.len();
            loop {
                let joined = join_clean(base, Path::new(&spec[..cut]));
                if !Path::new(&spec[..cut]).is_absolute() && joined.is_file() {
                    return Ok(format!("{}{}", joined.display(), &spec[cut..]));
                }
                match spec[..cut].rfind(':') {
                    Some(at) => cut = at,
                    None => return Ok(spec),
                }
            }
        })
        .collect()
}

fn model(value: &str, job_file: &Path) -> std::result::Result<String, String> {
    if value.starts_with('~') {
        return Err(format!(
            "'{value}': ~ is not expanded in job files; write the full path, or a path relative \
             to the job file's folder"
        ));
    }
    if preset::find(value).is_some() {
        return Ok(value.to_string());
    }
    let path = Path::new(value);
    let base = job_file.parent().unwrap_or(Path::new(""));
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        join_clean(base, path)
    };
    let path_like = path.is_absolute()
        || value.starts_with('.')
        || value.contains('\\')
        || value.split('@').next().unwrap_or("").matches('/').count() > 1;
    if joined.is_dir() {
        return Ok(joined.to_string_lossy().into_owned());
    }
    if path_like {
        return Err(format!(
            "model folder {} does not exist or is not a folder{}; pass a diffusers folder \
             (with model_index.json), a preset, or a Hugging Face repo id like stabilityai/sd-turbo",
            joined.display(),
            relative_note(base, path)
        ));
    }
    if !base.as_os_str().is_empty() && path.is_dir() {
        // It names a folder from the current folder; from the job file it names nothing, and
        // taking it as a repo id (or as that folder) would silently pick another model.
        return Err(format!(
            "'{value}' is a folder relative to the current folder, but a folder in a job file is \
             relative to the job file's folder ({}); write it relative to that folder, or absolute",
            base.display()
        ));
    }
    ModelSpec::parse(value).map_err(|e| e.to_string())?;
    Ok(value.to_string())
}

fn relative_note(base: &Path, rel: &Path) -> String {
    if rel.is_absolute() || base.as_os_str().is_empty() {
        String::new()
    } else {
        format!(
            " (a relative folder is relative to the job file's folder, {})",
            base.display()
        )
    }
}

/// `base/rel` without `.` components (`prompts/./m` reads as `prompts/m`); `..` is kept,
/// since through a symlink it is not the same as dropping the previous component.
fn join_clean(base: &Path, rel: &Path) -> PathBuf {
    let mut out: PathBuf = base
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    out.extend(rel.components().filter(|c| !matches!(c, Component::CurDir)));
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::RngKind;
    use crate::recipe::ModelDType;
    use crate::sampler::{SamplerKind, ScheduleKind};
    use std::str::FromStr;

    const FILE: &str = "prompts/t.toml";

    fn ok(text: &str) -> JobFile {
        parse(text, Path::new(FILE)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err_at(text: &str, file: &str) -> String {
        match parse(text, Path::new(file)) {
            Ok(f) => panic!("expected an error, got {f:?}"),
            Err(Error::Invalid(m)) => m,
            Err(other) => panic!("expected Error::Invalid, got {other:?}"),
        }
    }

    fn err(text: &str) -> String {
        err_at(text, FILE)
    }

    /// The message the CLI flag gives for the same bad name (the file must say the same).
    fn cli_message<T: FromStr<Err = Error> + std::fmt::Debug>(bad: &str) -> String {
        bad.parse::<T>().unwrap_err().to_string()
    }

    const FULL: &str = r#"[defaults]
model = "sd-turbo"
negative = "blurry"
steps = 2
cfg = 0
seeds = "716-718"
rng = "torch-cpu"
truncate = true

[[job]]
prompt = "a lighthouse"

[[job]]
name = "dunes"
prompt = "dunes"
seed = 721
count = 3
steps = 4
sampler = "euler"
negative = ""

[[job]]
prompt = "fjord"
seeds = [1, 5, "10-12"]
model = "owner/name@abc123"
width = 768
height = 512
dtype = "f16"
eta = 0.5
variation_seed = 9
variation_strength = 0.25
truncate = false
cfg = 7
"#;

    #[test]
    fn full_example_applies_defaults_and_job_fields_win() {
        let file = ok(FULL);
        assert_eq!(file.path, PathBuf::from(FILE));
        let defaults = Overrides {
            rng: Some(RngKind::TorchCpu),
            steps: Some(2),
            cfg: Some(0.0),
            truncate_prompt: Some(true),
            ..Overrides::default()
        };
        let expected = vec![
            Job {
                name: "job-1".into(),
                prompt: "a lighthouse".into(),
                negative: Some("blurry".into()),
                seeds: vec![716, 717, 718],
                model: Some("sd-turbo".into()),
                vae: None,
                loras: Vec::new(),
                settings: defaults.clone(),
                line: 10,
            },
            Job {
                name: "dunes".into(),
                prompt: "dunes".into(),
                negative: Some(String::new()),
                seeds: vec![721, 722, 723],
                model: Some("sd-turbo".into()),
                vae: None,
                loras: Vec::new(),
                settings: Overrides {
                    steps: Some(4),
                    sampler: Some(SamplerKind::Euler),
                    ..defaults.clone()
                },
                line: 13,
            },
            Job {
                name: "job-3".into(),
                prompt: "fjord".into(),
                negative: Some("blurry".into()),
                seeds: vec![1, 5, 10, 11, 12],
                model: Some("owner/name@abc123".into()),
                vae: None,
                loras: Vec::new(),
                settings: Overrides {
                    rng: Some(RngKind::TorchCpu),
                    steps: Some(2),
                    cfg: Some(7.0),
                    width: Some(768),
                    height: Some(512),
                    dtype: Some(ModelDType::F16),
                    eta: Some(0.5),
                    variation_seed: Some(9),
                    variation_strength: Some(0.25),
                    truncate_prompt: Some(false),
                    ..Overrides::default()
                },
                line: 22,
            },
        ];
        assert_eq!(file.jobs, expected);
    }

    #[test]
    fn a_job_without_defaults_sets_only_its_own_fields() {
        let file = ok("[[job]]\nprompt = \"a\"\nseed = 3\n");
        assert_eq!(
            file.jobs,
            vec![Job {
                name: "job-1".into(),
                prompt: "a".into(),
                negative: None,
                seeds: vec![3],
                model: None,
                vae: None,
                loras: Vec::new(),
                settings: Overrides::default(),
                line: 1,
            }]
        );
    }

    #[test]
    fn seed_forms_expand_in_order() {
        let seeds = |fields: &str| -> Vec<u64> {
            ok(&format!("[[job]]\nprompt = \"a\"\n{fields}\n")).jobs[0]
                .seeds
                .clone()
        };
        assert_eq!(seeds("seeds = \"716-720\""), vec![716, 717, 718, 719, 720]);
        assert_eq!(seeds("seeds = \"9,1,5\""), vec![9, 1, 5]);
        assert_eq!(seeds("seeds = \"1-3,10\""), vec![1, 2, 3, 10]);
        assert_eq!(seeds("seeds = [12, \"3-4\", 0]"), vec![12, 3, 4, 0]);
        assert_eq!(seeds("seeds = 8"), vec![8]);
        assert_eq!(seeds("seed = 721\ncount = 4"), vec![721, 722, 723, 724]);
        assert_eq!(seeds("seed = 0x10"), vec![16]);
        assert_eq!(seeds("seed = 1_000"), vec![1000]);
        assert_eq!(seeds("seed = 18446744073709551615"), vec![u64::MAX]);
        // A default count runs on from the job's own seed; the job's seeds replace the defaults'.
        let file = ok(
            "[defaults]\nseed = 100\ncount = 2\n\n[[job]]\nprompt = \"a\"\n\n[[job]]\nprompt = \"b\"\nseed = 7\n\n[[job]]\nprompt = \"c\"\nseeds = \"1,2,3\"\n\n[[job]]\nprompt = \"d\"\ncount = 3\n",
        );
        let got: Vec<Vec<u64>> = file.jobs.iter().map(|j| j.seeds.clone()).collect();
        assert_eq!(
            got,
            vec![
                vec![100, 101],
                vec![7, 8],
                vec![1, 2, 3],
                vec![100, 101, 102]
            ]
        );
        // A job's seed replaces a default list.
        let file = ok("[defaults]\nseeds = \"1-3\"\n\n[[job]]\nprompt = \"a\"\nseed = 9\n");
        assert_eq!(file.jobs[0].seeds, vec![9]);
    }

    #[test]
    fn windows_line_endings_count_the_same_lines() {
        let text = FULL.replace('\n', "\r\n");
        assert_eq!(ok(&text), ok(FULL));
        let e = err("[[job]]\r\nprompt = \"a\"\r\n\r\nstpes = 1\r\n");
        assert!(
            e.starts_with("prompts/t.toml:4: job 1, field stpes:"),
            "{e}"
        );
    }

    #[test]
    fn the_issue_example_message() {
        let text = "[defaults]\nseeds = \"1-2\"\n\n[[job]]\nprompt = \"a\"\n\n[[job]]\nprompt = \"b\"\n\n[[job]]\nname = \"dunes\"\nsampler = \"dpm\"\nprompt = \"dunes\"\n";
        assert_eq!(
            err_at(text, "prompts/landscapes.toml"),
            "prompts/landscapes.toml:12: job 3 (\"dunes\"), field sampler: unknown sampler 'dpm'; \
             use one of: ddim, euler, euler_a, dpmpp_2m, unipc, pndm, lcm"
        );
    }

    #[test]
    fn names_parse_as_on_the_command_line() {
        let job = |field: &str| format!("[[job]]\nprompt = \"a\"\nseed = 1\n{field}\n");
        assert_eq!(
            err(&job("rng = \"torch\"")),
            format!(
                "prompts/t.toml:4: job 1, field rng: {}",
                cli_message::<RngKind>("torch")
            )
        );
        assert_eq!(
            err(&job("dtype = \"fp16\"")),
            format!(
                "prompts/t.toml:4: job 1, field dtype: {}",
                cli_message::<ModelDType>("fp16")
            )
        );
        assert_eq!(
            err(&job("sampler = \"dpm\"")),
            format!(
                "prompts/t.toml:4: job 1, field sampler: {}",
                cli_message::<SamplerKind>("dpm")
            )
        );
        assert_eq!(
            err(&job("sampler = 3")),
            "prompts/t.toml:4: job 1, field sampler: expected text in quotes, found an integer (3)"
        );
    }

    #[test]
    fn toml_syntax_errors_keep_line_and_column() {
        let e = err("[[job]]\nprompt = \"a\"\nsteps = \nseed = 1\n");
        assert!(
            e.starts_with("prompts/t.toml: TOML parse error at line 3, column 9"),
            "{e}"
        );
        // A key given twice is a TOML error too, at the second one.
        let e = err("[[job]]\nprompt = \"a\"\nprompt = \"b\"\n");
        assert!(
            e.starts_with("prompts/t.toml: TOML parse error at line 3, column 1"),
            "{e}"
        );
    }

    #[test]
    fn unknown_fields_are_refused_with_the_known_ones() {
        let text = "[[job]]\nprompt = \"a\"\nseed = 1\n\n[[job]]\nname = \"dunes\"\nprompt = \"b\"\nseed = 2\nstpes = 4\n";
        assert_eq!(
            err(text),
            "prompts/t.toml:9: job 2 (\"dunes\"), field stpes: unknown field; did you mean 'steps'? \
             known fields: name, prompt, model, vae, loras, negative, seed, seeds, count, cfg, \
             steps, sampler, schedule, eta, variation_seed, variation_strength, width, height, rng, \
             dtype, truncate"
        );
        assert_eq!(
            err("[defaults]\nnegative_prompt = \"x\"\n\n[[job]]\nprompt = \"a\"\nseed = 1\n"),
            "prompts/t.toml:2: [defaults], field negative_prompt: unknown field; did you mean \
             'negative'? known fields: model, vae, loras, negative, seed, seeds, count, cfg, steps, \
             sampler, schedule, eta, variation_seed, variation_strength, width, height, rng, dtype, \
             truncate"
        );
        // No near name: no guess, just the list.
        let e = err("[[job]]\nprompt = \"a\"\nseed = 1\nhypernet = \"x\"\n");
        assert!(
            e.starts_with(
                "prompts/t.toml:4: job 1, field hypernet: unknown field; known fields: name,"
            ),
            "{e}"
        );
        // The first bad field in the file is the one reported (the parsed map is sorted).
        let e = err("[[job]]\nprompt = \"a\"\nseed = 1\nzz = 1\naa = 2\n");
        assert!(e.starts_with("prompts/t.toml:4: job 1, field zz:"), "{e}");
    }

    #[test]
    fn prompt_and_name_belong_in_jobs() {
        assert_eq!(
            err("[defaults]\nseed = 1\nprompt = \"a\"\n\n[[job]]\nprompt = \"b\"\n"),
            "prompts/t.toml:3: [defaults], field prompt: each job gives its own; move it into the \
             [[job]] tables"
        );
    }

    #[test]
    fn the_file_shape_is_checked() {
        assert_eq!(
            err("[[jobs]]\nprompt = \"a\"\n"),
            "prompts/t.toml:1: unknown top-level table or field 'jobs'; did you mean [[job]]? a job \
             file has a [defaults] table and [[job]] tables"
        );
        assert_eq!(
            err("[default]\nseed = 1\n"),
            "prompts/t.toml:1: unknown top-level table or field 'default'; did you mean \
             [defaults]? a job file has a [defaults] table and [[job]] tables"
        );
        assert_eq!(
            err("seed = 1\n[[job]]\nprompt = \"a\"\n"),
            "prompts/t.toml:1: unknown top-level table or field 'seed'; a job file has a \
             [defaults] table and [[job]] tables"
        );
        assert_eq!(
            err("# one job\n[job]\nprompt = \"a\"\nseed = 1\n"),
            "prompts/t.toml:2: write [[job]] (two brackets) for each job; [job] makes a single table"
        );
        for text in ["", "[defaults]\nseed = 1\n", "job = []\n"] {
            let e = err(text);
            assert!(
                e.starts_with("prompts/t.toml: no jobs; add a [[job]] table"),
                "{e}"
            );
        }
        assert_eq!(
            err("defaults = 3\n[[job]]\nprompt = \"a\"\n"),
            "prompts/t.toml:1: [defaults]: expected a table, found an integer; write [defaults] \
             on its own line with settings below it"
        );
    }

    #[test]
    fn types_and_simple_ranges_are_checked_at_the_field() {
        let job = |field: &str| {
            err(&format!(
                "[[job]]\nname = \"x\"\nprompt = \"a\"\nseed = 1\n{field}\n"
            ))
        };
        let at = |field: &str, message: &str| {
            format!("prompts/t.toml:5: job 1 (\"x\"), field {field}: {message}")
        };
        assert_eq!(
            job("steps = \"four\""),
            at(
                "steps",
                "steps must be a whole number of at least 1 (try 4 for sd-turbo, 25 for other \
                 models), not \"four\""
            )
        );
        assert_eq!(
            job("steps = 0"),
            at(
                "steps",
                "steps must be a whole number of at least 1 (try 4 for sd-turbo, 25 for other \
                 models), not 0"
            )
        );
        assert_eq!(
            job("cfg = \"x\""),
            at("cfg", "expected a number, found a string (\"x\")")
        );
        assert_eq!(
            job("cfg = -1"),
            at(
                "cfg",
                "cfg -1 is out of range; use a value from 0 to 100 (typical: 7.5, or 0 for turbo models)"
            )
        );
        assert_eq!(
            job("cfg = nan"),
            at(
                "cfg",
                "cfg NaN is out of range; use a value from 0 to 100 (typical: 7.5, or 0 for turbo models)"
            )
        );
        assert_eq!(
            job("eta = 1.5"),
            at(
                "eta",
                "eta 1.5 is out of range; use a value from 0 (deterministic DDIM) to 1"
            )
        );
        assert_eq!(
            job("variation_seed = 2\nvariation_strength = 1.5"),
            format!(
                "prompts/t.toml:6: job 1 (\"x\"), field variation_strength: variation_strength 1.5 \
                 is out of range; use a value from 0 (only the seed) to 1 (only the variation seed)"
            )
        );
        assert_eq!(
            job("truncate = \"yes\""),
            at(
                "truncate",
                "expected true or false (no quotes), found a string (\"yes\")"
            )
        );
        assert_eq!(
            job("width = 0"),
            at(
                "width",
                "expected a size in pixels (a whole number like 512), found 0"
            )
        );
        assert_eq!(
            job("height = 512.0"),
            at(
                "height",
                "expected a size in pixels (a whole number like 512), found 512.0"
            )
        );
        assert_eq!(
            job("negative = [\"a\"]"),
            at(
                "negative",
                "expected text in quotes, found an array (an array)"
            )
        );
        assert_eq!(
            job("variation_seed = -1"),
            at(
                "variation_seed",
                "-1 is out of range; use a whole number from 0 to 18446744073709551615"
            )
        );
        assert_eq!(
            job("steps = { n = 4 }"),
            at(
                "steps",
                "steps must be a whole number of at least 1 (try 4 for sd-turbo, 25 for other \
                 models), not a table"
            )
        );
    }

    /// Job files range-check a field as its declaration says, as the command line does: a cfg
    /// over 100 used to be taken here and refused only once the model was open.
    #[test]
    fn every_recipe_field_is_taken_with_its_declared_range() {
        let file = ok("[defaults]\nvae = \"owner/vae\"\nschedule = \"karras\"\n\n[[job]]\nprompt = \"a\"\nseed = 1\ncfg = 100\n");
        let job = &file.jobs[0];
        assert_eq!(job.vae.as_deref(), Some("owner/vae"));
        assert_eq!(job.settings.schedule, Some(ScheduleKind::Karras));
        assert_eq!(job.settings.cfg, Some(100.0));
        assert_eq!(
            err("[[job]]\nprompt = \"a\"\nseed = 1\ncfg = 150\n"),
            "prompts/t.toml:4: job 1, field cfg: cfg 150 is out of range; use a value from 0 to \
             100 (typical: 7.5, or 0 for turbo models)"
        );
        assert_eq!(
            err("[[job]]\nprompt = \"a\"\nseed = 1\nwidth = 9000\n"),
            "prompts/t.toml:4: job 1, field width: width 9000 is out of range; use a whole number \
             of pixels from 1 to 8192"
        );
        for f in recipe_fields() {
            assert!(setting_fields().contains(&key(f)), "{}", f.name);
        }
    }

    #[test]
    fn bad_seeds_are_refused_at_the_field() {
        // Without `seed = 1`: these jobs give their seeds in the field under test.
        let job = |field: &str| err(&format!("[[job]]\nprompt = \"a\"\n{field}\n"));
        let at = |field: &str, message: &str| {
            format!("prompts/t.toml:3: job 1, field {field}: {message}")
        };
        assert_eq!(
            job("seeds = \"1,x\""),
            at(
                "seeds",
                "'x' in seed list '1,x' is not a seed or a range; write seeds like 721, 716-724 or 1,5,9"
            )
        );
        assert_eq!(
            job("seeds = \"9-3\""),
            at("seeds", "seed range 9-3 runs backwards; write 3-9")
        );
        assert_eq!(
            job("seeds = [1, \"2-4\", 3]"),
            at(
                "seeds",
                "seed 3 is listed twice; a seed makes the same image every time, so list it once"
            )
        );
        assert_eq!(
            job("seeds = [1, 2.5]"),
            at(
                "seeds",
                "list items must be seeds (721) or ranges in quotes (\"716-724\"), found a float (2.5)"
            )
        );
        assert_eq!(
            job("seeds = []"),
            at(
                "seeds",
                "the list is empty; list at least one seed, e.g. seeds = [1, 5, \"10-12\"]"
            )
        );
        assert_eq!(
            job("seeds = true"),
            at(
                "seeds",
                "expected seeds like \"716-724\", \"1,5,9\" or [1, 5, \"10-12\"], found a boolean (true)"
            )
        );
        assert_eq!(
            job("seeds = [\"0-6000\", \"6001-12000\"]"),
            at(
                "seeds",
                "more than 10000 seeds in one job; split it into smaller jobs"
            )
        );
        assert_eq!(
            job("seed = -1"),
            at(
                "seed",
                "-1 is out of range; use a whole number from 0 to 18446744073709551615"
            )
        );
        assert_eq!(
            err("[[job]]\nprompt = \"a\"\nseed = 1\ncount = 0\n"),
            "prompts/t.toml:4: job 1, field count: count must be a whole number from 1 to 10000, not 0"
        );
        assert_eq!(
            err("[[job]]\nprompt = \"a\"\nseed = 18446744073709551615\ncount = 2\n"),
            "prompts/t.toml:4: job 1, field count: seeds 18446744073709551615 + 2 run past the \
             largest seed; start lower"
        );
    }

    #[test]
    fn seed_fields_that_contradict_are_refused() {
        assert_eq!(
            err("[[job]]\nprompt = \"a\"\nseeds = \"1-3\"\nseed = 4\n"),
            "prompts/t.toml:4: job 1, field seed: give either seeds (a list or ranges) or seed \
             (with count), not both"
        );
        assert_eq!(
            err("[defaults]\ncount = 2\nseeds = \"1-3\"\n\n[[job]]\nprompt = \"a\"\n"),
            "prompts/t.toml:3: [defaults], field seeds: count goes with seed; with seeds, list \
             every seed (e.g. seeds = \"716-719\")"
        );
        assert_eq!(
            err("[defaults]\nseeds = \"1-3\"\n\n[[job]]\nprompt = \"a\"\ncount = 2\n"),
            "prompts/t.toml:6: job 1, field count: count needs a seed to count from, and the seeds \
             here come from [defaults] seeds; add seed = N to this job, or list its seeds with \
             seeds = \"…\""
        );
    }

    #[test]
    fn jobs_without_prompt_or_seeds_are_refused_at_their_table() {
        assert_eq!(
            err("[defaults]\nseed = 1\n\n[[job]]\nprompt = \"a\"\n\n[[job]]\nname = \"b\"\nsteps = 2\n"),
            "prompts/t.toml:7: job 2 (\"b\") has no prompt; add prompt = \"what to draw\" to this job"
        );
        assert_eq!(
            err("[defaults]\nsteps = 2\n\n[[job]]\nprompt = \"a\"\n"),
            "prompts/t.toml:4: job 1 has no seeds; add seed = 721 (with count = 4 for 721-724) or \
             seeds = \"716-724\" to this job or to [defaults]"
        );
        assert_eq!(
            err("[defaults]\ncount = 3\n\n[[job]]\nprompt = \"a\"\n"),
            "prompts/t.toml:4: job 1 has no seeds; add seed = 721 (with count = 4 for 721-724) or \
             seeds = \"716-724\" to this job or to [defaults]"
        );
    }

    #[test]
    fn names_are_unique_and_not_empty() {
        assert_eq!(
            err("[defaults]\nseed = 1\n\n[[job]]\nname = \"a\"\nprompt = \"x\"\n\n[[job]]\nname = \"a\"\nprompt = \"y\"\n"),
            "prompts/t.toml:8: job 2 is named \"a\", as job 1 (line 4) is (unnamed jobs are job-1, \
             job-2, …); give each job its own name"
        );
        // A derived name can collide with an explicit one.
        assert_eq!(
            err("[defaults]\nseed = 1\n\n[[job]]\nname = \"job-2\"\nprompt = \"x\"\n\n[[job]]\nprompt = \"y\"\n"),
            "prompts/t.toml:8: job 2 is named \"job-2\", as job 1 (line 4) is (unnamed jobs are \
             job-1, job-2, …); give each job its own name"
        );
        assert_eq!(
            err("[[job]]\nprompt = \"x\"\nname = \" \"\nseed = 1\n"),
            "prompts/t.toml:3: job 1, field name: a name cannot be empty; give the job a short \
             name or leave name out"
        );
        assert_eq!(
            err("[[job]]\nname = 5\nprompt = \"x\"\nseed = 1\n"),
            "prompts/t.toml:2: job 1, field name: expected text in quotes, found an integer (5)"
        );
    }

    #[test]
    fn a_variation_strength_needs_a_variation_seed() {
        assert_eq!(
            err("[[job]]\nprompt = \"a\"\nseed = 1\nvariation_strength = 0.3\n"),
            "prompts/t.toml:4: job 1, field variation_strength: a variation strength needs a \
             variation seed; add variation_seed = N"
        );
        // From the defaults: the line is where the strength is written, the job is the one
        // that lacks the seed.
        assert_eq!(
            err("[defaults]\nvariation_strength = 0.3\nseed = 1\n\n[[job]]\nprompt = \"a\"\nvariation_seed = 4\n\n[[job]]\nprompt = \"b\"\n"),
            "prompts/t.toml:2: job 2, field variation_strength: a variation strength needs a \
             variation seed; add variation_seed = N"
        );
        // Strength 0 mixes nothing in, so it needs no seed (as Recipe::validate).
        ok("[[job]]\nprompt = \"a\"\nseed = 1\nvariation_strength = 0\n");
    }

    #[test]
    fn a_variation_seed_needs_a_strength() {
        // It used to be taken and ignored: the images were those of the seed alone.
        assert_eq!(
            err("[[job]]\nprompt = \"a\"\nseed = 1\nvariation_seed = 9\n"),
            "prompts/t.toml:4: job 1, field variation_seed: variation_seed 9 changes nothing \
             without variation_strength, how much of its noise to mix in (0 = none, 1 = all); add \
             e.g. variation_strength = 0.1"
        );
        // From the defaults, with the strength in the job, is complete; so is an explicit 0.
        ok("[defaults]\nvariation_seed = 9\n\n[[job]]\nprompt = \"a\"\nseed = 1\nvariation_strength = 0.2\n");
        ok("[[job]]\nprompt = \"a\"\nseed = 1\nvariation_seed = 9\nvariation_strength = 0\n");
    }

    #[test]
    fn models_are_checked_where_they_are_written() {
        let job = |model: &str| {
            err(&format!(
                "[[job]]\nprompt = \"a\"\nseed = 1\nmodel = {model:?}\n"
            ))
        };
        assert_eq!(
            job("./no-such-model"),
            "prompts/t.toml:4: job 1, field model: model folder prompts/no-such-model does not \
             exist or is not a folder (a relative folder is relative to the job file's folder, \
             prompts); pass a diffusers folder (with model_index.json), a preset, or a Hugging Face \
             repo id like stabilityai/sd-turbo"
        );
        assert_eq!(
            job("~/models/x"),
            "prompts/t.toml:4: job 1, field model: '~/models/x': ~ is not expanded in job files; \
             write the full path, or a path relative to the job file's folder"
        );
        assert_eq!(
            job("sd3"),
            format!(
                "prompts/t.toml:4: job 1, field model: {}",
                preset::unknown_preset_error("sd3")
            )
        );
        // `src/grid` is a folder from the crate root (the tests' current folder) but not from
        // the job file's folder: taking it either way would silently pick a different model.
        assert_eq!(
            job("src/grid"),
            "prompts/t.toml:4: job 1, field model: 'src/grid' is a folder relative to the current \
             folder, but a folder in a job file is relative to the job file's folder (prompts); \
             write it relative to that folder, or absolute"
        );
        // Presets and repo ids pass through unchanged.
        for model in [
            "sd15",
            "sdxl",
            "stabilityai/sd-turbo",
            "owner/name@refs-pr-1",
        ] {
            let text = format!("[[job]]\nprompt = \"a\"\nseed = 1\nmodel = {model:?}\n");
            assert_eq!(ok(&text).jobs[0].model.as_deref(), Some(model));
        }
    }

    #[test]
    fn relative_model_folders_resolve_against_the_job_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("models/tiny")).unwrap();
        std::fs::create_dir_all(root.join("prompts/local-model")).unwrap();
        let abs = root.join("models/tiny");
        let text = format!(
            "[defaults]\nseed = 1\nmodel = \"../models/tiny\"\n\n\
             [[job]]\nprompt = \"a\"\n\n\
             [[job]]\nprompt = \"b\"\nmodel = \"local-model\"\n\n\
             [[job]]\nprompt = \"c\"\nmodel = \"./local-model\"\n\n\
             [[job]]\nprompt = \"d\"\nmodel = {:?}\n\n\
             [[job]]\nprompt = \"e\"\nmodel = \"sd-turbo\"\n",
            abs.to_str().unwrap()
        );
        let path = root.join("prompts/jobs.toml");
        std::fs::write(&path, text).unwrap();
        let file = load(&path).unwrap();
        let models: Vec<PathBuf> = file
            .jobs
            .iter()
            .map(|j| PathBuf::from(j.model.clone().unwrap()))
            .collect();
        assert_eq!(models[0], root.join("prompts").join("../models/tiny"));
        assert_eq!(models[1], root.join("prompts/local-model"));
        assert_eq!(models[2], root.join("prompts/local-model"));
        assert_eq!(models[3], abs);
        assert_eq!(models[4], PathBuf::from("sd-turbo"));
        // What --model would make of them: the same folders, from any current folder.
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap();
        assert_eq!(canon(&models[0]), canon(&abs));
        for m in &models[..4] {
            assert!(matches!(
                ModelSpec::parse(m.to_str().unwrap()).unwrap(),
                ModelSpec::Local(_)
            ));
        }
    }

    #[test]
    fn a_missing_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("nope.toml");
        let e = load(&path).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)));
        assert_eq!(
            e.to_string(),
            format!(
                "job file {} does not exist; check the path (it is relative to the current folder)",
                path.display()
            )
        );
    }

    #[test]
    fn typos_are_matched_by_edit_distance() {
        assert_eq!(edit_distance("stpes", "steps"), 1);
        assert_eq!(edit_distance("sampelr", "sampler"), 1);
        assert_eq!(edit_distance("widht", "width"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "cfg"), 3);
        assert_eq!(suggestion("hieght", &setting_fields()), Some("height"));
        assert_eq!(suggestion("lora", &setting_fields()), Some("loras"));
        assert_eq!(suggestion("hypernet", &setting_fields()), None);
    }

    #[test]
    fn every_example_prompt_file_parses() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        assert!(
            files.len() >= 2,
            "expected example files in {}",
            dir.display()
        );
        for path in &files {
            let file = load(path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!file.jobs.is_empty(), "{}", path.display());
            for job in &file.jobs {
                assert!(!job.seeds.is_empty() && !job.prompt.is_empty());
                // Usable with the default model: SD-Turbo runs 1-4 steps without guidance.
                if job
                    .model
                    .as_deref()
                    .is_none_or(|m| m == preset::DEFAULT_PRESET)
                {
                    let s = &job.settings;
                    assert!(
                        s.steps.is_none_or(|n| (1..=4).contains(&n))
                            && s.cfg.is_none_or(|c| c <= 1.0),
                        "{}: job {} is not set up for sd-turbo",
                        path.display(),
                        job.name
                    );
                }
            }
        }
    }

    #[test]
    fn the_landscapes_example_means_what_its_comments_say() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/prompts/landscapes.toml"
        ));
        let file = load(path).unwrap();
        let by_name = |n: &str| file.jobs.iter().find(|j| j.name == n).unwrap();
        assert_eq!(by_name("lighthouse").seeds, vec![716, 717, 718, 719]);
        assert_eq!(by_name("dunes").seeds, vec![721, 722, 723, 724]);
        assert_eq!(by_name("fjord").seeds, vec![1, 5, 10, 11, 12]);
        assert_eq!(by_name("fjord").settings.steps, Some(4));
        assert_eq!(by_name("dunes").settings.steps, Some(2));
        assert_eq!(by_name("glacier-panorama").settings.width, Some(768));
        assert!(file
            .jobs
            .iter()
            .all(|j| j.model.as_deref() == Some("sd-turbo")));
        // Its comments list every field a job file takes, and every name of each choice.
        let text = std::fs::read_to_string(path).unwrap();
        let comments: String = text.lines().filter(|l| l.starts_with('#')).collect();
        let words: HashSet<&str> = comments
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .collect();
        for name in setting_fields() {
            assert!(
                words.contains(name),
                "the comments do not list the field {name}"
            );
        }
        for f in recipe_fields() {
            if let Kind::Choice(c) = f.kind {
                for name in c.names() {
                    assert!(
                        words.contains(name),
                        "the comments do not list {} {name}",
                        f.name
                    );
                }
            }
        }
    }

    #[test]
    fn a_large_file_parses_in_linear_time_with_the_right_lines() {
        // Line numbers used to be found by counting newlines from the start of the file for
        // every key: quadratic, 27-38 s for 20 000 jobs (1 MB) in a release build, and for
        // this file (100 001 jobs, 5 MB) hours in a test build. Now one pass: well under a
        // second. The file ends one image past the cap, so the error names the last job's line.
        let jobs = MAX_IMAGES + 1;
        let mut text = String::with_capacity(jobs * 40);
        for i in 0..jobs {
            text.push_str(&format!("[[job]]\nprompt = \"p {i}\"\nseed = {i}\n\n"));
        }
        let last_line = 4 * (jobs - 1) + 1;
        assert_eq!(
            err(&text),
            format!(
                "{FILE}:{last_line}: job {jobs} brings the file to {jobs} images, more than the \
                 {MAX_IMAGES} one job file may make; split it into several files"
            )
        );
        // And at the cap, every job's line is right.
        let at_cap = &text[..text.rfind("[[job]]").unwrap()];
        let file = ok(at_cap);
        assert_eq!(file.jobs.len(), MAX_IMAGES);
        for (i, job) in file.jobs.iter().enumerate() {
            assert_eq!(job.line, 4 * i + 1, "job {}", i + 1);
        }
    }

    #[test]
    fn the_images_of_a_file_are_capped_before_they_are_planned() {
        // 20 000 jobs sharing 10 000 default seeds would be 200 million recipes; the count is
        // refused at the job that crosses the cap.
        let mut text = String::from("[defaults]\nseeds = \"1-10000\"\n");
        for i in 0..20_000 {
            text.push_str(&format!("[[job]]\nprompt = \"p {i}\"\n"));
        }
        assert_eq!(
            err(&text),
            format!(
                "{FILE}:23: job 11 brings the file to 110000 images, more than the {MAX_IMAGES} \
                 one job file may make; split it into several files"
            )
        );
    }

    #[test]
    fn lines_are_counted_from_one_at_any_offset() {
        let src = Source::new("a\nbc\n\nd", Path::new(FILE));
        let lines: Vec<usize> = (0..8).map(|i| src.line(i..i + 1)).collect();
        assert_eq!(lines, [1, 1, 2, 2, 2, 3, 4, 4]);
        assert_eq!(src.line(100..101), 4);
    }
}
