//! Single-file checkpoints (../shared/fixtures/wild/checkpoints, each made from a fixture
//! folder): through the CLI, a file with `--config <its folder>` gives the folder's image bit
//! for bit, replays with no flags, and bad files are refused before anything is written.

use crate::common::*;
use std::path::{Path, PathBuf};

fn checkpoint(name: &str) -> PathBuf {
    shared(&format!("fixtures/wild/checkpoints/{name}"))
}

/// A tiny generate of `model` (with `extra` flags) into `out`.
fn generate(home: &Path, model: &Path, extra: &[&str], out: &Path) {
    ok(seedling(home)
        .args(["generate", "a red apple on a table", "--model"])
        .arg(model)
        .args([
            "--steps", "3", "--seed", "7", "--width", "64", "--height", "64",
        ])
        .args(extra)
        .arg("-o")
        .arg(out));
}

/// The file's image and its folder's, at one recipe.
fn file_and_folder(
    file: &str,
    folder: &str,
    extra: &[&str],
) -> (PathBuf, PathBuf, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let folder = shared(&format!("fixtures/{folder}"));
    let config = folder.display().to_string();
    let (from_file, from_folder) = (h.join("file.png"), h.join("folder.png"));
    let mut with_config = vec!["--config", config.as_str()];
    with_config.extend_from_slice(extra);
    generate(h, &checkpoint(file), &with_config, &from_file);
    generate(h, &folder, extra, &from_folder);
    (from_file, from_folder, home)
}

fn assert_identical(file: &str, folder: &str, extra: &[&str]) {
    let (a, b, _home) = file_and_folder(file, folder, extra);
    assert!(pixels(&a) == pixels(&b), "{file} differs from {folder}");
}

#[test]
fn sd1_file_is_its_folder_bit_for_bit() {
    assert_identical("tiny-sd1.safetensors", "tiny-sd", &[]);
}

/// A LoRA lands on a single file's weights (read under their diffusers names) as on the
/// folder's: the same image, and not the image without it.
#[test]
fn sd1_file_with_a_lora_is_its_folder_with_it() {
    let lora = shared("fixtures/wild/loras/tiny-sd1-lora.safetensors");
    let arg = format!("{}:0.8", lora.display());
    let (a, b, home) = file_and_folder("tiny-sd1.safetensors", "tiny-sd", &["--lora", &arg]);
    assert!(
        pixels(&a) == pixels(&b),
        "with a LoRA the file differs from the folder"
    );
    let plain = home.path().join("plain.png");
    generate(home.path(), &shared("fixtures/tiny-sd"), &[], &plain);
    assert!(pixels(&plain) != pixels(&b), "the LoRA changed nothing");
}

#[test]
fn sd1_fp16_file_is_its_folder_in_f16_but_for_the_upcast_vae() {
    // The file holds the folder's weights `.half()`, so in f16 the text encoder and UNet load
    // the same values; the VAE runs in f32 (force_upcast) from f16-rounded weights there, from
    // the full f32 weights in the folder: close, not identical.
    let (a, b, _home) =
        file_and_folder("tiny-sd1-fp16.safetensors", "tiny-sd", &["--dtype", "f16"]);
    let db = psnr(pixels(&a).as_raw(), pixels(&b).as_raw());
    eprintln!("fp16 file vs folder in f16: PSNR {db:.1} dB");
    assert!(db > 60.0, "PSNR {db}");
}

#[test]
fn sd2_v_prediction_file_is_its_folder_bit_for_bit() {
    assert_identical("tiny-sd2v.safetensors", "tiny-sd2v", &[]);
}

#[test]
fn sdxl_file_is_its_folder_bit_for_bit() {
    // candle copies every tensor out of the map, so the alignment effect diffusers shows
    // (wild/checkpoints README: 8.9e-7) does not arise: the images are identical.
    assert_identical("tiny-sdxl.safetensors", "tiny-sdxl", &[]);
}

#[test]
fn a_file_image_replays_with_no_flags_and_records_the_file_by_hash() {
    let (made, _, home) = file_and_folder("tiny-sd1.safetensors", "tiny-sd", &[]);
    let h = home.path();
    let out = h.join("replayed.png");
    ok(seedling(h).arg("replay").arg(&made).arg("-o").arg(&out));
    assert!(pixels(&made) == pixels(&out));
    let o = ok(seedling(h).args(["replay", "--verify"]).arg(&made));
    assert_eq!(stdout(&o).trim(), "identical");

    let (meta, _) = seedling::metadata::read_recipe(&made).unwrap();
    let model = serde_json::to_value(&meta.recipe.model).unwrap();
    assert_eq!(model["source"]["kind"], "file");
    assert_eq!(model["family"], "sd1");
    let files = &model["files"];
    assert_eq!(
        files["checkpoint"],
        "79e01fec06486921bb36318d6d161682c8a4e2b7abf1417ca7b91ea3fea8a863"
    );
    assert!(files["config/unet/config.json"].is_string(), "{files}");
    assert_eq!(model["source"]["config"]["kind"], "local");
    assert!(model["source"]["path"]
        .as_str()
        .unwrap()
        .ends_with("wild/checkpoints/tiny-sd1.safetensors"));
    // A1111's "Model hash" of a single file is the file's (AutoV2, wild/checkpoints/hashes.json).
    let parameters = seedling::metadata::read_png(&made)
        .unwrap()
        .parameters
        .unwrap();
    assert!(
        parameters.contains("Model hash: 79e01fec06"),
        "{parameters}"
    );
}

