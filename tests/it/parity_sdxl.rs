//! SDXL parity with diffusers' StableDiffusionXLPipeline through the CLI
//! (../shared/fixtures/parity-sdxl): PSNR ≥ 40 dB on the 8-bit image.

use crate::common::*;
use candle_core::Device;

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
    let t = candle_core::safetensors::load(
        shared(&format!("fixtures/parity-sdxl/{id}.safetensors")),
        &Device::Cpu,
    )
    .unwrap();
    let img: Vec<f32> = t["image"].flatten_all().unwrap().to_vec1().unwrap();
    let theirs: Vec<u8> = img
        .iter()
        .map(|x| (x * 255.0).round_ties_even() as u8)
        .collect();
    let db = psnr(pixels(&out).as_raw(), &theirs);
    eprintln!("parity {id}: PSNR {db:.2} dB");
    assert!(db >= 40.0, "{id}: PSNR {db:.2} dB");
}
