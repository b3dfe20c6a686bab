//! The real binary on ../shared/fixtures/tiny-sd: determinism, replay, inspect, and every kind
//! of bad input (clear message, non-zero exit, nothing on disk touched).

use crate::common::*;
use std::path::Path;

#[test]
fn same_seed_same_pixels_other_seed_other_pixels() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    ok(&mut tiny_generate(
        h,
        "a lighthouse at dawn",
        721,
        &h.join("a.png"),
    ));
    ok(&mut tiny_generate(
        h,
        "a lighthouse at dawn",
        721,
        &h.join("b.png"),
    ));
    ok(&mut tiny_generate(
        h,
        "a lighthouse at dawn",
        722,
        &h.join("c.png"),
    ));
    let (a, b, c) = (
        pixels(&h.join("a.png")),
        pixels(&h.join("b.png")),
        pixels(&h.join("c.png")),
    );
    assert_eq!(
        a.dimensions(),
        (64, 64),
        "the tiny model's default size is sample_size × factor"
    );
    assert_eq!(a.as_raw(), b.as_raw());
    assert_ne!(a.as_raw(), c.as_raw());
}

#[test]
fn every_rng_and_sampler_is_deterministic_and_seed_sensitive() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    for rng in ["chacha", "torch-cpu", "philox"] {
        for sampler in ["ddim", "euler", "euler_a"] {
            let run = |seed: u64, name: &str| {
                let out = h.join(format!("{rng}-{sampler}-{name}.png"));
                let mut cmd = tiny_generate(h, "a red apple", seed, &out);
                cmd.args(["--rng", rng, "--sampler", sampler, "--eta", "0.5"]);
                ok(&mut cmd);
                pixels(&out)
            };
            let (a, b, c) = (run(1, "a"), run(1, "b"), run(2, "c"));
            assert_eq!(a.as_raw(), b.as_raw(), "{rng} {sampler}");
            assert_ne!(a.as_raw(), c.as_raw(), "{rng} {sampler}");
        }
    }
}

#[test]
fn replay_is_identical_and_verify_says_so() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let src = h.join("src.png");
    ok(&mut tiny_generate(h, "a red apple", 42, &src));
    let out = h.join("replayed.png");
    ok(seedling(h).args(["replay"]).arg(&src).arg("-o").arg(&out));
    assert_eq!(pixels(&src).as_raw(), pixels(&out).as_raw());

    let o = ok(seedling(h).args(["replay", "--verify"]).arg(&src));
    assert_eq!(stdout(&o).trim(), "identical");
    // --verify alone writes nothing.
    assert!(!h.join("outputs").exists());
}

#[test]
fn replay_with_an_override_changes_only_that_and_records_the_parent() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let src = h.join("src.png");
    ok(&mut tiny_generate(h, "a red apple", 42, &src));
    let out = h.join("seed43.png");
    let o = ok(seedling(h)
        .args(["replay", "--verify", "--seed", "43", "-o"])
        .arg(&out)
        .arg(&src));
    assert!(
        stdout(&o).contains("max pixel difference"),
        "{}",
        stdout(&o)
    );

    // The same as generating seed 43 directly.
    let direct = h.join("direct43.png");
    ok(&mut tiny_generate(h, "a red apple", 43, &direct));
    assert_eq!(pixels(&out).as_raw(), pixels(&direct).as_raw());

    let json = stdout(&ok(seedling(h).args(["inspect", "--json"]).arg(&out)));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["recipe"]["seed"], 43);
    assert_eq!(
        v["provenance"]["parent"]["overrides"],
        serde_json::json!(["seed=43"])
    );
    let src_json = stdout(&ok(seedling(h).args(["inspect", "--json"]).arg(&src)));
    let s: serde_json::Value = serde_json::from_str(&src_json).unwrap();
    assert_eq!(
        v["provenance"]["parent"]["pixels_sha256"],
        s["provenance"]["pixels_sha256"]
    );
    // Only the seed changed.
    let (mut a, mut b) = (s["recipe"].clone(), v["recipe"].clone());
    a["seed"] = 0.into();
    b["seed"] = 0.into();
    assert_eq!(a, b);
}

