//! Runs against real models from the Hugging Face Hub. Ignored by default: they need the
//! network (or a warm cache) and gigabytes of weights. Run with `cargo test --release -- --ignored`.

use crate::common::*;

fn real(h: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seedling"));
    cmd.current_dir(h);
    cmd
}

#[test]
#[ignore = "downloads stabilityai/sd-turbo (~5 GB) unless it is cached"]
fn default_model_makes_a_512_image_that_replays_exactly() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = h.join("turbo.png");
    ok(real(h)
        .args([
            "generate",
            "a lighthouse at dawn, oil painting",
            "--seed",
            "721",
            "-o",
        ])
        .arg(&out));
    assert_eq!(pixels(&out).dimensions(), (512, 512));
    let json = stdout(&ok(real(h).args(["inspect", "--json"]).arg(&out)));
    assert!(
        json.contains("\"repo\": \"stabilityai/sd-turbo\""),
        "{json}"
    );
    let o = ok(real(h).args(["replay", "--verify"]).arg(&out));
    assert_eq!(stdout(&o).trim(), "identical");
}

#[test]
#[ignore = "downloads stable-diffusion-v1-5 (~5 GB) unless it is cached"]
fn sd15_preset_generates() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = h.join("sd15.png");
    ok(real(h)
        .args([
            "generate",
            "a red apple on a table",
            "--model",
            "sd15",
            "--steps",
            "4",
            "--seed",
            "1",
            "-o",
        ])
        .arg(&out));
    assert_eq!(pixels(&out).dimensions(), (512, 512));
}
