//! `seedling inspect`: the recipe in a PNG, readable or as JSON.

use super::args::InspectArgs;
use anyhow::Result;
use seedling::metadata::{self, ImageMeta};
use seedling::recipe::ModelSource;
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
    let (meta, _) = metadata::read_recipe(&args.image)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&meta)?);
    } else {
        print!("{}", readable(&meta));
    }
    Ok(ExitCode::SUCCESS)
}

fn readable(meta: &ImageMeta) -> String {
    let r = &meta.recipe;
    let p = &meta.provenance;
    let model = match &r.model.source {
        ModelSource::Hub { repo, revision } => format!("{repo} @ {revision}"),
        ModelSource::Local { path } => path.display().to_string(),
    };
    let mut lines = vec![
        ("prompt", r.prompt.clone()),
        ("negative prompt", r.negative_prompt.clone()),
        ("model", format!("{model} ({})", r.model.family)),
        ("seed", format!("{} (rng {})", r.seed, r.rng)),
        ("size", format!("{}x{}", r.width, r.height)),
        (
            "sampler",
            format!(
                "{} ({} schedule), {} steps, cfg {}, eta {}",
                r.sampler, r.schedule, r.steps, r.cfg, r.eta
            ),
        ),
        ("dtype", r.dtype.to_string()),
    ];
    if r.truncate_prompt {
        lines.push(("truncate prompt", "yes".into()));
    }
    for (file, hash) in &r.model.files {
        lines.push(("weights", format!("{file} sha256 {hash}")));
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
        lines.push((
            "replayed from",
            format!("pixels sha256 {} ({how})", parent.pixels_sha256),
        ));
    }
    lines.push(("noise sha256", p.noise_sha256.clone()));
    lines.push(("pixels sha256", p.pixels_sha256.clone()));
    lines
        .into_iter()
        .map(|(k, v)| format!("{:<16} {v}\n", format!("{k}:")))
        .collect()
}

/// One line per cell: where it sits, its file, and what distinguishes it.
fn sheet_summary(sheet: &metadata::SheetMeta) -> String {
    let mut out = format!("contact sheet of {} cells\n", sheet.cells.len());
    for (name, axis) in [("x axis", &sheet.x_axis), ("y axis", &sheet.y_axis)] {
        if let Some(a) = axis {
            out.push_str(&format!("{name}: {a}\n"));
        }
    }
    for c in &sheet.cells {
        let r = &c.meta.recipe;
        out.push_str(&format!(
            "col {} row {}: {} (seed {}, {} {} steps, cfg {})\n",
            c.col, c.row, c.file, r.seed, r.sampler, r.steps, r.cfg
        ));
    }
    out
}