/// An image whose pixels were edited after seedling wrote it: the recorded pixels_sha256 shows
/// it, so `--verify` says so (it used to blame the build, device and dtype), names whether the
/// recipe still reproduces the recorded pixels, and `inspect` reports it too.
#[test]
fn verify_and_inspect_of_an_edited_image_say_it_was_edited() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let src = h.join("src.png");
    ok(&mut tiny_generate(h, "a red apple", 42, &src));
    // Same recipe, one pixel changed.
    let (meta, mut img) = seedling::metadata::read_recipe(&src).unwrap();
    img.get_pixel_mut(0, 0).0[0] ^= 0x10;
    let tampered = h.join("tampered.png");
    std::fs::write(
        &tampered,
        seedling::metadata::encode_png(&img, &meta).unwrap(),
    )
    .unwrap();
    let o = run(seedling(h).args(["replay", "--verify"]).arg(&tampered));
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("max pixel difference 16"),
        "{}",
        stdout(&o)
    );
    let err = stderr(&o);
    let name = tampered.display();
    assert!(
        err.starts_with(&format!(
            "note: {name} was edited after seedling wrote it: its pixels no longer match the \
             pixels_sha256 its provenance records; a replay makes the image as written\n"
        )),
        "{err}"
    );
    assert!(
        err.ends_with(&format!(
            "error: {name} was edited after it was written: its pixels no longer match the \
             pixels_sha256 it records, and the replay does (the recipe reproduces exactly; \
             compare with the original file)\n"
        )),
        "{err}"
    );
    assert!(!err.contains("build, device"), "{err}");

    let text = stdout(&ok(seedling(h).arg("inspect").arg(&tampered)));
    assert!(
        text.ends_with(
            "pixels:          DIFFER from the recorded sha256: the image was edited after it \
             was written\n"
        ),
        "{text}"
    );
    let text = stdout(&ok(seedling(h).arg("inspect").arg(&src)));
    assert!(
        text.ends_with("pixels:          match the recorded sha256\n"),
        "{text}"
    );
}

/// A copy of tiny-sd in `dir`; with `brighter`, its VAE's output bias is raised by 0.2, so its
/// weights hash differently and its images differ.
fn tiny_sd_copy(dir: &Path, brighter: bool) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    copy(&shared("fixtures/tiny-sd"), dir);
    if !brighter {
        return;
    }
    let path = dir.join("vae/diffusion_pytorch_model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let bias = &header["decoder.conv_out.bias"];
    assert_eq!(bias["dtype"], "F32");
    let (start, end) = (
        bias["data_offsets"][0].as_u64().unwrap() as usize,
        bias["data_offsets"][1].as_u64().unwrap() as usize,
    );
    for at in (8 + n + start..8 + n + end).step_by(4) {
        let v = f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) + 0.2;
        bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    std::fs::write(&path, bytes).unwrap();
}

/// `--verify` with a changed recipe reports the difference and succeeds, whatever changed (a
/// new size used to fail with "the images differ in size"). Weights are compared by hash even
/// when --model is given: the same weights from another folder must still be identical, other
/// weights are named; other weights under the recorded path fail, naming them.
#[test]
fn verify_with_a_changed_recipe_reports_and_weights_are_compared_by_hash() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let src = h.join("src.png");
    ok(&mut tiny_generate(h, "a red apple", 42, &src));
    let o = ok(seedling(h)
        .args(["replay", "--verify", "--width", "32", "--height", "32"])
        .arg(&src));
    assert_eq!(
        stdout(&o),
        "not compared: the images differ in size: 32x32 vs 64x64\n"
    );

    tiny_sd_copy(&h.join("same"), false);
    let o = ok(seedling(h)
        .args(["replay", "--verify", "--model", "same"])
        .arg(&src));
    assert_eq!(stdout(&o), "identical\n");
    assert!(!stderr(&o).contains("weights differ"), "{}", stderr(&o));

    tiny_sd_copy(&h.join("other"), true);
    let o = ok(seedling(h)
        .args(["replay", "--verify", "--model", "other"])
        .arg(&src));
    assert!(
        stdout(&o).starts_with("max pixel difference "),
        "{}",
        stdout(&o)
    );
    let vae = "vae/diffusion_pytorch_model.safetensors (sha256 ";
    assert!(
        stderr(&o).contains(&format!(
            "warning: the weights differ from the ones {} was made with: {vae}",
            src.display()
        )),
        "{}",
        stderr(&o)
    );

    // Made with a folder whose weights then change: nothing was asked for, so the verify fails,
    // blaming the weights.
    let mine = h.join("mine");
    tiny_sd_copy(&mine, false);
    let made = h.join("made.png");
    ok(seedling(h)
        .args([
            "generate",
            "a red apple",
            "--model",
            "mine",
            "--steps",
            "4",
            "-o",
        ])
        .arg(&made));
    std::fs::remove_dir_all(&mine).unwrap();
    tiny_sd_copy(&mine, true);
    let e = fails(seedling(h).args(["replay", "--verify"]).arg(&made));
    assert!(
        e.contains(&format!(
            "error: the replay is not identical to {}: the weights differ from the ones it was \
             made with: {vae}",
            made.display()
        )),
        "{e}"
    );
    assert!(!e.contains("build, device"), "{e}");
}

