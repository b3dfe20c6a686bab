//! Parity with diffusers, through the CLI: each reference case of ../shared/fixtures/parity (all
//! nine) and parity-sd2v is regenerated with `--rng torch-cpu` and the case's settings, and the 8-bit
//! image must reach PSNR ≥ 40 dB against diffusers' float image rounded to 8 bits (as diffusers
//! rounds). Each test prints its PSNR (run with --nocapture to see them).

use crate::common::*;
use candle_core::Device;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub(crate) const MIN_PSNR_DB: f64 = 40.0;

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    scheduler: String,
    num_inference_steps: u32,
    height: u32,
    width: u32,
    guidance_scale: f64,
    seed: u64,
    prompt: String,
    negative_prompt: Option<String>,
    eta: f64,
}

fn case(dir: &str, id: &str) -> Case {
    // Python's json writes -Infinity for some fields we do not read; serde_json rejects it.
    let text = std::fs::read_to_string(shared(&format!("fixtures/{dir}/cases.json")))
        .unwrap()
        .replace("-Infinity", "null");
    let cases: Cases = serde_json::from_str(&text).unwrap();
    cases.cases.into_iter().find(|c| c.id == id).unwrap()
}

/// diffusers' float image (HWC, 0..1) → 8 bits the way diffusers does: (x · 255).round().
pub(crate) fn reference_pixels(dir: &str, id: &str) -> Vec<u8> {
    let t = candle_core::safetensors::load(
        shared(&format!("fixtures/{dir}/{id}.safetensors")),
        &Device::Cpu,
    )
    .unwrap();
    let img: Vec<f32> = t["image"].flatten_all().unwrap().to_vec1().unwrap();
    img.iter()
        .map(|x| (x * 255.0).round_ties_even() as u8)
        .collect()
}

fn check(dir: &str, id: &str, model: &Path) {
    check_with(dir, id, model, &[]);
}

/// `check` with `extra` arguments (e.g. a LoRA); returns our pixels.
fn check_with(dir: &str, id: &str, model: &Path, extra: &[std::ffi::OsString]) -> Vec<u8> {
    let ours = render_case(dir, id, model, extra);
    let theirs = reference_pixels(dir, id);
    let db = psnr(&ours, &theirs);
    eprintln!("parity {id}: PSNR {db:.2} dB");
    assert!(
        db >= MIN_PSNR_DB,
        "{id}: PSNR {db:.2} dB < {MIN_PSNR_DB} dB"
    );
    ours
}

/// Our pixels for case `id` through the CLI, with `extra` arguments.
fn render_case(dir: &str, id: &str, model: &Path, extra: &[std::ffi::OsString]) -> Vec<u8> {
    let c = case(dir, id);
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out.png");
    // The cases name samplers as seedling does, except DPM++ 2M: "dpmpp2m" is our dpmpp_2m,
    // and "dpmpp2m_karras" (use_karras_sigmas=True) is dpmpp_2m with the karras schedule.
    let (sampler, schedule) = match c.scheduler.as_str() {
        "dpmpp2m" => ("dpmpp_2m", "default"),
        "dpmpp2m_karras" => ("dpmpp_2m", "karras"),
        other => (other, "default"),
    };
    let mut cmd = seedling(home.path());
    cmd.args(["generate", &c.prompt, "--model"])
        .arg(model)
        .args(["--rng", "torch-cpu", "--sampler", sampler])
        .args(["--schedule", schedule])
        .args([
            "--seed",
            &c.seed.to_string(),
            "--steps",
            &c.num_inference_steps.to_string(),
        ])
        .args([
            "--cfg",
            &c.guidance_scale.to_string(),
            "--eta",
            &c.eta.to_string(),
        ])
        .args([
            "--width",
            &c.width.to_string(),
            "--height",
            &c.height.to_string(),
        ])
        .arg("-o")
        .arg(&out);
    if let Some(neg) = &c.negative_prompt {
        cmd.args(["--negative", neg]);
    }
    cmd.args(extra);
    ok(&mut cmd);
    pixels(&out).into_raw()
}

/// `--lora FILE:WEIGHT` for a file of wild/loras.
fn lora_arg(file: &str, weight: &str) -> Vec<std::ffi::OsString> {
    let mut arg = shared(&format!("fixtures/wild/loras/{file}")).into_os_string();
    arg.push(format!(":{weight}"));
    vec!["--lora".into(), arg]
}

