//! The Hugging Face path, offline: a hub cache laid out as huggingface_hub / hf-hub write it
//! (blobs named by sha256, snapshots/<commit>/… symlinks, refs/main), holding tiny-sd. With
//! HF_HUB_OFFLINE=1 a repo id resolves from the cache alone, the recipe records the repo and the
//! commit, weight hashes come from the blob names, and replay finds the same commit.
//!
//! Unix-only: the snapshots' symlinks are the layout under test (on Windows without symlink
//! rights huggingface_hub copies blobs into the snapshot instead, and hashes are read, not named).
#![cfg(unix)]

use crate::common::*;
use seedling::provenance::sha256_hex;
use std::path::Path;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Copies tiny-sd into `<cache>/models--test--tiny-sd` in hub-cache layout.
fn fill_cache(cache: &Path) {
    fill_cache_as(cache, "models--test--tiny-sd");
}

/// Copies tiny-sd into `<cache>/<dir>` in hub-cache layout.
fn fill_cache_as(cache: &Path, dir: &str) {
    let repo = cache.join(dir);
    let src = shared("fixtures/tiny-sd");
    for part in ["", "scheduler", "text_encoder", "tokenizer", "unet", "vae"] {
        for entry in std::fs::read_dir(src.join(part)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let blob = repo.join("blobs").join(sha256_hex(&bytes));
            std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
            std::fs::write(&blob, &bytes).unwrap();
            let link = repo
                .join("snapshots")
                .join(COMMIT)
                .join(part)
                .join(path.file_name().unwrap());
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(&blob, &link).unwrap();
        }
    }
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
}

#[test]
fn a_cached_repo_generates_offline_and_the_recipe_pins_its_commit() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    fill_cache(&h.join("hf/hub")); // HF_HOME=<home>/hf (see common::seedling)
    let out = h.join("hub.png");
    ok(seedling(h)
        .args([
            "generate",
            "a red apple",
            "--model",
            "test/tiny-sd",
            "--steps",
            "2",
            "--seed",
            "5",
            "-o",
        ])
        .arg(&out));

    let json = stdout(&ok(seedling(h).args(["inspect", "--json"]).arg(&out)));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let model = &v["recipe"]["model"];
    assert_eq!(
        model["source"],
        serde_json::json!({"kind": "hub", "repo": "test/tiny-sd", "revision": COMMIT})
    );
    let unet = std::fs::read(shared(
        "fixtures/tiny-sd/unet/diffusion_pytorch_model.safetensors",
    ))
    .unwrap();
    assert_eq!(
        model["files"]["unet/diffusion_pytorch_model.safetensors"],
        sha256_hex(&unet)
    );

    // The same image as from the local folder: the source does not change the pixels.
    let local = h.join("local.png");
    ok(&mut {
        let mut c = seedling(h);
        c.args([
            "generate",
            "a red apple",
            "--model",
            &tiny_sd(),
            "--steps",
            "2",
            "--seed",
            "5",
            "-o",
        ])
        .arg(&local);
        c
    });
    assert_eq!(pixels(&out).as_raw(), pixels(&local).as_raw());

    // Replay resolves test/tiny-sd@<commit> from the cache.
    let o = ok(seedling(h).args(["replay", "--verify"]).arg(&out));
    assert_eq!(stdout(&o).trim(), "identical");
}

#[test]
fn hf_hub_cache_takes_precedence_over_hf_home() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    fill_cache(&h.join("elsewhere"));
    let out = h.join("a.png");
    ok(seedling(h)
        .env("HF_HUB_CACHE", h.join("elsewhere"))
        .args([
            "generate",
            "a red apple",
            "--model",
            "test/tiny-sd@main",
            "--steps",
            "1",
            "--seed",
            "1",
            "-o",
        ])
        .arg(&out));
    assert!(out.exists());
}

#[test]
fn a_file_missing_from_the_cache_is_named() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    fill_cache(&h.join("hf/hub"));
    let snap = h
        .join("hf/hub/models--test--tiny-sd/snapshots")
        .join(COMMIT);
    std::fs::remove_file(snap.join("vae/diffusion_pytorch_model.safetensors")).unwrap();
    let e = fails(seedling(h).args([
        "generate",
        "a red apple",
        "--model",
        "test/tiny-sd",
        "-o",
        "x.png",
    ]));
    assert!(e.contains("vae/diffusion_pytorch_model.safetensors"), "{e}");
    assert!(!h.join("x.png").exists());
}

#[test]
fn models_lists_presets_with_their_cache_state_and_other_cached_pipelines() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let before = stdout(&ok(seedling(h).arg("models")));
    let line = |out: &str, name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} row in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line(&before, "sd-turbo"),
        "sd-turbo sd2 512x512, 1 step, cfg 0, euler_a no stabilityai/sd-turbo"
    );
    for name in ["sdxl-turbo", "sd15", "sd21", "sdxl"] {
        assert!(line(&before, name).contains(" no "), "{before}");
    }
    assert!(!before.contains("other diffusers models"), "{before}");

    // tiny-sd cached under the sd-turbo repo name, and again under a repo of no preset.
    fill_cache_as(&h.join("hf/hub"), "models--stabilityai--sd-turbo");
    fill_cache(&h.join("hf/hub"));
    let bytes: u64 = ["text_encoder", "unet", "vae"]
        .iter()
        .flat_map(|d| std::fs::read_dir(shared("fixtures/tiny-sd").join(d)).unwrap())
        .chain(std::fs::read_dir(shared("fixtures/tiny-sd")).unwrap())
        .chain(std::fs::read_dir(shared("fixtures/tiny-sd/scheduler")).unwrap())
        .chain(std::fs::read_dir(shared("fixtures/tiny-sd/tokenizer")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&ok(seedling(h).args(["models", "--json"])))).unwrap();
    let turbo = &json["presets"][0];
    assert_eq!(turbo["name"], "sd-turbo");
    assert_eq!(turbo["cached"]["commit"], COMMIT);
    assert_eq!(turbo["cached"]["complete"], true);
    assert_eq!(turbo["cached"]["bytes"], bytes);
    assert_eq!(json["other_cached"][0]["repo"], "test/tiny-sd");
    let after = stdout(&ok(seedling(h).arg("models")));
    assert!(line(&after, "sd-turbo").contains(" MB (fp32) "), "{after}");
    assert!(
        after.contains("other diffusers models in the cache (use --model REPO):\ntest/tiny-sd"),
        "{after}"
    );
}