/// PNDM makes one UNet call more than its steps (its first step takes two), and progress showed
/// `step 1/5` … `step 5/5` for `--steps 4`; it counts the steps asked for, as diffusers does.
#[test]
fn progress_counts_the_steps_asked_for() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    for sampler in ["pndm", "euler"] {
        let out = h.join(format!("{sampler}.png"));
        let o = ok(tiny_generate(h, "a red apple", 1, &out).args(["--sampler", sampler]));
        let err = stderr(&o);
        let steps: Vec<&str> = err.lines().filter(|l| l.starts_with("step ")).collect();
        assert_eq!(
            steps,
            ["step 1/4", "step 2/4", "step 3/4", "step 4/4"],
            "{sampler}"
        );
    }
}

/// `--variation-seed` without a strength used to change nothing without a word; `--count` with a
/// variation keeps the seed and counts up the variation seed, as AUTOMATIC1111 does, and each
/// image is still exactly the one its recipe makes.
#[test]
fn a_variation_seed_needs_a_strength_and_a_count_varies_it() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let m = tiny_sd();
    let refusal = "--variation-seed 5 changes nothing without --variation-strength W, how much \
                   of its noise to mix in (0 = none, 1 = all; AUTOMATIC1111's variation \
                   strength); add e.g. --variation-strength 0.1";
    let e =
        fails(tiny_generate(h, "a red apple", 3, &h.join("x.png")).args(["--variation-seed", "5"]));
    assert_eq!(e, format!("error: {refusal}\n"));
    let e = fails(seedling(h).args([
        "grid",
        "a red apple",
        "--model",
        &m,
        "--count",
        "2",
        "--variation-seed",
        "5",
    ]));
    assert_eq!(e, format!("error: {refusal}\n"));
    let e = fails(seedling(h).args([
        "grid",
        "a red apple",
        "--model",
        &m,
        "--x",
        "variation_seed=1-2",
    ]));
    assert!(
        e.contains("axis variation_seed changes nothing at variation strength 0"),
        "{e}"
    );
    let plain = h.join("plain.png");
    ok(&mut tiny_generate(h, "a red apple", 3, &plain));
    let e = fails(
        seedling(h)
            .args(["replay", "--variation-seed", "5"])
            .arg(&plain),
    );
    assert_eq!(e, format!("error: {refusal}\n"));
    assert!(!h.join("outputs").exists() && !h.join("x.png").exists());

    let o = ok(seedling(h).args([
        "generate",
        "a red apple",
        "--model",
        &m,
        "--steps",
        "4",
        "--seed",
        "3",
        "--variation-seed",
        "10",
        "--variation-strength",
        "0.3",
        "--count",
        "3",
        "--out-dir",
        "v",
    ]));
    assert!(
        stdout(&o).contains("(seed 3, variation seed 12)"),
        "{}",
        stdout(&o)
    );
    let mut made: Vec<_> = std::fs::read_dir(h.join("v"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    made.sort();
    let recipes: Vec<(u64, Option<u64>)> = made
        .iter()
        .map(|p| {
            let (meta, _) = seedling::metadata::read_recipe(p).unwrap();
            (meta.recipe.seed, meta.recipe.variation_seed)
        })
        .collect();
    assert_eq!(recipes, [(3, Some(10)), (3, Some(11)), (3, Some(12))]);
    let single = h.join("single.png");
    ok(tiny_generate(h, "a red apple", 3, &single).args([
        "--variation-seed",
        "11",
        "--variation-strength",
        "0.3",
    ]));
    assert_eq!(pixels(&single).as_raw(), pixels(&made[1]).as_raw());
    // An image with a variation takes a new variation seed alone: its strength is recorded.
    let replayed = h.join("replayed.png");
    ok(seedling(h)
        .args(["replay", "--variation-seed", "12", "-o"])
        .arg(&replayed)
        .arg(&single));
    assert_eq!(pixels(&replayed).as_raw(), pixels(&made[2]).as_raw());
}

/// AUTOMATIC1111's prompt syntax is taken literally; generate, grid and replay say so, one line
/// per prompt, and plain text (parentheses included) gets no warning.
#[test]
fn a1111_prompt_syntax_is_named_and_taken_literally() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let m = tiny_sd();
    let warnings = |o: &std::process::Output| -> Vec<String> {
        stderr(o)
            .lines()
            .filter(|l| l.starts_with("warning:"))
            .map(str::to_string)
            .collect()
    };
    let out = h.join("a.png");
    // A `<lora:…>` tag in the prompt is applied (lora_library.rs); in the negative prompt it
    // stays text, as A1111 leaves it (it reads tags from the prompt only).
    let o = ok(tiny_generate(h, "a (red:1.3) apple", 1, &out)
        .args(["--negative", "[blurry|dark] <lora:detail:1>"]));
    let tail = "; it is taken literally, as plain text (no weights, emphasis, LoRAs, alternation \
                or scheduling)";
    assert_eq!(
        warnings(&o),
        [
            format!(
                "warning: the prompt has AUTOMATIC1111 syntax that seedling does not support yet: \
                 (red:1.3) (a weight){tail}"
            ),
            format!(
                "warning: the negative prompt has AUTOMATIC1111 syntax that seedling does not \
                 support yet: [blurry|dark] (alternation), <lora:detail:1> (a LoRA or other \
                 network){tail}"
            ),
        ]
    );
    let o = ok(&mut tiny_generate(
        h,
        "a cat (sleeping) on a mat",
        1,
        &h.join("b.png"),
    ));
    assert!(warnings(&o).is_empty(), "{}", stderr(&o));
    let o = ok(seedling(h).args([
        "grid",
        "((a cat))",
        "--model",
        &m,
        "--steps",
        "1",
        "--count",
        "2",
        "--out-dir",
        "g",
    ]));
    assert_eq!(warnings(&o).len(), 1, "{}", stderr(&o));
    assert!(
        warnings(&o)[0].contains("((a cat)) (emphasis)"),
        "{}",
        stderr(&o)
    );
    // A replay warns about the prompt given, not again about the recorded one.
    let o = ok(seedling(h)
        .args(["replay", "--prompt", "a cat BREAK a dog", "-o", "c.png"])
        .arg(&out));
    assert_eq!(warnings(&o).len(), 1, "{}", stderr(&o));
    assert!(
        warnings(&o)[0].contains("BREAK (a chunk break)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn inspect_prints_the_recipe() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let src = h.join("src.png");
    ok(tiny_generate(h, "a red apple", 42, &src).args(["--negative", "blurry"]));
    let text = stdout(&ok(seedling(h).arg("inspect").arg(&src)));
    assert!(text.contains("prompt:          a red apple\n"), "{text}");
    assert!(text.contains("negative prompt: blurry\n"), "{text}");
    assert!(
        text.contains("seed:            42 (rng chacha)\n"),
        "{text}"
    );
    assert!(text.contains("size:            64x64\n"), "{text}");
    let json = stdout(&ok(seedling(h).args(["inspect", "--json"]).arg(&src)));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["recipe"]["prompt"], "a red apple");
    assert_eq!(v["recipe"]["steps"], 4);
    assert_eq!(v["recipe"]["model"]["family"], "sd1");
    assert!(
        v["recipe"]["model"]["files"]["unet/diffusion_pytorch_model.safetensors"]
            .as_str()
            .unwrap()
            .starts_with("5e45ec32853ad39e")
    );
}

#[test]
fn random_seed_is_printed_recorded_and_names_are_never_reused() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let gen = || {
        let mut c = seedling(h);
        c.args([
            "generate",
            "a lighthouse at dawn",
            "--model",
            &tiny_sd(),
            "--steps",
            "1",
        ]);
        ok(&mut c)
    };
    let o = gen();
    let seed: u64 = stderr(&o)
        .lines()
        .find_map(|l| {
            l.strip_prefix("seed ")?
                .strip_suffix(" (random)")?
                .parse()
                .ok()
        })
        .expect("the random seed is printed");
    let first = h.join(format!("outputs/00000-{seed}-a-lighthouse-at-dawn.png"));
    assert!(first.exists(), "{}", stdout(&o));
    let json = stdout(&ok(seedling(h).args(["inspect", "--json"]).arg(&first)));
    assert!(json.contains(&format!("\"seed\": {seed}")));
    gen();
    let names: Vec<String> = std::fs::read_dir(h.join("outputs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("00001-")), "{names:?}");
}

fn error_of(h: &Path, args: &[&str]) -> String {
    fails(seedling(h).args(args))
}

#[test]
fn bad_sizes_steps_and_ranges_are_refused_with_the_fix() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let m = tiny_sd();
    let base = ["generate", "a cat", "--model", m.as_str()];
    let err = |extra: &[&str]| error_of(h, &[&base[..], extra].concat());
    assert_eq!(
        err(&["--width", "65"]),
        "error: width 65 is not a multiple of 2 (this model's latent scale factor); try 64 or 66\n"
    );
    let sd2 = shared("fixtures/tiny-sd2v").display().to_string();
    assert_eq!(
        error_of(h, &["generate", "a cat", "--model", &sd2, "--height", "500"]),
        "error: height 500 is not a multiple of 8 (this model's latent scale factor); try 496 or 504\n"
    );
    assert!(err(&["--width", "0"]).contains("width 0 is out of range"));
    assert_eq!(
        err(&["--steps", "0"]),
        "error: steps must be at least 1; try --steps 20 (or 1-4 for turbo models)\n"
    );
    assert!(err(&["--steps", "5000"]).contains("use at most 1000"));
    assert!(err(&["--cfg", "-1"]).contains("cfg -1 is out of range; use a value from 0 to 100"));
    assert!(err(&["--eta", "2"]).contains("eta 2 is out of range"));
    assert!(err(&["--dtype", "bf16"]).contains("bf16 is not supported on the CPU"));
    assert!(err(&["--batch-size", "0"]).starts_with(
        "error: invalid value '0' for '--batch-size <B>': the batch size is how many images \
         share a UNet call: a whole number from 1\n"
    ));
    assert!(
        !h.join("outputs").exists(),
        "nothing is written for refused input"
    );
}

#[test]
fn unknown_names_list_the_known_ones() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let m = tiny_sd();
    let o = run(seedling(h).args(["generate", "a cat", "--model", &m, "--sampler", "dpm"]));
    assert_eq!(o.status.code(), Some(2), "usage errors exit 2");
    assert!(
        stderr(&o).contains("unknown sampler 'dpm'; use one of: ddim, euler, euler_a"),
        "{}",
        stderr(&o)
    );
    let e = error_of(h, &["generate", "a cat", "--rng", "mt"]);
    assert!(
        e.contains("unknown rng 'mt'; use one of: chacha, torch-cpu, philox"),
        "{e}"
    );
    let e = error_of(h, &["generate", "a cat", "--dtype", "f64"]);
    assert!(
        e.contains("unknown dtype 'f64'; use one of: f32, f16, bf16"),
        "{e}"
    );
    let e = error_of(h, &["generate", "a cat", "--model", &m, "--device", "tpu"]);
    assert!(
        e.contains("unknown device 'tpu'; use cpu, cuda or cuda:N"),
        "{e}"
    );
}

