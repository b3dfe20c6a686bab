//! `grid` and `batch` on the tiny model: cells regenerate alone, the contact sheet lists every
//! cell, a prompt file run twice makes the same images and resumes with --skip-existing, and
//! Ctrl-C leaves only complete files.

use crate::common::*;
use seedling::grid::sheet::{sheet_size, SheetLayout};
use std::path::Path;

fn grid(h: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = seedling(h);
    cmd.args([
        "grid",
        "a lighthouse at dawn",
        "--model",
        &tiny_sd(),
        "--steps",
        "2",
    ])
    .args(args);
    ok(&mut cmd)
}

#[test]
fn a_grid_cell_is_the_image_generate_and_replay_make() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    grid(h, &["--seed", "721", "--around", "1", "--out-dir", "g"]);
    let cell = h.join("g/00001-721-a-lighthouse-at-dawn.png");
    let single = h.join("single.png");
    ok(seedling(h)
        .args([
            "generate",
            "a lighthouse at dawn",
            "--model",
            &tiny_sd(),
            "--steps",
            "2",
            "--seed",
            "721",
            "-o",
        ])
        .arg(&single));
    assert_eq!(pixels(&cell).as_raw(), pixels(&single).as_raw());
    assert_eq!(
        stdout(&ok(seedling(h).args(["replay", "--verify"]).arg(&cell))).trim(),
        "identical"
    );
}

#[test]
fn the_contact_sheet_has_the_expected_size_and_lists_every_cell() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let o = grid(
        h,
        &["--seeds", "716-724", "--out-dir", "g", "--batch-size", "3"],
    );
    assert!(
        stdout(&o).contains("saved contact sheet g/00009-grid-a-lighthouse-at-dawn.png (9 cells)"),
        "{}",
        stdout(&o)
    );
    let sheet_path = h.join("g/00009-grid-a-lighthouse-at-dawn.png");
    let text = stdout(&ok(seedling(h).arg("inspect").arg(&sheet_path)));
    assert!(text.starts_with("contact sheet of 9 cells\n"), "{text}");
    assert!(
        text.contains("col 1 row 1: 00004-720-a-lighthouse-at-dawn.png (seed 720,"),
        "{text}"
    );
    let (meta, sheet) = seedling::metadata::read_sheet(&sheet_path).unwrap();
    let mut layout = SheetLayout::new(3, 3);
    layout.title = Some("a lighthouse at dawn".into());
    assert_eq!(sheet.dimensions(), sheet_size(64, 64, &layout));
    assert_eq!(meta.cells.len(), 9);
    for (i, entry) in meta.cells.iter().enumerate() {
        assert_eq!(entry.meta.recipe.seed, 716 + i as u64);
        assert_eq!((entry.col, entry.row), (i % 3, i / 3));
        // Each listed file exists and carries the same recipe.
        let (cell_meta, _) =
            seedling::metadata::read_recipe(&h.join("g").join(&entry.file)).unwrap();
        assert_eq!(cell_meta, entry.meta);
    }
}

#[test]
fn xy_plots_vary_the_named_fields() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    grid(
        h,
        &[
            "--x",
            "cfg=1,7.5",
            "--y",
            "sampler=ddim,euler",
            "--seed",
            "3",
            "-o",
            "plot.png",
        ],
    );
    let (meta, sheet) = seedling::metadata::read_sheet(&h.join("plot.png")).unwrap();
    assert_eq!(meta.x_axis.as_deref(), Some("cfg=1,7.5"));
    assert_eq!(meta.y_axis.as_deref(), Some("sampler=ddim,euler"));
    let got: Vec<(f64, String, u64)> = meta
        .cells
        .iter()
        .map(|c| {
            (
                c.meta.recipe.cfg,
                c.meta.recipe.sampler.to_string(),
                c.meta.recipe.seed,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1.0, "ddim".into(), 3),
            (7.5, "ddim".into(), 3),
            (1.0, "euler".into(), 3),
            (7.5, "euler".into(), 3)
        ]
    );
    let layout = SheetLayout {
        cols: 2,
        rows: 2,
        col_labels: Some(vec!["cfg 1".into(), "cfg 7.5".into()]),
        row_labels: Some(vec!["sampler ddim".into(), "sampler euler".into()]),
        title: Some("a lighthouse at dawn".into()),
    };
    assert_eq!(sheet.dimensions(), sheet_size(64, 64, &layout));
}