/// diffusers with the kohya LoRA at 0.8 on tiny-sd (UNet and text encoder), Euler; the
/// diffusers-format file of the same LoRA makes the same image, bit for bit.
#[test]
fn sd1_lora_euler_and_both_layouts_agree() {
    let id = "w_euler_64x64_10st_g7.5_s42_lora0.8";
    let model = shared("fixtures/tiny-sd");
    let kohya = check_with(
        "wild/parity",
        id,
        &model,
        &lora_arg("tiny-sd1-lora.safetensors", "0.8"),
    );
    let peft = check_with(
        "wild/parity",
        id,
        &model,
        &lora_arg("tiny-sd1-lora-diffusers.safetensors", "0.8"),
    );
    assert!(
        kohya == peft,
        "the two layouts of one LoRA made different images"
    );
    // And the LoRA changed the image: without it, the reference is far off.
    let plain = check_with(
        "wild/parity",
        "w_euler_64x64_10st_g7.5_s42_nolora",
        &model,
        &[],
    );
    assert!(psnr(&plain, &reference_pixels("wild/parity", id)) < MIN_PSNR_DB);
}

#[test]
fn sd1_lora_euler_ancestral() {
    check_with(
        "wild/parity",
        "w_euler_a_64x64_10st_g7.5_s42_lora0.8",
        &shared("fixtures/tiny-sd"),
        &lora_arg("tiny-sd1-lora.safetensors", "0.8"),
    );
}

/// `--embedding` for wild/embeddings/tinystyle.safetensors (2 vectors; the prompt's word
/// `tinystyle` calls it).
fn embedding_arg() -> Vec<std::ffi::OsString> {
    vec![
        "--embedding".into(),
        shared("fixtures/wild/embeddings/tinystyle.safetensors").into_os_string(),
    ]
}

/// diffusers' `load_textual_inversion` (2 vectors in place of the word), Euler and Euler
/// ancestral; without the embedding the same prompt is far off.
#[test]
fn sd1_textual_inversion() {
    let model = shared("fixtures/tiny-sd");
    for id in [
        "w_euler_64x64_10st_g7.5_s42_ti",
        "w_euler_a_64x64_10st_g7.5_s42_ti",
    ] {
        check_with("wild/parity", id, &model, &embedding_arg());
    }
    let id = "w_euler_64x64_10st_g7.5_s42_ti";
    let plain = render_case("wild/parity", id, &model, &[]);
    assert!(psnr(&plain, &reference_pixels("wild/parity", id)) < MIN_PSNR_DB);
}

/// The LoRA and the embedding together.
#[test]
fn sd1_lora_and_textual_inversion() {
    let mut extra = lora_arg("tiny-sd1-lora.safetensors", "0.8");
    extra.extend(embedding_arg());
    check_with(
        "wild/parity",
        "w_euler_64x64_10st_g7.5_s42_lora0.8_ti",
        &shared("fixtures/tiny-sd"),
        &extra,
    );
}

#[test]
fn sd1_ddim() {
    check(
        "parity",
        "a_ddim_64x64_10st_g7.5_s42",
        &shared("fixtures/tiny-sd"),
    );
}

#[test]
fn sd1_euler() {
    check(
        "parity",
        "a_euler_64x64_10st_g7.5_s42",
        &shared("fixtures/tiny-sd"),
    );
}

#[test]
fn sd1_euler_ancestral() {
    check(
        "parity",
        "a_euler_a_64x64_10st_g7.5_s42",
        &shared("fixtures/tiny-sd"),
    );
}

#[test]
fn sd1_dpmpp_2m() {
    check(
        "parity",
        "a_dpmpp2m_64x64_10st_g7.5_s42",
        &shared("fixtures/tiny-sd"),
    );
}

#[test]
fn sd1_dpmpp_2m_karras() {
    check(
        "parity",
        "a_dpmpp2m_karras_64x64_10st_g7.5_s42",
        &shared("fixtures/tiny-sd"),
    );
}

#[test]
fn sd1_unipc() {
    check(
        "parity",
        "a_unipc_64x64_10st_g7.5_s42",
        &shared("fixtures/tiny-sd"),
    );
}