/// A1111's users write `--seed -1` for a random seed, and seeds past u64 are easy to paste: both
/// get the range and the way to a random seed, not clap's "unexpected argument" (whose tip,
/// `-- -1`, would make -1 the prompt). A variation seed is never random, so its message stops at
/// the range.
#[test]
fn seeds_out_of_range_name_the_range_and_the_way_to_a_random_one() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let m = tiny_sd();
    let fix = "seeds are whole numbers from 0 to 18446744073709551615; for a random seed \
               (AUTOMATIC1111's -1), leave --seed out of generate or grid";
    for (command, seed) in [
        ("generate", "-1"),
        ("generate", "18446744073709551616"),
        ("grid", "-5"),
        ("generate", "7.5"),
    ] {
        let o = run(seedling(h).args([command, "a cat", "--model", &m, "--seed", seed]));
        assert_eq!(o.status.code(), Some(2), "usage errors exit 2");
        assert!(
            stderr(&o).starts_with(&format!(
                "error: invalid value '{seed}' for '--seed <SEED>': {fix}\n"
            )),
            "{}",
            stderr(&o)
        );
    }
    let e = error_of(h, &["generate", "a cat", "--variation-seed", "-1"]);
    assert!(
        e.starts_with(
            "error: invalid value '-1' for '--variation-seed <SEED>': seeds are whole numbers \
             from 0 to 18446744073709551615\n"
        ),
        "{e}"
    );
    assert!(!h.join("outputs").exists(), "nothing is written");
    // The largest seed is a seed.
    let out = h.join("max.png");
    ok(&mut tiny_generate(h, "a cat", u64::MAX, &out));
}