#[test]
fn grid_input_errors_name_the_fix() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let m = tiny_sd();
    let e = fails(seedling(h).args(["grid", "a cat", "--model", &m]));
    assert!(e.contains("say which seeds to render"), "{e}");
    let e = fails(seedling(h).args(["grid", "a cat", "--model", &m, "--x", "colour=red"]));
    assert!(e.contains("unknown axis field 'colour'"), "{e}");
    let e = fails(seedling(h).args(["grid", "a cat", "--model", &m, "--x", "prompt_sr=dog,fox"]));
    assert!(e.contains("the prompt does not contain 'dog'"), "{e}");
    let e = fails(seedling(h).args(["grid", "a cat", "--model", &m, "--x", "width=64,65"]));
    assert!(e.contains("width 65 is not a multiple of 2"), "{e}");
    assert!(!h.join("outputs").exists());
}

/// 9 999 × 9 999 cells once aborted the process (SIGABRT on a 32.8 GB allocation) and
/// 3 000 × 3 000 planned for two minutes in 3.7 GB: a plot past the cell limit is refused from the
/// axes' lengths, before the model opens (the error is all of stderr) and before any cell exists.
#[test]
fn plots_past_the_cell_limit_are_refused_before_any_work() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let e = fails(seedling(h).args([
        "grid",
        "a cat",
        "--model",
        &tiny_sd(),
        "--x",
        "seed=1-9999",
        "--y",
        "steps=1-9999",
    ]));
    assert_eq!(
        e,
        "error: --x and --y make 99980001 cells (9999 × 9999), more than the 10000 a grid may \
         have; give the axes fewer values, or split the plot into several grids\n"
    );
    assert!(!h.join("outputs").exists());
}

/// A sheet too large to draw used to fail only after every cell was rendered (here 42 cells of
/// 2048x2048, far more work than a test can wait for); it is refused before the weights load
/// (the error is all of stderr).
#[test]
fn a_sheet_too_large_to_draw_is_refused_before_any_work() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let e = fails(seedling(h).args([
        "grid",
        "a cat",
        "--model",
        &tiny_sd(),
        "--count",
        "42",
        "--seed",
        "1",
        "--width",
        "2048",
        "--height",
        "2048",
    ]));
    assert!(
        e.starts_with("error: a 7 x 6 sheet of 2048x2048 cells would be ")
            && e.ends_with(
                " pixels, more than the 134217728 a sheet may have; make fewer cells per sheet \
                 or smaller images\n"
            )
            && e.lines().count() == 1,
        "{e}"
    );
    assert!(!h.join("outputs").exists());
}

fn job_file(h: &Path) -> std::path::PathBuf {
    let path = h.join("jobs.toml");
    let text = format!(
        "[defaults]\nmodel = \"{}\"\nsteps = 2\n\n[[job]]\nname = \"Red Apple\"\nprompt = \"a red apple\"\nseeds = \"1-2\"\n\n\
         [[job]]\nprompt = \"a blue boat\"\nseed = 7\nsampler = \"ddim\"\ncfg = 3\n",
        tiny_sd()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn listing(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, seedling::provenance::sha256_hex(pixels(&p).as_raw()))
        })
        .collect();
    v.sort();
    v
}

/// Job files take every recipe field, `vae` included, and `batch --model/--vae` replace the
/// file's: the images are the ones `generate` makes with the same model, VAE and settings.
#[test]
fn batch_takes_vae_from_the_file_and_model_and_vae_from_flags() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let vae = format!("{}/vae", tiny_sd());
    let jobs = h.join("vae.toml");
    let text = format!(
        "[defaults]\nmodel = \"sd-turbo\"\nsteps = 4\nsampler = \"euler\"\nschedule = \"karras\"\n\n[[job]]\nname = \"a\"\n\
         prompt = \"a red apple\"\nseed = 5\nvae = \"{vae}\"\n"
    );
    std::fs::write(&jobs, text).unwrap();
    // sd-turbo is not here (offline): only --model makes this run.
    ok(seedling(h)
        .arg("batch")
        .arg(&jobs)
        .args(["--out-dir", "b", "--model", &tiny_sd()]));
    let made = h.join("b/vae/a-5.png");
    let direct = h.join("direct.png");
    ok(tiny_generate(h, "a red apple", 5, &direct).args([
        "--sampler",
        "euler",
        "--schedule",
        "karras",
        "--vae",
        &vae,
    ]));
    assert_eq!(pixels(&made).as_raw(), pixels(&direct).as_raw());
    let json = stdout(&ok(seedling(h).args(["inspect", "--json"]).arg(&made)));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["recipe"]["model"]["vae"].is_object(), "{json}");
    assert_eq!(v["recipe"]["schedule"], "karras");
    // --vae on the command line wins over the file's (here: a folder that is not a VAE).
    let e = fails(seedling(h).arg("batch").arg(&jobs).args([
        "--out-dir",
        "c",
        "--model",
        &tiny_sd(),
        "--vae",
        "/nonexistent/vae",
    ]));
    assert!(e.contains("/nonexistent/vae"), "{e}");
}