/// 10 steps, 11 UNet calls (the second timestep repeats).
#[test]
fn sd1_pndm() {
    check(
        "parity",
        "a_pndm_64x64_10st_g7.5_s42",
        &shared("fixtures/tiny-sd"),
    );
}

/// LCM as used with LCM-LoRA: guidance 1, so no negative pass.
#[test]
fn sd1_lcm_without_guidance() {
    check(
        "parity",
        "a_lcm_64x64_4st_g1.0_s42",
        &shared("fixtures/tiny-sd"),
    );
}

#[test]
fn sd1_lcm_with_guidance() {
    check(
        "parity",
        "a_lcm_64x64_4st_g7.5_s42",
        &shared("fixtures/tiny-sd"),
    );
}

/// Every case of parity/cases.json has a test above (a new case must get one).
#[test]
fn every_sd1_case_is_covered() {
    let text = std::fs::read_to_string(shared("fixtures/parity/cases.json"))
        .unwrap()
        .replace("-Infinity", "null");
    let cases: Cases = serde_json::from_str(&text).unwrap();
    let covered = [
        "a_ddim_64x64_10st_g7.5_s42",
        "a_euler_64x64_10st_g7.5_s42",
        "a_euler_a_64x64_10st_g7.5_s42",
        "a_dpmpp2m_64x64_10st_g7.5_s42",
        "a_dpmpp2m_karras_64x64_10st_g7.5_s42",
        "a_unipc_64x64_10st_g7.5_s42",
        "a_pndm_64x64_10st_g7.5_s42",
        "a_lcm_64x64_4st_g1.0_s42",
        "a_lcm_64x64_4st_g7.5_s42",
    ];
    let ids: Vec<&str> = cases.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, covered);
}

/// Every wild/parity case (diffusers with the LoRA and the embedding) is checked above; the
/// two without either are the plain pipeline's.
#[test]
fn every_wild_case_is_covered() {
    check(
        "wild/parity",
        "w_euler_a_64x64_10st_g7.5_s42_nolora",
        &shared("fixtures/tiny-sd"),
    );
    let text = std::fs::read_to_string(shared("fixtures/wild/parity/cases.json")).unwrap();
    let cases: Cases = serde_json::from_str(&text).unwrap();
    let ids: Vec<&str> = cases.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "w_euler_64x64_10st_g7.5_s42_nolora",
            "w_euler_64x64_10st_g7.5_s42_lora0.8",
            "w_euler_64x64_10st_g7.5_s42_ti",
            "w_euler_a_64x64_10st_g7.5_s42_nolora",
            "w_euler_a_64x64_10st_g7.5_s42_lora0.8",
            "w_euler_a_64x64_10st_g7.5_s42_ti",
            "w_euler_64x64_10st_g7.5_s42_lora0.8_ti",
        ]
    );
}

#[test]
fn sd2_v_prediction_ddim() {
    check(
        "parity-sd2v",
        "sd2v_ddim_64x64_10st_g7.5_s42",
        &shared("fixtures/tiny-sd2v"),
    );
}

/// SD-Turbo's schedule: tiny-sd2v with the turbo scheduler config in place of its own (the
/// fixture README's recipe), assembled in a temporary folder from links to the fixture files.
#[test]
fn sd2_turbo_trailing_euler_ancestral() {
    let tmp = tempfile::tempdir().unwrap();
    let model = turbo_model(tmp.path());
    check(
        "parity-sd2v",
        "sd2v_turbo_euler_a_64x64_1st_g0.0_s42",
        &model,
    );
}

/// tiny-sd2v with sd-turbo's scheduler config, in `dir` (its files copied: ~20 MB).
fn turbo_model(dir: &Path) -> PathBuf {
    let src = shared("fixtures/tiny-sd2v");
    let dst = dir.join("tiny-sd2v-turbo");
    for part in ["text_encoder", "tokenizer", "unet", "vae"] {
        std::fs::create_dir_all(dst.join(part)).unwrap();
        for entry in std::fs::read_dir(src.join(part)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dst.join(part).join(entry.file_name())).unwrap();
        }
    }
    std::fs::copy(src.join("model_index.json"), dst.join("model_index.json")).unwrap();
    std::fs::create_dir_all(dst.join("scheduler")).unwrap();
    std::fs::copy(
        shared("fixtures/parity-sd2v/scheduler_config_sd_turbo.json"),
        dst.join("scheduler/scheduler_config.json"),
    )
    .unwrap();
    dst
}
