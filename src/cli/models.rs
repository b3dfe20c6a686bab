//! `seedling models`: the presets, whether each is in the Hugging Face cache and how big it is
//! there, then any other diffusers pipelines the cache holds (usable as `--model owner/name`),
//! then the files of the models folders (`--models-dir`, SEEDLING_MODELS_DIR) with their family
//! and A1111 hashes. The library finds, describes and hashes them (`models::folder`); this
//! prints.

use super::args::ModelsArgs;
use anyhow::Result;
use seedling::models::cache::{self, human_size, CachedModel};
use seedling::models::file_hash::{default_cache_file, HashCache};
use seedling::models::folder::{self, Kind, ModelFile, ModelsIndex};
use seedling::models::{hub, preset};
use serde::Serialize;
use std::path::PathBuf;
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
    /// The models folders' files; empty when none is given.
    folders: ModelsIndex,
    /// The hash cache file, when folders were listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    hash_cache: Option<String>,
}

pub fn run(args: ModelsArgs) -> Result<ExitCode> {
    let mut listing = listing();
    // The flag replaces the environment's list rather than adding to it, as flags override
    // environment variables elsewhere.
    let dirs = match args.models_dir.is_empty() {
        true => folder::dirs_from_env(),
        false => args.models_dir,
    };
    if !dirs.is_empty() {
        let (index, cache_file) = scan(&dirs)?;
        listing.folders = index;
        listing.hash_cache = Some(cache_file.display().to_string());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
    } else {
        print!("{}", table(&listing));
        print!("{}", folders_table(&listing));
    }
    Ok(ExitCode::SUCCESS)
}

/// Indexes `dirs` through the hash cache, telling stderr of each file read in full (a 7 GB
/// checkpoint takes a while, once) and of a cache that could not be used.
fn scan(dirs: &[PathBuf]) -> Result<(ModelsIndex, PathBuf)> {
    let cache_file = default_cache_file();
    let mut cache = HashCache::open(&cache_file);
    for note in &cache.notes {
        eprintln!("note: {note}");
    }
    let mut on_hash = |path: &std::path::Path, bytes: u64| {
        eprintln!("hashing {} ({})", path.display(), human_size(bytes));
    };
    let index = ModelsIndex::scan(dirs, &mut cache, &mut on_hash)?;
    if let Err(e) = cache.save() {
        eprintln!("note: the hashes could not be cached ({e}); they are computed again next time");
    }
    Ok((index, cache_file))
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
        folders: ModelsIndex::default(),
        hash_cache: None,
    }
}

/// The models folders, then one table per kind of file found in them.
fn folders_table(listing: &Listing) -> String {
    let index = &listing.folders;
    if index.dirs.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nmodels folders:\n");
    for d in &index.dirs {
        let kinds: Vec<String> = d
            .folders
            .iter()
            .map(|(_, p)| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let layout = format!("{}: {}", d.layout.name(), kinds.join(", "));
        out.push_str(&format!("  {} ({layout})\n", d.root.display()));
    }
    for kind in Kind::ALL {
        let files: Vec<&ModelFile> = index.of_kind(kind).collect();
        if !files.is_empty() {
            out.push('\n');
            out.push_str(&aligned(&kind_rows(kind, &files)));
        }
    }
    if let Some(cache) = &listing.hash_cache {
        out.push_str(&format!("\nhash cache: {cache}\n"));
    }
    out
}

/// NAME, FAMILY, DTYPE, SIZE, AUTOV2, then the kind's own hash (checkpoints: AutoV1; LoRAs: the
/// 12 digits A1111 writes in "Lora hashes") and what else the kind has.
fn kind_rows(kind: Kind, files: &[&ModelFile]) -> Vec<[String; 7]> {
    let (title, hash_title) = match kind {
        Kind::Checkpoint => ("CHECKPOINT", "AUTOV1"),
        Kind::Lora => ("LORA", "A1111"),
        Kind::Embedding => ("EMBEDDING", ""),
        Kind::Vae => ("VAE", ""),
    };
    let head = [title, "FAMILY", "DTYPE", "SIZE", "AUTOV2", hash_title, ""];
    let mut rows = vec![head.map(String::from)];
    for f in files {
        let d = &f.description;
        let own_hash = match kind {
            Kind::Checkpoint => f.hashes.autov1.clone(),
            Kind::Lora => f.hashes.a1111_lora().unwrap_or("-").to_string(),
            _ => String::new(),
        };
        rows.push([
            f.name.clone(),
            d.family.clone().unwrap_or_else(|| "-".into()),
            d.dtype.clone().unwrap_or_else(|| "-".into()),
            human_size(f.bytes),
            f.hashes.autov2().to_string(),
            own_hash,
            detail(f),
        ]);
    }
    rows
}

/// A LoRA's layout and rank, an embedding's vectors, or why the file cannot be used.
fn detail(f: &ModelFile) -> String {
    if let Some(note) = &f.note {
        return note.clone();
    }
    if let Some(l) = &f.description.lora {
        return match l.rank {
            Some(r) => format!("{}, rank {r}", l.format),
            None => l.format.clone(),
        };
    }
    if let Some(e) = &f.description.embedding {
        let widths: Vec<String> = e.widths.iter().map(u64::to_string).collect();
        let s = if e.vectors == 1 { "" } else { "s" };
        return format!("{} vector{s} of {}", e.vectors, widths.join("+"));
    }
    String::new()
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