#[test]
fn a_prompt_file_run_twice_makes_the_same_images_and_resumes() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let jobs = job_file(h);
    ok(seedling(h).arg("batch").arg(&jobs).args(["--out-dir", "a"]));
    ok(seedling(h)
        .arg("batch")
        .arg(&jobs)
        .args(["--out-dir", "b", "--batch-size", "2"]));
    let a = listing(&h.join("a/jobs"));
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec!["job-2-7.png", "red-apple-1.png", "red-apple-2.png"]
    );
    assert_eq!(a, listing(&h.join("b/jobs")));

    // A second run into the same folder never overwrites …
    let e = fails(seedling(h).arg("batch").arg(&jobs).args(["--out-dir", "a"]));
    assert!(e.contains("already exists; pass --skip-existing"), "{e}");
    // … and with --skip-existing fills in only what is missing.
    std::fs::remove_file(h.join("a/jobs/red-apple-2.png")).unwrap();
    let o = ok(seedling(h)
        .arg("batch")
        .arg(&jobs)
        .args(["--out-dir", "a", "--skip-existing"]));
    assert!(
        stderr(&o).contains("2 of 3 images already exist"),
        "{}",
        stderr(&o)
    );
    assert_eq!(listing(&h.join("a/jobs")), a);
}

/// --skip-existing keeps a file only when it is a complete image of the job's recipe: a
/// truncated file or the image of an edited job is named (and left alone) before any model
/// loads; once they are moved away, the resume renders them.
#[test]
fn skip_existing_keeps_only_complete_images_of_the_jobs_recipe() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let jobs = job_file(h);
    ok(seedling(h).arg("batch").arg(&jobs).args(["--out-dir", "a"]));
    let made = listing(&h.join("a/jobs"));
    let apple = h.join("a/jobs/red-apple-1.png");
    let boat = h.join("a/jobs/job-2-7.png");
    let whole = std::fs::read(&apple).unwrap();
    std::fs::write(&apple, &whole[..whole.len() / 2]).unwrap();
    let text = std::fs::read_to_string(&jobs).unwrap();
    std::fs::write(&jobs, text.replace("cfg = 3", "cfg = 4")).unwrap();
    let boat_bytes = std::fs::read(&boat).unwrap();

    let e = fails(
        seedling(h)
            .arg("batch")
            .arg(&jobs)
            .args(["--out-dir", "a", "--skip-existing"]),
    );
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert_eq!(
        lines[0],
        "error: --skip-existing keeps only complete, unedited images of the job's recipe, and 2 \
         file(s) under this job file's names are not:"
    );
    // The reader's own words for a damaged PNG (its wording is the metadata module's).
    assert!(lines[1].starts_with("  a/jobs/red-apple-1.png "), "{e}");
    assert_eq!(
        lines[2],
        "  a/jobs/job-2-7.png was made from another recipe: cfg is 3.0 in the file, 4.0 now"
    );
    assert_eq!(
        lines[3],
        "seedling never overwrites them: move or delete them to render those images again, or \
         use another --out-dir"
    );
    assert_eq!(std::fs::read(&apple).unwrap(), &whole[..whole.len() / 2]);
    assert_eq!(std::fs::read(&boat).unwrap(), boat_bytes);

    // Moved away, they are rendered again: the apple as before, the boat with the new cfg.
    std::fs::remove_file(&apple).unwrap();
    std::fs::remove_file(&boat).unwrap();
    let o = ok(seedling(h)
        .arg("batch")
        .arg(&jobs)
        .args(["--out-dir", "a", "--skip-existing"]));
    assert!(
        stderr(&o).contains("1 of 3 images already exist"),
        "{}",
        stderr(&o)
    );
    let now = listing(&h.join("a/jobs"));
    assert_eq!(now[1..], made[1..]);
    assert_eq!(now[0].0, "job-2-7.png");
    assert_ne!(now[0].1, made[0].1);
}

