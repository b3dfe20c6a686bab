//! `seedling models` over models folders: an A1111 install and a ComfyUI one holding the wild
//! fixtures (checkpoints linked, the small LoRAs and embedding copied), listed with family,
//! dtype, size and A1111's hashes; the second listing hashes nothing (the cache, here in the
//! test's home through SEEDLING_HASH_CACHE, answers).

use crate::common::*;
use std::path::Path;

/// Links a wild fixture to `dest` (a copy where links are not available).
fn link(rel: &str, dest: &Path) {
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let src = shared(&format!("fixtures/wild/{rel}"));
    #[cfg(unix)]
    std::os::unix::fs::symlink(src, dest).unwrap();
    #[cfg(not(unix))]
    std::fs::copy(src, dest).unwrap();
}

fn copy(rel: &str, dest: &Path) {
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(shared(&format!("fixtures/wild/{rel}")), dest).unwrap();
}

/// `<home>/ComfyUI/models/{checkpoints,loras,embeddings}`.
fn comfyui(home: &Path) -> std::path::PathBuf {
    let models = home.join("ComfyUI/models");
    for f in ["tiny-sd1", "tiny-sd2v", "tiny-sdxl"] {
        let rel = format!("checkpoints/{f}.safetensors");
        link(&rel, &models.join(&rel));
    }
    copy(
        "loras/tiny-sd1-lora.safetensors",
        &models.join("loras/tiny-sd1-lora.safetensors"),
    );
    copy(
        "loras/tiny-sd1-lora-diffusers.safetensors",
        &models.join("loras/tiny-sd1-lora-diffusers.safetensors"),
    );
    copy(
        "embeddings/tinystyle.safetensors",
        &models.join("embeddings/tinystyle.safetensors"),
    );
    models
}

/// `<home>/webui` as A1111 lays it out: `models/Stable-diffusion`, `models/Lora`, `models/VAE`,
/// and `embeddings/` beside `models/`.
fn a1111(home: &Path) -> std::path::PathBuf {
    let webui = home.join("webui");
    link(
        "checkpoints/tiny-sd1-fp16.safetensors",
        &webui.join("models/Stable-diffusion/sd1/tiny-sd1-fp16.safetensors"),
    );
    copy(
        "loras/tiny-sd1-lora.safetensors",
        &webui.join("models/Lora/tiny-sd1-lora.safetensors"),
    );
    std::fs::create_dir_all(webui.join("models/VAE")).unwrap();
    std::fs::write(webui.join("models/VAE/old.pt"), b"not a real pickle").unwrap();
    copy(
        "embeddings/tinystyle.safetensors",
        &webui.join("embeddings/tinystyle.safetensors"),
    );
    webui
}

/// The output's lines from `first` on, up to the next blank line, with runs of spaces as one.
fn table(out: &str, first: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| !l.starts_with(first))
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn lists_a_comfyui_folder_with_a1111_hashes_hashing_each_file_once() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let models = comfyui(h);
    let first = ok(seedling(h).arg("models").arg("--models-dir").arg(&models));
    let out = stdout(&first);
    assert!(
        out.contains(&format!(
            "\nmodels folders:\n  {} (ComfyUI: checkpoints, loras, embeddings)\n",
            models.display()
        )),
        "{out}"
    );
    assert_eq!(
        table(&out, "CHECKPOINT"),
        [
            "CHECKPOINT FAMILY DTYPE SIZE AUTOV2 AUTOV1",
            "tiny-sd1 sd1 F32 15.6 MB 79e01fec06 6a243d3f",
            "tiny-sd2v sd2 F32 18.4 MB 6ffe9bf552 882b1a4b",
            "tiny-sdxl sdxl F32 26.5 MB 17bbf87075 95b29c54",
        ]
    );
    // sha256 and the addnet hash (after the header) as `sha256sum` and a Python check give them.
    assert_eq!(
        table(&out, "LORA"),
        [
            "LORA FAMILY DTYPE SIZE AUTOV2 A1111",
            "tiny-sd1-lora sd1 F16 153.1 kB a0d2d2e011 d22bce531cb2 kohya, rank 4",
            "tiny-sd1-lora-diffusers unknown F32 256.8 kB 68a89fd1ab 2269fef454e5 diffusers, rank 4",
        ]
    );
    assert_eq!(
        table(&out, "EMBEDDING"),
        [
            "EMBEDDING FAMILY DTYPE SIZE AUTOV2",
            "tinystyle unknown F32 336 B 77c1085bc1 2 vectors of 32",
        ]
    );
    assert!(out.ends_with(&format!(
        "\nhash cache: {}\n",
        h.join("hash-cache.json").display()
    )));
    let err = stderr(&first);
    assert_eq!(err.matches("hashing ").count(), 6, "{err}");
    assert!(err.contains(&format!(
        "hashing {} (26.5 MB)",
        models.join("checkpoints/tiny-sdxl.safetensors").display()
    )));

    // Again: same listing, nothing read in full.
    let second = ok(seedling(h).arg("models").arg("--models-dir").arg(&models));
    assert_eq!(stdout(&second), out);
    assert_eq!(stderr(&second), "");
}