/// Refused with `expected` in the error, and no image written.
fn refused(model: &Path, extra: &[&str], expected: &str) {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = h.join("out.png");
    let err = fails(
        seedling(h)
            .args(["generate", "a cat", "--steps", "2", "--model"])
            .arg(model)
            .args(extra)
            .arg("-o")
            .arg(&out),
    );
    assert!(err.contains(expected), "{err}");
    assert!(!out.exists());
    assert!(!h.join("outputs").exists());
}

#[test]
fn bad_files_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let truncated = d.join("cut.safetensors");
    let bytes = std::fs::read(checkpoint("tiny-sd1.safetensors")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &truncated,
        &[],
        &format!(
            "error: {} is truncated or damaged: its header describes 15643996 bytes, the file \
             holds 7821998; download or copy it again",
            truncated.canonicalize().unwrap().display()
        ),
    );

    let unet = shared("fixtures/tiny-sd/unet/diffusion_pytorch_model.safetensors");
    refused(
        &unet,
        &[],
        "diffusion_pytorch_model.safetensors has an unknown key layout: it is not an SD 1.x, \
         SD 2.x or SDXL checkpoint (found ",
    );

    let ckpt = d.join("model.ckpt");
    std::fs::write(&ckpt, b"PK\x03\x04 a torch.save zip").unwrap();
    refused(
        &ckpt,
        &[],
        "model.ckpt is a PyTorch pickle checkpoint; seedling never runs pickle code, so it reads \
         only safetensors files. Convert it once",
    );

    // A pickle whose code would create a file if anything ran it (protocol 0: GLOBAL
    // os.system, a string, REDUCE), as a .ckpt and disguised as .safetensors.
    let marker = d.join("PWNED");
    let payload = format!("cos\nsystem\n(S'touch {}'\ntR.", marker.display());
    let evil = d.join("evil.ckpt");
    std::fs::write(&evil, &payload).unwrap();
    refused(&evil, &[], "evil.ckpt is a PyTorch pickle checkpoint");
    let disguised = d.join("evil.safetensors");
    std::fs::write(&disguised, &payload).unwrap();
    refused(&disguised, &[], "evil.safetensors");
    assert!(!marker.exists(), "pickle code ran");
}

#[test]
fn without_config_the_reference_config_must_fit_the_file() {
    // The tiny UNet has 2 levels; SD 1.5's reference config 4: the shapes cannot say the rest.
    refused(
        &checkpoint("tiny-sd1.safetensors"),
        &[],
        "tiny-sd1.safetensors: its UNet has 2 levels, the config describes 4; pass the configs of \
         a model with this architecture (a diffusers folder or repo) to --config",
    );
}

#[test]
fn config_of_another_family_or_for_a_folder_is_refused() {
    let sdxl = shared("fixtures/tiny-sdxl").display().to_string();
    refused(
        &checkpoint("tiny-sd1.safetensors"),
        &["--config", &sdxl],
        "is an sd1 checkpoint, but the configs of",
    );
    refused(
        &shared("fixtures/tiny-sd"),
        &["--config", &sdxl],
        "error: --config describes a single-file checkpoint's architecture; this model is a \
         folder or repo with its own configs, so leave it out",
    );
}

#[test]
fn vae_from_a_checkpoint_file_is_the_folders_vae() {
    // --vae FILE: the VAE part of a checkpoint, decoding as the model's own VAE does.
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let folder = shared("fixtures/tiny-sd");
    let (a, b) = (h.join("own.png"), h.join("vae.png"));
    generate(h, &folder, &[], &a);
    let vae = checkpoint("tiny-sd1.safetensors").display().to_string();
    generate(h, &folder, &["--vae", &vae], &b);
    assert!(pixels(&a) == pixels(&b));
    // --vae NAME: the file of that name in the models folders' VAE folder.
    let models = h.join("models");
    std::fs::create_dir_all(models.join("VAE")).unwrap();
    std::fs::copy(
        checkpoint("tiny-sd1.safetensors"),
        models.join("VAE/tiny-vae.safetensors"),
    )
    .unwrap();
    let c = h.join("named.png");
    let models = models.display().to_string();
    generate(
        h,
        &folder,
        &["--vae", "tiny-vae", "--models-dir", &models],
        &c,
    );
    assert!(pixels(&a) == pixels(&c));
}

/// SDXL files that say how they were trained carry empty `v_pred` / `ztsnr` tensors: they are
/// read (with `--config` the configs decide the prediction type, so the image is the file's).
#[test]
fn training_markers_are_read_not_refused() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut tensors = candle_core::safetensors::load(
        checkpoint("tiny-sdxl.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let marker =
        candle_core::Tensor::zeros(0, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    tensors.insert("v_pred".into(), marker.clone());
    tensors.insert("ztsnr".into(), marker);
    let marked = h.join("marked.safetensors");
    candle_core::safetensors::save(&tensors, &marked).unwrap();
    let config = shared("fixtures/tiny-sdxl").display().to_string();
    let (a, b) = (h.join("a.png"), h.join("b.png"));
    generate(h, &marked, &["--config", &config], &a);
    generate(
        h,
        &checkpoint("tiny-sdxl.safetensors"),
        &["--config", &config],
        &b,
    );
    assert!(pixels(&a) == pixels(&b));
}