/// `--help` names every sampler, rng, schedule and dtype the parsers take, each as a word of its
/// own option's entry (the sampler's once stopped at the first three).
#[test]
fn help_names_every_choice() {
    use seedling::{noise::RngKind, recipe::ModelDType, sampler::*};
    let home = tempfile::tempdir().unwrap();
    let help = stdout(&ok(seedling(home.path()).args(["generate", "--help"])));
    let options: [(&str, Vec<&str>); 4] = [
        ("--sampler", SamplerKind::ALL.map(|k| k.name()).to_vec()),
        ("--rng", RngKind::ALL.map(|k| k.name()).to_vec()),
        ("--schedule", ScheduleKind::ALL.map(|k| k.name()).to_vec()),
        ("--dtype", ModelDType::ALL.map(|k| k.name()).to_vec()),
    ];
    for (flag, names) in options {
        // The option's entry: from its flag to the next line that starts another option.
        let start = help
            .find(&format!("  {flag} "))
            .unwrap_or_else(|| panic!("{flag} missing from:\n{help}"));
        let entry = help[start + 2..].split("\n  -").next().unwrap();
        let words: Vec<&str> = entry
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .collect();
        for name in names {
            assert!(
                words.contains(&name),
                "{name} missing from {flag}'s help: {entry}"
            );
        }
    }
}