#[test]
fn lists_an_a1111_install_from_the_environment_and_as_json() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let webui = a1111(h);
    let elsewhere = comfyui(h);
    let list = std::env::join_paths([&webui, &elsewhere]).unwrap();
    let out = stdout(&ok(seedling(h)
        .env("SEEDLING_MODELS_DIR", &list)
        .arg("models")));
    assert!(
        out.contains(&format!(
            "  {} (A1111: Stable-diffusion, Lora, embeddings, VAE)\n  {} (ComfyUI: ",
            webui.display(),
            elsewhere.display()
        )),
        "{out}"
    );
    let checkpoints = table(&out, "CHECKPOINT");
    assert_eq!(
        checkpoints[1],
        "sd1/tiny-sd1-fp16 sd1 F16 7.9 MB c11b273173 8c5477fa"
    );
    assert_eq!(checkpoints.len(), 5, "A1111's one, then ComfyUI's three");
    let vae = table(&out, "VAE");
    assert_eq!(vae.len(), 2);
    assert!(
        vae[1].starts_with("old - - 17 B ") && vae[1].ends_with(" pickle: not loaded"),
        "{vae:?}"
    );

    // --models-dir replaces the environment's list.
    let json: serde_json::Value = serde_json::from_str(&stdout(&ok(seedling(h)
        .env("SEEDLING_MODELS_DIR", &list)
        .args(["models", "--json", "--models-dir"])
        .arg(&webui))))
    .unwrap();
    let folders = &json["folders"];
    assert_eq!(folders["dirs"].as_array().unwrap().len(), 1);
    assert_eq!(folders["dirs"][0]["layout"], "a1111");
    let files = folders["files"].as_array().unwrap();
    let checkpoint = &files[0];
    assert_eq!(checkpoint["kind"], "checkpoint");
    assert_eq!(checkpoint["name"], "sd1/tiny-sd1-fp16");
    assert_eq!(checkpoint["format"], "safetensors");
    assert_eq!(checkpoint["bytes"], 7856214);
    assert_eq!(checkpoint["family"], "sd1");
    assert_eq!(checkpoint["dtype"], "F16");
    let hashes = &checkpoint["hashes"];
    assert_eq!(
        hashes["sha256"],
        "c11b2731735e6cf2f40f5da8cb672e49b7b449f065f8890522c08c0da6b9630b"
    );
    assert_eq!(hashes["autov2"], "c11b273173");
    assert_eq!(hashes["autov1"], "8c5477fa");
    assert_eq!(hashes["addnet"].as_str().unwrap().len(), 64);
    let lora = &files[1];
    assert_eq!(lora["kind"], "lora");
    assert_eq!(
        lora["lora"],
        serde_json::json!({"format": "kohya", "rank": 4})
    );
    let addnet = lora["hashes"]["addnet"].as_str().unwrap();
    assert!(
        out.contains(&format!(" {} ", &addnet[..12])),
        "the LoRA hash A1111 writes"
    );
    let embedding = &files[2];
    assert_eq!(embedding["kind"], "embedding");
    assert_eq!(
        embedding["embedding"],
        serde_json::json!({"vectors": 2, "widths": [32]})
    );
    assert_eq!(files[3]["kind"], "vae");
    assert_eq!(files[3]["note"], "pickle: not loaded");
    assert_eq!(
        json["hash_cache"],
        h.join("hash-cache.json").display().to_string()
    );
}

#[test]
fn a_folder_that_is_not_a_models_folder_is_refused_by_its_flag() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::create_dir_all(h.join("photos")).unwrap();
    let e = fails(seedling(h).args(["models", "--models-dir", "photos"]));
    assert!(
        e.contains("photos holds none of A1111's model folders")
            && e.contains("pass the folder that holds them as --models-dir"),
        "{e}"
    );
    let e = fails(seedling(h).args(["models", "--models-dir", "nowhere"]));
    assert!(e.contains("pass an existing folder as --models-dir"), "{e}");
}

