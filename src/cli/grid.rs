//! `seedling grid`: a plan of cells (seeds, or an X/Y plot) → one PNG per cell with its full
//! recipe → a contact sheet whose metadata lists every cell.

use super::args::GridArgs;
use super::generate::{build_recipe, check_variation, seeds_of};
use super::render::{self, Target, DEFAULT_OUT_DIR};
use super::session;
use anyhow::{bail, Result};
use image::RgbImage;
use seedling::grid::plan::{check_xy_size, seed_plan, xy_plan, Axis, Plan};
use seedling::grid::seeds;
use seedling::grid::sheet::{check_sheet_size, render_sheet, SheetCell, SheetLayout, BACKGROUND};
use seedling::metadata::{encode_sheet_png, SheetEntry, SheetMeta};
use seedling::output;
use seedling::recipe::Recipe;
use seedling::session::DeviceSpec;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(args: GridArgs) -> Result<ExitCode> {
    let device: DeviceSpec = args.run.device.parse()?;
    let spec = args.recipe.model_spec()?;
    let x = args.x.as_deref().map(str::parse::<Axis>).transpose()?;
    let y = args.y.as_deref().map(str::parse::<Axis>).transpose()?;
    // Before the model opens: a plot past the cell limit is refused from the axes' lengths.
    if let Some(x) = &x {
        check_xy_size(x, y.as_ref())?;
    }
    check_variation(&args.recipe, 0.0)?;
    let sheet_target = Target::from_args(&args.run);
    sheet_target.check()?;
    let cell_dir = match (&args.run.out_dir, &args.run.output) {
        (Some(dir), _) => dir.clone(),
        (None, Some(sheet)) => match sheet.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
        (None, None) => DEFAULT_OUT_DIR.into(),
    };

    // A1111's `<lora:NAME:W>` tags: taken out of the prompt, applied to every cell.
    let (prompt, tags) = seedling::prompt_networks::take_loras(&args.prompt)?;
    let session = session::open_for(&spec, &args.recipe, &tags, device)?;
    let base = build_recipe(&session, &prompt, args.negative.as_deref(), &args.recipe);
    let plan = plan(&args, &base, x.as_ref(), y.as_ref())?;
    // The sheet's layout is known now: one too large to draw is refused before any rendering.
    // Cells of different sizes are padded to the largest (see `pad_to_common_size`).
    let layout = SheetLayout {
        cols: plan.cols,
        rows: plan.rows,
        col_labels: plan.col_labels.clone(),
        row_labels: plan.row_labels.clone(),
        title: Some(base.prompt.clone()).filter(|p| !p.is_empty()),
    };
    let largest = |side: fn(&Recipe) -> u32| plan.cells.iter().map(|c| side(&c.recipe)).max();
    let (w, h) = (largest(|r| r.width), largest(|r| r.height));
    check_sheet_size(w.unwrap_or(0), h.unwrap_or(0), &layout)?;
    for cell in &plan.cells {
        session::check(&session, &cell.recipe)?;
    }
    if args.recipe.patch.seed.is_none()
        && args.seeds.is_none()
        && !plan.cells.iter().any(|c| c.recipe.seed != base.seed)
    {
        eprintln!("seed {} (random)", base.seed);
    }
    eprintln!("{} cells ({} × {})", plan.cells.len(), plan.cols, plan.rows);

    let mut recipes: Vec<Recipe> = plan.cells.iter().map(|c| c.recipe.clone()).collect();
    let mut rendered = Vec::with_capacity(recipes.len());
    session::render_all(
        &session,
        &mut recipes,
        args.run.batch_size,
        |image, progress| {
            let path = render::save(&Target::Dir(cell_dir.clone()), &image)?;
            let seeds = seeds_of(image.recipe());
            progress.image_done(&format!("saved {} ({seeds})", path.display()));
            rendered.push((path, image.meta, image.image));
            Ok(())
        },
    )?;

    let mut entries = Vec::with_capacity(rendered.len());
    let mut cells = Vec::with_capacity(rendered.len());
    for ((path, meta, image), cell) in rendered.into_iter().zip(&plan.cells) {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        entries.push(SheetEntry {
            file,
            col: cell.col,
            row: cell.row,
            meta,
        });
        cells.push(SheetCell {
            image,
            label: cell.label.clone(),
        });
    }
    pad_to_common_size(&mut cells);
    let sheet = render_sheet(&cells, &layout)?;
    let meta = SheetMeta {
        cells: entries,
        x_axis: plan.x_axis,
        y_axis: plan.y_axis,
    };
    let bytes = encode_sheet_png(&sheet, &meta)?;
    let path = match &sheet_target {
        Target::File { path, overwrite } => {
            output::write_new(path, &bytes, *overwrite)?;
            path.clone()
        }
        Target::Dir(dir) => {
            output::write_auto_stem(dir, &format!("grid-{}", output::slug(&base.prompt)), &bytes)?
        }
    };
    println!(
        "saved contact sheet {} ({} cells)",
        path.display(),
        meta.cells.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The cells to render: an X/Y plot when --x is given, else the seeds the flags name.
fn plan(args: &GridArgs, base: &Recipe, x: Option<&Axis>, y: Option<&Axis>) -> Result<Plan> {
    if let Some(x) = x {
        if args.around.is_some() || args.seeds.is_some() || args.count.is_some() {
            bail!("--around, --seeds and --count make a seed grid; in an X/Y plot put the seeds on an axis, e.g. --x seed=1-4");
        }
        return Ok(xy_plan(base, x, y)?);
    }
    let list = match (args.around, &args.seeds, args.count) {
        (Some(r), _, _) => seeds::around(base.seed, r)?,
        (None, Some(list), _) => seeds::parse_seed_list(list)?,
        (None, None, Some(n)) => seeds::consecutive(base.seed, n)?,
        (None, None, None) => bail!(
            "say which seeds to render: --around R (with --seed), --seeds 716-724, --count N, or an X/Y plot with --x"
        ),
    };
    Ok(seed_plan(base, &list))
}

/// Cells of different sizes (a width/height axis) are centred on a background canvas of the
/// largest size, so the sheet stays a grid; each cell's own PNG is untouched.
fn pad_to_common_size(cells: &mut [SheetCell]) {
    let w = cells.iter().map(|c| c.image.width()).max().unwrap_or(0);
    let h = cells.iter().map(|c| c.image.height()).max().unwrap_or(0);
    for cell in cells.iter_mut().filter(|c| c.image.dimensions() != (w, h)) {
        let mut canvas = RgbImage::from_pixel(w, h, BACKGROUND);
        let x = (w - cell.image.width()) / 2;
        let y = (h - cell.image.height()) / 2;
        image::imageops::overlay(&mut canvas, &cell.image, i64::from(x), i64::from(y));
        cell.image = canvas;
    }
}