/// replay's model is the image's: its `--model` help must not claim generate's default.
#[test]
fn replay_help_says_the_model_is_the_images() {
    let home = tempfile::tempdir().unwrap();
    let entry = |command: &str| {
        let help = stdout(&ok(seedling(home.path()).args([command, "--help"])));
        let start = help.find("  --model ").expect("--model in help");
        help[start..].lines().next().unwrap().to_string()
    };
    let replay = entry("replay");
    assert!(
        replay.contains("instead of the one the image records"),
        "{replay}"
    );
    assert!(!replay.contains("[default: sd-turbo]"), "{replay}");
    assert!(entry("generate").contains("[default: sd-turbo]"));
}

#[test]
fn missing_or_foreign_models_are_named() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let e = error_of(h, &["generate", "a cat", "--model", "./no/such/model"]);
    assert!(
        e.contains("model folder ./no/such/model does not exist"),
        "{e}"
    );
    std::fs::create_dir(h.join("empty")).unwrap();
    let e = error_of(h, &["generate", "a cat", "--model", "empty"]);
    assert!(
        e.contains("is not a diffusers model (it has no model_index.json)"),
        "{e}"
    );
    std::fs::create_dir(h.join("other")).unwrap();
    std::fs::write(
        h.join("other/model_index.json"),
        r#"{"_class_name": "StableDiffusion3Pipeline"}"#,
    )
    .unwrap();
    let e = error_of(h, &["generate", "a cat", "--model", "other"]);
    assert!(
        e.contains("is a StableDiffusion3Pipeline model, which is not supported yet"),
        "{e}"
    );
    // Offline with an empty cache: a clear message, not a network attempt.
    let e = error_of(h, &["generate", "a cat", "--model", "someone/some-model"]);
    assert!(
        e.contains("is not in the Hugging Face cache") && e.contains("HF_HUB_OFFLINE"),
        "{e}"
    );
}

#[test]
fn overlong_prompts_are_refused_unless_truncation_is_asked_for() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let prompt = format!("{} and a small red boat", "a very wide sky, ".repeat(18));
    let out = h.join("long.png");
    let mut cmd = tiny_generate(h, &prompt, 1, &out);
    let e = fails(&mut cmd);
    assert!(
        e.contains("the prompt is too long:") && e.contains("pass --truncate"),
        "{e}"
    );
    assert!(
        e.contains("a small red boat"),
        "names the dropped words: {e}"
    );
    assert!(!out.exists());
    let o = ok(tiny_generate(h, &prompt, 1, &out).arg("--truncate"));
    assert!(
        stderr(&o).contains("warning: the prompt is"),
        "{}",
        stderr(&o)
    );
    let json = stdout(&ok(seedling(h).args(["inspect", "--json"]).arg(&out)));
    assert!(json.contains("\"truncate_prompt\": true"));
    ok(seedling(h).args(["replay", "--verify"]).arg(&out));
}

#[test]
fn an_existing_output_is_never_overwritten() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = h.join("keep.png");
    std::fs::write(&out, b"precious").unwrap();
    let e = fails(&mut tiny_generate(h, "a cat", 1, &out));
    assert_eq!(
        e,
        format!(
            "error: output file {} already exists; choose another name, or pass --overwrite to replace it\n",
            out.display()
        )
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    ok(tiny_generate(h, "a cat", 1, &out).arg("--overwrite"));
    assert_eq!(pixels(&out).dimensions(), (64, 64));
    let leftovers: Vec<_> = std::fs::read_dir(h)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// An output path the final write would refuse is refused first, before the model loads (the
/// error is all of stderr: no "loading" line), in every command that takes -o; nothing appears.
#[test]
fn bad_output_paths_are_refused_before_any_work() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let m = tiny_sd();
    let src = h.join("src.png");
    ok(&mut tiny_generate(h, "a cat", 1, &src));
    std::fs::create_dir(h.join("folder")).unwrap();
    let cases = [
        (
            "out.jpg",
            "error: output file out.jpg does not end in .png; seedling writes PNG images (the \
             recipe is kept in their text chunks): use out.png\n",
        ),
        (
            "folder",
            "error: output path folder is a folder; give a file name inside it, such as \
             folder/image.png, or pass it as --out-dir for automatic names\n",
        ),
        (
            "missing/out.png",
            "error: cannot write missing/out.png: the folder missing does not exist; create it \
             first (mkdir -p missing) or choose another output path\n",
        ),
    ];
    for (out, want) in cases {
        let generate = [
            "generate", "a cat", "--model", &m, "--steps", "1", "-o", out,
        ];
        assert_eq!(error_of(h, &generate), want, "generate -o {out}");
        let grid = [
            "grid", "a cat", "--model", &m, "--steps", "1", "--count", "2", "-o", out,
        ];
        assert_eq!(error_of(h, &grid), want, "grid -o {out}");
        let replay = ["replay", "src.png", "-o", out];
        assert_eq!(error_of(h, &replay), want, "replay -o {out}");
    }
    let e = error_of(
        h,
        &["generate", "a cat", "--model", &m, "--out-dir", "src.png"],
    );
    assert_eq!(
        e,
        "error: output folder src.png is a file; choose a folder (it is made if missing)\n"
    );
    let mut left: Vec<_> = std::fs::read_dir(h)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // The hash cache the tests keep in their home (common::seedling) is not output.
    left.retain(|n| n != "hash-cache.json");
    left.sort();
    assert_eq!(left, ["folder", "src.png"]);
    assert_eq!(std::fs::read_dir(h.join("folder")).unwrap().count(), 0);
}

