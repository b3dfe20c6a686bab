//! `seedling models`: the presets, whether each is in the Hugging Face cache and how big it is
//! there, then any other diffusers pipelines the cache holds (usable as `--model owner/name`).

use super::args::ModelsArgs;
use anyhow::Result;
use seedling::models::cache::{self, human_size, CachedModel};
use seedling::models::{hub, preset};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Serialize)]
struct PresetRow {
    #[serde(flatten)]
    preset: preset::Preset,
    cached: Option<CachedModel>,
}

#[derive(Serialize)]
struct Listing {
    cache: String,
    presets: Vec<PresetRow>,
    other_cached: Vec<CachedModel>,
}

pub fn run(args: ModelsArgs) -> Result<ExitCode> {
    let listing = listing();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
    } else {
        print!("{}", table(&listing));
    }
    Ok(ExitCode::SUCCESS)
}

fn listing() -> Listing {
    let presets: Vec<PresetRow> = preset::all()
        .into_iter()
        .map(|p| PresetRow {
            cached: cache::find(&p.repo, &p.revision),
            preset: p,
        })
        .collect();
    let other_cached = cache::all()
        .into_iter()
        .filter(|m| !presets.iter().any(|p| p.preset.repo == m.repo))
        .collect();
    Listing {
        cache: hub::cache_dir().display().to_string(),
        presets,
        other_cached,
    }
}

fn table(listing: &Listing) -> String {
    let mut rows = vec![[
        "PRESET".to_string(),
        "FAMILY".into(),
        "DEFAULTS".into(),
        "CACHED".into(),
        "REPO".into(),
    ]];
    for row in &listing.presets {
        let p = &row.preset;
        let d = &p.defaults;
        let steps = if d.steps == 1 { "step" } else { "steps" };
        rows.push([
            p.name.clone(),
            p.family.clone(),
            format!(
                "{}x{}, {} {steps}, cfg {}, {}",
                d.width, d.height, d.steps, d.cfg, d.sampler
            ),
            cached_cell(row.cached.as_ref()),
            p.repo.clone(),
        ]);
    }
    let mut out = aligned(&rows);
    if !listing.other_cached.is_empty() {
        out.push_str("\nother diffusers models in the cache (use --model REPO):\n");
        let rows: Vec<[String; 2]> = listing
            .other_cached
            .iter()
            .map(|m| [m.repo.clone(), cached_cell(Some(m))])
            .collect();
        out.push_str(&aligned(&rows));
    }
    out.push_str(&format!("\ncache: {}\n", listing.cache));
    out
}

/// "5.2 GB (fp16)", "no", or "partial, 1.1 GB" for a download that stopped part-way.
fn cached_cell(cached: Option<&CachedModel>) -> String {
    match cached {
        None => "no".into(),
        Some(m) if !m.complete => format!("partial, {}", human_size(m.bytes)),
        Some(m) if m.variants.is_empty() => human_size(m.bytes),
        Some(m) => format!("{} ({})", human_size(m.bytes), m.variants.join(", ")),
    }
}

/// Columns padded to their widest cell, two spaces apart, the last one unpadded.
fn aligned<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
