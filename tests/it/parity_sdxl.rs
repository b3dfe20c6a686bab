//! SDXL parity with diffusers' StableDiffusionXLPipeline through the CLI
//! (../shared/fixtures/parity-sdxl): PSNR ≥ 40 dB on the 8-bit image.

use crate::common::*;
use crate::parity::{reference_pixels, MIN_PSNR_DB};

#[test]
fn sdxl_euler_matches_diffusers() {
    let id = "sdxl_euler_64x64_10st_g5.0_s42";
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out.png");
    // The case's settings (parity-sdxl/cases.json): no negative prompt, so the model's
    // force_zeros_for_empty_prompt applies.
    ok(seedling(home.path())
        .args(["generate", "a red apple on a table", "--model"])
        .arg(shared("fixtures/tiny-sdxl"))
        .args([
            "--rng",
            "torch-cpu",
            "--sampler",
            "euler",
            "--seed",
            "42",
            "--steps",
            "10",
        ])
        .args(["--cfg", "5", "--width", "64", "--height", "64", "-o"])
        .arg(&out));
    let theirs = reference_pixels("parity-sdxl", id);
    let db = psnr(pixels(&out).as_raw(), &theirs);
    eprintln!("parity {id}: PSNR {db:.2} dB");
    assert!(
        db >= MIN_PSNR_DB,
        "{id}: PSNR {db:.2} dB < {MIN_PSNR_DB} dB"
    );
}