/// ComfyUI's own PNGs (wild/comfyui) replay from a ComfyUI models folder: the checkpoint
/// `ckpt_name` names, the LoRA a LoraLoader applies and the `embedding:NAME` of the prompt are
/// found there and recorded by content. (ComfyUI's sampling differs from diffusers'; matching
/// its pixels is another issue, so only the resolution is checked here.)
#[test]
fn comfyui_pngs_replay_from_a_comfyui_models_folder() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let models = h.join("ComfyUI/models");
    for (rel, dest) in [
        (
            "checkpoints/tiny-sd1.safetensors",
            "checkpoints/tiny-sd1.safetensors",
        ),
        (
            "loras/tiny-sd1-lora.safetensors",
            "loras/tiny-sd1-lora.safetensors",
        ),
        (
            "embeddings/tinystyle.safetensors",
            "embeddings/tinystyle.safetensors",
        ),
    ] {
        let dest = models.join(dest);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(shared(&format!("fixtures/wild/{rel}")), dest).unwrap();
    }
    let replay = |case: &str| {
        let out = h.join(format!("{case}.png"));
        let o = ok(seedling(h)
            .arg("replay")
            .arg(shared(&format!("fixtures/wild/comfyui/{case}.png")))
            .arg("--models-dir")
            .arg(&models)
            .arg("--config")
            .arg(shared("fixtures/tiny-sd"))
            .arg("-o")
            .arg(&out));
        let json = stdout(&ok(seedling(h).args(["inspect", "--json"]).arg(&out)));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        (v["recipe"]["model"].clone(), stderr(&o))
    };
    let sha = |rel: &str| sha256(&shared(&format!("fixtures/wild/{rel}")));
    let (model, err) = replay("c_euler_normal_s42_lora0.8");
    assert_eq!(
        model["files"]["checkpoint"],
        sha("checkpoints/tiny-sd1.safetensors"),
        "{err}"
    );
    let lora = &model["loras"][0];
    assert_eq!(
        lora["sha256"],
        sha("loras/tiny-sd1-lora.safetensors"),
        "{err}"
    );
    assert_eq!(
        (lora["unet"].as_f64(), lora["text_encoder"].as_f64()),
        (Some(0.8), Some(0.8))
    );
    let (model, err) = replay("c_euler_normal_s42_embedding");
    assert_eq!(model["embeddings"][0]["name"], "tinystyle", "{err}");
    assert_eq!(
        model["embeddings"][0]["sha256"],
        sha("embeddings/tinystyle.safetensors")
    );
    assert!(model.get("loras").is_none());
}

/// An A1111 image's separate VAE (`VAE`, `VAE hash`: the file's AutoV2) is found in the models
/// folders' VAE folder by hash; one that is not there stops the replay before any work.
#[test]
fn a1111_vae_is_found_by_hash_or_named_as_missing() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let models = h.join("models");
    std::fs::create_dir_all(models.join("VAE")).unwrap();
    std::fs::create_dir_all(models.join("Stable-diffusion")).unwrap();
    let file = shared("fixtures/wild/checkpoints/tiny-sd1.safetensors");
    let hash = &sha256(&file)[..10];
    let text = format!(
        "a red apple\nSteps: 3, Sampler: Euler, CFG scale: 5, Seed: 42, Size: 64x64, \
         VAE hash: {hash}, VAE: tiny-vae.safetensors, Version: v1.10.1"
    );
    crate::foreign::write_png(h, "a1111.png", &[("tEXt", "parameters", &text)]);
    let replay = |out: &Path| {
        let mut cmd = seedling(h);
        cmd.args(["replay", "a1111.png", "--model", &tiny_sd(), "--models-dir"])
            .arg(&models)
            .arg("-o")
            .arg(out);
        cmd
    };
    let missing = h.join("missing.png");
    let e = fails(&mut replay(&missing));
    assert!(
        e.contains(&format!(
            "the image was made with the VAE 'tiny-vae.safetensors' (hash {hash}), which is not \
             in the models folders' VAE folders"
        )),
        "{e}"
    );
    assert!(!missing.exists());
    std::fs::copy(&file, models.join("VAE/renamed.safetensors")).unwrap();
    let out = h.join("out.png");
    let err = stderr(&ok(&mut replay(&out)));
    assert!(
        err.contains("note: the image's VAE 'tiny-vae.safetensors'"),
        "{err}"
    );
    let r = recipe_json(h, &out);
    assert!(
        r["model"]["vae"]["path"]
            .as_str()
            .unwrap()
            .ends_with("renamed.safetensors"),
        "{r}"
    );
}