/// A folder where files cannot be made is found before the model loads (no "loading" line:
/// the error is all of stderr), in every command that writes images, and the OS error is said
/// once. /proc stands for a read-only folder: nobody, root included, can create files there
/// (tests run as root in CI, where a chmod-ed folder would still be writable).
#[cfg(target_os = "linux")]
#[test]
fn unwritable_output_folders_are_refused_before_any_work() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let m = tiny_sd();
    let src = h.join("src.png");
    ok(&mut tiny_generate(h, "a cat", 1, &src));
    let fix = "choose another output folder (--out-dir, or -o with a path in another folder), or \
               make this one writable with free space";
    let in_proc =
        format!("error: cannot write to output folder /proc: No such file or directory (os error 2); {fix}\n");
    let generate = ["generate", "a cat", "--model", &m, "--steps", "1"];
    let grid = [
        "grid", "a cat", "--model", &m, "--steps", "1", "--count", "2",
    ];
    let replay = ["replay", "src.png"];
    for (command, args) in [
        ("generate", &generate[..]),
        ("grid", &grid),
        ("replay", &replay),
    ] {
        let e = fails(seedling(h).args(args).args(["-o", "/proc/out.png"]));
        assert_eq!(e, in_proc, "{command} -o /proc/out.png");
        let e = fails(seedling(h).args(args).args(["--out-dir", "/proc"]));
        assert_eq!(e, in_proc, "{command} --out-dir /proc");
        let e = fails(seedling(h).args(args).args(["--out-dir", "/proc/new"]));
        assert_eq!(
            e,
            format!(
                "error: cannot make output folder /proc/new in /proc: No such file or directory \
                 (os error 2); {fix}\n"
            ),
            "{command} --out-dir /proc/new"
        );
    }
    let jobs = h.join("jobs.toml");
    std::fs::write(
        &jobs,
        format!("[[job]]\nmodel = \"{m}\"\nprompt = \"a cat\"\nseed = 1\nsteps = 1\n"),
    )
    .unwrap();
    let e = fails(
        seedling(h)
            .arg("batch")
            .arg(&jobs)
            .args(["--out-dir", "/proc"]),
    );
    assert_eq!(
        e,
        format!(
            "error: cannot make output folder /proc/jobs in /proc: No such file or directory (os \
             error 2); {fix}\n"
        )
    );
    let mut left: Vec<_> = std::fs::read_dir(h)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // The hash cache the tests keep in their home (common::seedling) is not output.
    left.retain(|n| n != "hash-cache.json");
    left.sort();
    assert_eq!(left, ["jobs.toml", "src.png"]);
}

#[test]
fn unreadable_and_foreign_pngs_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(h.join("notes.png"), b"just text").unwrap();
    let e = error_of(h, &["replay", "notes.png"]);
    assert!(e.contains("is not a PNG"), "{e}");
    let e = error_of(h, &["inspect", "missing.png"]);
    assert!(e.contains("missing.png"), "{e}");
    image::RgbImage::new(8, 8)
        .save(h.join("plain.png"))
        .unwrap();
    let e = error_of(h, &["inspect", "plain.png"]);
    assert!(e.contains("carries no seedling recipe"), "{e}");
}

#[test]
fn cuda_in_a_cpu_build_says_how_to_get_it() {
    if cfg!(feature = "cuda") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let e = error_of(
        home.path(),
        &[
            "generate",
            "a cat",
            "--model",
            &tiny_sd(),
            "--device",
            "cuda",
        ],
    );
    assert!(
        e.contains("built without CUDA") && e.contains("--features cuda"),
        "{e}"
    );
}

#[test]
fn f16_runs_close_to_f32_and_replays_exactly() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (a, b) = (h.join("f32.png"), h.join("f16.png"));
    ok(&mut tiny_generate(h, "a red apple", 42, &a));
    ok(tiny_generate(h, "a red apple", 42, &b).args(["--dtype", "f16"]));
    // Same noise, half-precision networks: close, not identical (60 dB measured on tiny-sd).
    let db = psnr(pixels(&a).as_raw(), pixels(&b).as_raw());
    assert!(db > 35.0 && db.is_finite(), "f16 vs f32: {db} dB");
    let o = ok(seedling(h).args(["replay", "--verify"]).arg(&b));
    assert_eq!(stdout(&o).trim(), "identical");
}

