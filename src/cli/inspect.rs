//! `seedling inspect`: the recipe in a PNG (seedling's own, or mapped from another tool's
//! metadata with what could not be mapped), readable or as JSON.

use super::args::InspectArgs;
use anyhow::Result;
use seedling::metadata::foreign::{describe_model, ForeignRecipe};
use seedling::metadata::{self, AnyRecipe, ImageMeta};
use seedling::models::lookup;
use std::process::ExitCode;

pub fn run(args: InspectArgs) -> Result<ExitCode> {
    // A contact sheet lists its cells instead of holding one recipe.
    if let Ok((sheet, _)) = metadata::read_sheet(&args.image) {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&sheet)?);
        } else {
            print!("{}", sheet_summary(&sheet));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Another tool's checkpoint: in the models folders by hash first (a --models-dir that
    // cannot be opened is an error; SEEDLING_MODELS_DIR's leaves the presets and the cache).
    let library = match super::args::open_library(&args.models_dir) {
        Ok(l) => Some(l),
        Err(e) if !args.models_dir.is_empty() => return Err(e.into()),
        Err(_) => None,
    };
    let lookup = |name: Option<&str>, hash: Option<&str>| match &library {
        Some(l) => lookup::resolve_with(l, name, hash),
        None => lookup::resolve(name, hash),
    };
    let (mut recipe, pixels) = metadata::read_any(&args.image, &lookup)?;
    if let AnyRecipe::Foreign(f) = &mut recipe {
        super::spell::foreign_notes(f);
    }
    match recipe {
        AnyRecipe::Seedling(meta) if args.json => {
            println!("{}", serde_json::to_string_pretty(&meta)?)
        }
        AnyRecipe::Seedling(meta) => {
            print!("{}", readable(&meta));
            print!("{}", pixels_check(&meta, &pixels));
        }
        AnyRecipe::Foreign(f) if args.json => {
            println!("{}", serde_json::to_string_pretty(&f.to_json())?)
        }
        AnyRecipe::Foreign(f) => print!("{}", readable_foreign(&f)),
    }
    Ok(ExitCode::SUCCESS)
}

/// A recipe mapped from another tool: what made it, what maps (the fields replay uses) and
/// every field that does not.
fn readable_foreign(f: &ForeignRecipe) -> String {
    let r = &f.recipe;
    let named = describe_model(f.model.name.as_deref(), f.model.hash.as_deref());
    let model = match (&f.model.resolved, f.model.needs_model()) {
        (Some(m), _) => format!("{named} -> {} ({})", m.source.describe(), m.how),
        (None, Some(why)) => format!("{named}, {}", super::spell::message(&why)),
        (None, None) => named,
    };
    let mut lines = vec![
        ("made by", f.tool.describe().to_string()),
        ("prompt", r.prompt.clone()),
        ("negative prompt", r.negative_prompt.clone()),
        ("model", model),
        ("seed", format!("{} (rng {})", r.seed, r.rng)),
        ("size", format!("{}x{}", r.width, r.height)),
        ("sampler", sampler_line(r)),
    ];
    if let Some(v) = r.variation_seed {
        lines.push((
            "variation",
            format!("seed {v}, strength {}", r.variation_strength),
        ));
    }
    lines.push(("dtype", r.dtype.to_string()));
    for u in &f.unmapped {
        lines.push(("not mapped", u.to_string()));
    }
    format_lines(lines)
}

fn sampler_line(r: &seedling::recipe::Recipe) -> String {
    format!(
        "{} ({} schedule), {} steps, cfg {}, eta {}",
        r.sampler, r.schedule, r.steps, r.cfg, r.eta
    )
}

/// `key:` then the value, aligned. Values come from the file, so they are printed through
/// [`metadata::printable`] (no terminal controls); a value of several lines (a prompt) goes on
/// indented, so no line of it can pass for a field of its own.
fn format_lines(lines: Vec<(&str, String)>) -> String {
    const INDENT: &str = "\n                 ";
    lines
        .into_iter()
        .map(|(k, v)| {
            let v: Vec<_> = v.split('\n').map(metadata::printable).collect();
            format!("{:<16} {}\n", format!("{k}:"), v.join(INDENT))
        })
        .collect()
}

fn readable(meta: &ImageMeta) -> String {
    let r = &meta.recipe;
    let p = &meta.provenance;
    let model = r.model.source.describe();
    let mut lines = vec![
        ("prompt", r.prompt.clone()),
        ("negative prompt", r.negative_prompt.clone()),
        ("model", format!("{model} ({})", r.model.family)),
        ("seed", format!("{} (rng {})", r.seed, r.rng)),
        ("size", format!("{}x{}", r.width, r.height)),
        ("sampler", sampler_line(r)),
        ("dtype", r.dtype.to_string()),
    ];
    if let Some(vae) = &r.model.vae {
        lines.insert(3, ("vae", vae.describe()));
    }
    if r.truncate_prompt {
        lines.push(("truncate prompt", "yes".into()));
    }
    for (file, hash) in &r.model.files {
        lines.push(("weights", format!("{file} sha256 {hash}")));
    }
    for l in &r.model.loras {
        lines.push((
            "lora",
            format!(
                "{} at {} (UNet) / {} (text encoder), sha256 {}",
                l.name, l.unet, l.text_encoder, l.sha256
            ),
        ));
    }
    for e in &r.model.embeddings {
        lines.push((
            "embedding",
            format!("{} = {} sha256 {}", e.name, e.path.display(), e.sha256),
        ));
    }
    lines.push((
        "made by",
        format!("{}, candle {}, on {}", p.tool, p.candle, p.device),
    ));
    if let Some(parent) = &p.parent {
        let how = if parent.overrides.is_empty() {
            "unchanged".to_string()
        } else {
            parent.overrides.join(", ")
        };
        let from = match &parent.made_by {
            Some(tool) => format!("an image made by {tool}, "),
            None => String::new(),
        };
        lines.push((
            "replayed from",
            format!("{from}pixels sha256 {} ({how})", parent.pixels_sha256),
        ));
        for u in &parent.unmapped {
            lines.push(("parent unmapped", u.clone()));
        }
    }
    lines.push(("noise sha256", p.noise_sha256.clone()));
    lines.push(("pixels sha256", p.pixels_sha256.clone()));
    format_lines(lines)
}

/// Whether the file's pixels are still the ones its provenance records (the last line).
fn pixels_check(meta: &ImageMeta, pixels: &image::RgbImage) -> String {
    let verdict = if meta.provenance.pixels_match(pixels) {
        "match the recorded sha256"
    } else {
        "DIFFER from the recorded sha256: the image was edited after it was written"
    };
    format_lines(vec![("pixels", verdict.to_string())])
}

/// One line per cell: where it sits, its file, and what distinguishes it.
fn sheet_summary(sheet: &metadata::SheetMeta) -> String {
    let mut out = format!("contact sheet of {} cells\n", sheet.cells.len());
    for (name, axis) in [("x axis", &sheet.x_axis), ("y axis", &sheet.y_axis)] {
        if let Some(a) = axis {
            out.push_str(&format!("{name}: {}\n", metadata::printable(a)));
        }
    }
    for c in &sheet.cells {
        let r = &c.meta.recipe;
        out.push_str(&format!(
            "col {} row {}: {} (seed {}, {} {} steps, cfg {})\n",
            c.col,
            c.row,
            metadata::printable(&c.file),
            r.seed,
            r.sampler,
            r.steps,
            r.cfg
        ));
    }
    out
}