/// Two batch runs of one job file into one folder: the name of an image is free when this run
/// plans and taken (by the other run) before it saves. The image is never overwritten; with
/// --skip-existing an image of the same recipe is kept and the run succeeds, without it the
/// error names only flags batch has.
#[test]
fn a_name_taken_by_another_run_while_rendering_is_kept_or_named() {
    use std::io::{BufRead, BufReader, Read};
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let jobs = h.join("race.toml");
    // Enough steps that the test places the other run's image (microseconds) long before this
    // run saves its own (weights loaded, then 50 steps).
    std::fs::write(
        &jobs,
        format!(
            "[[job]]\nname = \"slow\"\nmodel = \"{}\"\nprompt = \"a cat\"\nseed = 5\nsteps = 50\n",
            tiny_sd()
        ),
    )
    .unwrap();
    ok(seedling(h)
        .arg("batch")
        .arg(&jobs)
        .args(["--out-dir", "other"]));
    let theirs = std::fs::read(h.join("other/race/slow-5.png")).unwrap();

    for skip in [true, false] {
        let out = format!("run-{skip}");
        let mut cmd = seedling(h);
        cmd.arg("batch").arg(&jobs).args(["--out-dir", &out]);
        if skip {
            cmd.arg("--skip-existing");
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // "loading" comes after every check, before the first step: the name was free.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        while !seen.lines().any(|l| l.starts_with("loading")) {
            assert!(err.read_line(&mut seen).unwrap() > 0, "{seen}");
        }
        let dir = h.join(&out).join("race");
        std::fs::write(dir.join("placing"), &theirs).unwrap();
        std::fs::rename(dir.join("placing"), dir.join("slow-5.png")).unwrap();
        err.read_to_string(&mut seen).unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.success(), skip, "{seen}");
        if skip {
            assert_eq!(
                stdout(&o).trim(),
                format!("kept {out}/race/slow-5.png: another run saved this image meanwhile")
            );
        } else {
            assert!(
                seen.ends_with(&format!(
                    "error: {out}/race/slow-5.png appeared while this run was rendering it \
                     (another run writing the same images?); nothing was overwritten. Pass \
                     --skip-existing to keep such images when they are of the same recipe, or \
                     use another --out-dir\n"
                )),
                "{seen}"
            );
        }
        assert!(!seen.contains("--overwrite"), "{seen}");
        assert_eq!(std::fs::read(dir.join("slow-5.png")).unwrap(), theirs);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["slow-5.png"], "temporary files left");
    }
}

#[test]
fn prompt_file_errors_point_at_file_line_and_field() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let path = h.join("bad.toml");
    std::fs::write(
        &path,
        "[[job]]\nprompt = \"a cat\"\nseeds = \"1-2\"\nsampler = \"dpm\"\n",
    )
    .unwrap();
    let e = fails(seedling(h).arg("batch").arg(&path));
    assert!(
        e.contains("bad.toml:4: job 1, field sampler: unknown sampler 'dpm'"),
        "{e}"
    );
}

#[test]
fn ctrl_c_stops_cleanly_without_partial_files() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let child = seedling(h)
        .args([
            "generate",
            "a cat",
            "--model",
            &tiny_sd(),
            "--steps",
            "40",
            "--seed",
            "1",
            "--count",
            "50",
        ])
        .args(["--out-dir", "out"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it finish at least one image, then interrupt. The deadline only bounds a hang: on a
    // loaded two-core machine the first image of 200 steps took over the 120 s this once
    // allowed; 40 steps leave the other 49 images far from done when the signal comes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while std::fs::read_dir(h.join("out")).map_or(0, |d| d.count()) == 0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("interrupted (Ctrl-C)"), "{err}");
    let files: Vec<_> = std::fs::read_dir(h.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!files.is_empty() && files.len() < 50, "{files:?}");
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "temporary file left: {name}");
        seedling::metadata::read_recipe(&f).expect("every file is complete");
    }
}

/// A job's `loras` (a file relative to the job file, or a name in the models folders) and the
/// A1111 tags of its prompt are LoRAs as `--lora` makes them.
#[test]
fn batch_jobs_take_loras_by_list_and_by_prompt_tag() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let models = h.join("models");
    std::fs::create_dir_all(models.join("Lora")).unwrap();
    std::fs::create_dir_all(models.join("Stable-diffusion")).unwrap();
    let lora = shared("fixtures/wild/loras/tiny-sd1-lora.safetensors");
    std::fs::copy(&lora, models.join("Lora/style.safetensors")).unwrap();
    std::fs::copy(&lora, h.join("beside.safetensors")).unwrap();
    let jobs = h.join("loras.toml");
    let text = format!(
        "[defaults]\nmodel = \"{}\"\nsteps = 4\n\n\
         [[job]]\nname = \"named\"\nprompt = \"a red apple\"\nseed = 5\nloras = [\"style:0.8\"]\n\n\
         [[job]]\nname = \"file\"\nprompt = \"a red apple\"\nseed = 5\nloras = [\"beside.safetensors:0.8\"]\n\n\
         [[job]]\nname = \"tag\"\nprompt = \"a red apple<lora:style:0.8>\"\nseed = 5\n",
        tiny_sd()
    );
    std::fs::write(&jobs, text).unwrap();
    ok(seedling(h)
        .arg("batch")
        .arg(&jobs)
        .args(["--out-dir", "b", "--models-dir"])
        .arg(&models));
    let direct = h.join("direct.png");
    let mut arg = lora.into_os_string();
    arg.push(":0.8");
    ok(tiny_generate(h, "a red apple", 5, &direct)
        .arg("--lora")
        .arg(&arg));
    for name in ["named", "file", "tag"] {
        let made = h.join(format!("b/loras/{name}-5.png"));
        assert_eq!(pixels(&made).as_raw(), pixels(&direct).as_raw(), "{name}");
    }
}