#[test]
fn philox_seed_uses_all_64_bits_and_is_written_as_a1111_nv() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let run = |seed: u64, rng: &str| {
        let out = h.join(format!("{rng}-{seed}.png"));
        let mut cmd = tiny_generate(h, "a red apple", seed, &out);
        cmd.args(["--rng", rng]);
        ok(&mut cmd);
        out
    };
    let low = run(42, "philox");
    let high = run((1 << 32) + 42, "philox");
    assert_ne!(pixels(&low).as_raw(), pixels(&high).as_raw());
    // torch-cpu keys only the low 32 bits, as torch's CPU generator does.
    let t_low = run(42, "torch-cpu");
    let t_high = run((1 << 32) + 42, "torch-cpu");
    assert_eq!(pixels(&t_low).as_raw(), pixels(&t_high).as_raw());
    let read = seedling::metadata::read_png(&low).unwrap();
    assert!(read.parameters.unwrap().contains(", RNG: NV, "));
    let o = ok(seedling(h).arg("inspect").arg(&low));
    assert!(
        stdout(&o).contains("seed:            42 (rng philox)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn vae_override_is_recorded_replayed_and_checked() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // A VAE-only folder (AutoencoderKL layout) holding tiny-sd's own VAE: the image must not
    // change, and the recipe must say where the VAE came from.
    let vae = h.join("vae-only");
    std::fs::create_dir_all(&vae).unwrap();
    for f in ["config.json", "diffusion_pytorch_model.safetensors"] {
        std::fs::copy(shared("fixtures/tiny-sd/vae").join(f), vae.join(f)).unwrap();
    }
    let plain = h.join("plain.png");
    ok(&mut tiny_generate(h, "a red apple", 5, &plain));
    let with = h.join("with.png");
    ok(tiny_generate(h, "a red apple", 5, &with)
        .arg("--vae")
        .arg(&vae));
    assert_eq!(pixels(&plain).as_raw(), pixels(&with).as_raw());
    let (meta, _) = seedling::metadata::read_recipe(&with).unwrap();
    assert!(meta.recipe.model.vae.is_some());
    assert!(meta
        .recipe
        .model
        .files
        .contains_key("vae-override/diffusion_pytorch_model.safetensors"));
    assert!(!meta
        .recipe
        .model
        .files
        .contains_key("vae/diffusion_pytorch_model.safetensors"));
    let o = ok(seedling(h).arg("inspect").arg(&with));
    assert!(stdout(&o).contains("vae:             "), "{}", stdout(&o));
    // Replay finds the recorded VAE by itself.
    let o = ok(seedling(h).args(["replay", "--verify"]).arg(&with));
    assert_eq!(stdout(&o).trim(), "identical");

    // A VAE of another latent space, and a folder without a VAE, are refused with the fix.
    let other = fails(
        tiny_generate(h, "a red apple", 5, &h.join("x.png"))
            .arg("--vae")
            .arg(shared("fixtures/tiny-sd2v/vae")),
    );
    assert!(other.contains("latent channels at 1/8"), "{other}");
    assert!(
        other.contains("use a VAE made for this model family"),
        "{other}"
    );
    let none = fails(
        tiny_generate(h, "a red apple", 5, &h.join("y.png"))
            .arg("--vae")
            .arg(h),
    );
    assert!(none.contains("holds no VAE"), "{none}");
    assert!(!h.join("x.png").exists() && !h.join("y.png").exists());
}

/// Messages the library builds with settings named structurally, spelled by the CLI as the
/// flags that set them (they once named the flags in the library itself).
#[test]
fn library_messages_name_the_flags_to_use() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let m = tiny_sd();
    assert_eq!(
        error_of(h, &["generate", "a cat", "--model", &m, "--dtype", "bf16"]),
        "error: bf16 is not supported on the CPU (candle has no CPU bf16 matmul); use --dtype f32 \
         or f16, or bf16 with --device cuda\n"
    );
    let karras = ["--sampler", "ddim", "--schedule", "karras"];
    assert_eq!(
        error_of(
            h,
            &[&["generate", "a cat", "--model", &m][..], &karras].concat()
        ),
        "error: the karras schedule needs a sampler with noise levels (sigmas); ddim has none. \
         Use --schedule default, or one of: euler, euler_a, dpmpp_2m, unipc\n"
    );
    assert_eq!(
        error_of(
            h,
            &["grid", "a cat", "--model", &m, "--x", "variation_seed=1-3"]
        ),
        "error: axis variation_seed changes nothing at variation strength 0 (every cell would be \
         the same image); add --variation-strength W, e.g. 0.1, or a variation_strength axis\n"
    );
}
