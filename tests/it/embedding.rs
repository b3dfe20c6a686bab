//! Textual-inversion embeddings end to end: a prompt word naming an `--embedding` file stands
//! for its vectors, the recipe records it by content, A1111's parameters carry `TI hashes`,
//! replay finds it again, and an embedding that does not fit is refused naming the file before
//! anything is written. Parity with diffusers is in parity.rs.

use crate::common::*;
use std::path::{Path, PathBuf};

fn tinystyle() -> PathBuf {
    shared("fixtures/wild/embeddings/tinystyle.safetensors")
}

/// "a tinystyle apple" (seed 42) made with a copy of tinystyle in `h`: (the copy, the image).
fn made_with_a_copy(h: &Path) -> (PathBuf, PathBuf) {
    let file = h.join("tinystyle.safetensors");
    std::fs::copy(tinystyle(), &file).unwrap();
    let src = h.join("src.png");
    ok(tiny_generate(h, "a tinystyle apple", 42, &src)
        .arg("--embedding")
        .arg(&file));
    (file, src)
}

/// An embedding of two other vectors (all ones, tiny-sd's width) at `path`.
fn write_other_vectors(path: &Path) {
    let t = candle_core::Tensor::ones((2, 32), candle_core::DType::F32, &candle_core::Device::Cpu)
        .unwrap();
    let map = std::collections::HashMap::from([("emb_params".to_string(), t)]);
    candle_core::safetensors::save(&map, path).unwrap();
}

#[test]
fn a_named_embedding_is_recorded_and_replays_identically() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (file, src) = made_with_a_copy(h);
    // Without the file the word is plain text: another image.
    let plain = h.join("plain.png");
    ok(&mut tiny_generate(h, "a tinystyle apple", 42, &plain));
    assert_ne!(pixels(&src).as_raw(), pixels(&plain).as_raw());

    let r = recipe_json(h, &src);
    let list = r["model"]["embeddings"]
        .as_array()
        .expect("an embeddings list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "tinystyle");
    assert_eq!(list[0]["sha256"], sha256(&file));
    assert!(recipe_json(h, &plain)["model"].get("embeddings").is_none());
    let shown = stdout(&ok(seedling(h).arg("inspect").arg(&src)));
    assert!(
        shown.contains(&format!(
            "embedding:       tinystyle = {} sha256 {}",
            file.display(),
            sha256(&file)
        )),
        "{shown}"
    );
    let params = seedling::metadata::read_png(&src)
        .unwrap()
        .parameters
        .unwrap();
    let hash = &sha256(&file)[..12];
    assert!(
        params.contains(&format!("TI hashes: \"tinystyle: {hash}\"")),
        "{params}"
    );

    let o = ok(seedling(h).args(["replay", "--verify"]).arg(&src));
    assert_eq!(stdout(&o).trim(), "identical", "{}", stderr(&o));

    // A prompt that does not name it records none and is the plain image.
    let unnamed = h.join("unnamed.png");
    let other_name = h.join("other-name.safetensors");
    std::fs::copy(tinystyle(), &other_name).unwrap();
    ok(tiny_generate(h, "a tinystyle apple", 42, &unnamed)
        .arg("--embedding")
        .arg(&other_name));
    assert_eq!(pixels(&unnamed).as_raw(), pixels(&plain).as_raw());
}

#[test]
fn comfyui_spelling_calls_the_same_embedding() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (a, b) = (h.join("a.png"), h.join("b.png"));
    ok(tiny_generate(h, "a tinystyle apple", 7, &a)
        .arg("--embedding")
        .arg(tinystyle()));
    ok(tiny_generate(h, "a embedding:tinystyle apple", 7, &b)
        .arg("--embedding")
        .arg(tinystyle()));
    assert_eq!(pixels(&a).as_raw(), pixels(&b).as_raw());
}

#[test]
fn replay_refuses_a_missing_or_changed_embedding() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (file, src) = made_with_a_copy(h);
    let sha = sha256(&file);
    std::fs::remove_file(&file).unwrap();
    let out = h.join("again.png");
    let e = fails(seedling(h).args(["replay", "-o"]).arg(&out).arg(&src));
    assert!(
        e.contains("the embedding tinystyle (")
            && e.contains(&sha)
            && e.contains("give it with --embedding"),
        "{e}"
    );
    assert!(!out.exists());
    // Other vectors under its name are refused by hash.
    write_other_vectors(&file);
    let e = fails(seedling(h).args(["replay", "-o"]).arg(&out).arg(&src));
    assert!(
        e.contains("is there but holds other vectors (its sha256 differs)") && e.contains(&sha),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn an_embedding_for_another_model_is_refused_naming_the_file() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = h.join("out.png");
    // tiny-sdxl has two text encoders; tinystyle has vectors for one.
    let e = fails(
        seedling(h)
            .args(["generate", "a tinystyle apple", "--model"])
            .arg(shared("fixtures/tiny-sdxl"))
            .args(["--steps", "2", "--embedding"])
            .arg(tinystyle())
            .arg("-o")
            .arg(&out),
    );
    assert!(
        e.contains("the embedding tinystyle (")
            && e.contains("tinystyle.safetensors) has vectors for one text encoder, but this SDXL model has two"),
        "{e}"
    );
    assert!(!out.exists());
    // A LoRA given as an embedding says what the file holds.
    let lora = h.join("style.safetensors");
    std::fs::copy(
        shared("fixtures/wild/loras/tiny-sd1-lora.safetensors"),
        &lora,
    )
    .unwrap();
    let e = fails(
        tiny_generate(h, "a style apple", 1, &out)
            .arg("--embedding")
            .arg(&lora),
    );
    assert!(e.contains("not a textual-inversion embedding"), "{e}");
    assert!(!out.exists());
    let e = fails(
        tiny_generate(h, "a style apple", 1, &out)
            .arg("--embedding")
            .arg(h.join("nowhere.safetensors")),
    );
    assert!(
        e.contains("no embedding file ") && e.contains("nowhere.safetensors; check --embedding"),
        "{e}"
    );
}

/// A1111's way: a file in the models folder's embeddings/ is called by its name, and a replay
/// finds it by hash after it was renamed.
#[test]
fn models_folder_embeddings_are_named_and_found_again_by_hash() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let models = h.join("models");
    std::fs::create_dir_all(models.join("embeddings")).unwrap();
    std::fs::create_dir_all(models.join("Stable-diffusion")).unwrap();
    std::fs::copy(tinystyle(), models.join("embeddings/tinystyle.safetensors")).unwrap();
    let src = h.join("src.png");
    ok(tiny_generate(h, "a tinystyle apple", 42, &src).env("SEEDLING_MODELS_DIR", &models));
    let by_file = h.join("by-file.png");
    ok(tiny_generate(h, "a tinystyle apple", 42, &by_file)
        .arg("--embedding")
        .arg(tinystyle()));
    assert_eq!(pixels(&src).as_raw(), pixels(&by_file).as_raw());
    std::fs::rename(
        models.join("embeddings/tinystyle.safetensors"),
        models.join("embeddings/renamed.safetensors"),
    )
    .unwrap();
    let o = ok(seedling(h)
        .env("SEEDLING_MODELS_DIR", &models)
        .args(["replay", "--verify"])
        .arg(&src));
    assert_eq!(stdout(&o).trim(), "identical", "{}", stderr(&o));
    assert!(
        stderr(&o).contains("note: the embedding tinystyle (")
            && stderr(&o).contains("renamed.safetensors, which has its sha256"),
        "{}",
        stderr(&o)
    );

    // Only other vectors under its name: used, with a warning that the image will differ.
    std::fs::remove_file(models.join("embeddings/renamed.safetensors")).unwrap();
    write_other_vectors(&models.join("embeddings/tinystyle.safetensors"));
    let again = h.join("again.png");
    let o = ok(seedling(h)
        .env("SEEDLING_MODELS_DIR", &models)
        .args(["replay", "-o"])
        .arg(&again)
        .arg(&src));
    assert!(
        stderr(&o).contains("found by name only: its vectors differ, so the image will too"),
        "{}",
        stderr(&o)
    );
    assert_ne!(pixels(&again).as_raw(), pixels(&src).as_raw());
}

/// SDXL embeddings carry a set of vectors per text encoder (`clip_l`, `clip_g`); both are used
/// (swapping them makes another image) and the image replays.
#[test]
fn sdxl_embeddings_feed_both_text_encoders() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let cpu = candle_core::Device::Cpu;
    let l = candle_core::Tensor::randn(0f32, 1.0, (2, 32), &cpu).unwrap();
    let g = candle_core::Tensor::randn(0f32, 1.0, (2, 32), &cpu).unwrap();
    let save = |name: &str, l: &candle_core::Tensor, g: &candle_core::Tensor| {
        let path = h.join(name).join("xlstyle.safetensors");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let map = std::collections::HashMap::from([
            ("clip_l".to_string(), l.clone()),
            ("clip_g".to_string(), g.clone()),
        ]);
        candle_core::safetensors::save(&map, &path).unwrap();
        path
    };
    let (file, swapped) = (save("a", &l, &g), save("b", &g, &l));
    let xl = |out: &Path, embedding: Option<&Path>| {
        let mut cmd = seedling(h);
        cmd.args(["generate", "a xlstyle apple", "--model"])
            .arg(shared("fixtures/tiny-sdxl"))
            .args([
                "--steps", "3", "--width", "64", "--height", "64", "--seed", "3",
            ])
            .arg("-o")
            .arg(out);
        if let Some(e) = embedding {
            cmd.arg("--embedding").arg(e);
        }
        ok(&mut cmd);
        pixels(out).into_raw()
    };
    let with = xl(&h.join("with.png"), Some(&file));
    assert_ne!(with, xl(&h.join("plain.png"), None));
    assert_ne!(with, xl(&h.join("swapped.png"), Some(&swapped)));
    let o = ok(seedling(h)
        .args(["replay", "--verify"])
        .arg(h.join("with.png")));
    assert_eq!(stdout(&o).trim(), "identical", "{}", stderr(&o));
}

/// An A1111 image's `TI hashes` name its embeddings by 12 hex digits of their sha256: a replay
/// finds the file with that hash under any name, else one with the word's name (with a
/// warning), else stops naming the word and the hash.
#[test]
fn a1111_ti_hashes_are_found_by_hash_then_by_name() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let models = h.join("models");
    std::fs::create_dir_all(models.join("embeddings")).unwrap();
    std::fs::create_dir_all(models.join("Stable-diffusion")).unwrap();
    let renamed = models.join("embeddings/renamed.safetensors");
    std::fs::copy(tinystyle(), &renamed).unwrap();
    let hash = &sha256(&tinystyle())[..12];
    let text = format!(
        "a tinystyle apple\nSteps: 3, Sampler: Euler, CFG scale: 5, Seed: 42, Size: 64x64, \
         TI hashes: \"tinystyle: {hash}\", Version: v1.10.1"
    );
    crate::foreign::write_png(h, "a1111.png", &[("tEXt", "parameters", &text)]);
    let replay = |out: &Path| {
        let mut cmd = seedling(h);
        cmd.env("SEEDLING_MODELS_DIR", &models)
            .args(["replay", "a1111.png", "--model", &tiny_sd(), "-o"])
            .arg(out);
        cmd
    };
    let out = h.join("by-hash.png");
    let err = stderr(&ok(&mut replay(&out)));
    assert!(
        err.contains(&format!(
            "note: the image's embedding tinystyle (hash {hash}) is "
        )) && err.contains("renamed.safetensors"),
        "{err}"
    );
    let r = recipe_json(h, &out);
    assert_eq!(r["model"]["embeddings"][0]["name"], "tinystyle");
    assert_eq!(r["model"]["embeddings"][0]["sha256"], sha256(&tinystyle()));
    let o = ok(seedling(h).args(["replay", "--verify"]).arg(&out));
    assert_eq!(stdout(&o).trim(), "identical", "{}", stderr(&o));

    // Other vectors under the word's name: used, with a warning.
    std::fs::remove_file(&renamed).unwrap();
    write_other_vectors(&models.join("embeddings/tinystyle.safetensors"));
    let err = stderr(&ok(&mut replay(&h.join("by-name.png"))));
    assert!(
        err.contains(&format!(
            "warning: the image's embedding tinystyle: no file in the models folders has its \
             hash {hash}; using "
        )),
        "{err}"
    );

    // None: stopped before any work.
    std::fs::remove_file(models.join("embeddings/tinystyle.safetensors")).unwrap();
    let missing = h.join("missing.png");
    let e = fails(&mut replay(&missing));
    assert!(
        e.contains(&format!(
            "the image was made with the embedding tinystyle (hash {hash}), which is not in the \
             models folders' embeddings"
        )) && e.contains("give it with --embedding"),
        "{e}"
    );
    assert!(!missing.exists());
}

/// The check: an image made with a LoRA and an embedding of a models folder replays
/// identically after both files were renamed there, found by hash.
#[test]
fn a_lora_and_an_embedding_are_found_by_hash_after_a_rename() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let models = h.join("models");
    for dir in ["Stable-diffusion", "Lora", "embeddings"] {
        std::fs::create_dir_all(models.join(dir)).unwrap();
    }
    std::fs::copy(
        shared("fixtures/wild/loras/tiny-sd1-lora.safetensors"),
        models.join("Lora/style.safetensors"),
    )
    .unwrap();
    std::fs::copy(tinystyle(), models.join("embeddings/tinystyle.safetensors")).unwrap();
    let src = h.join("src.png");
    ok(
        tiny_generate(h, "a tinystyle apple <lora:style:0.8>", 42, &src)
            .arg("--models-dir")
            .arg(&models),
    );
    let r = recipe_json(h, &src);
    assert_eq!(r["prompt"], "a tinystyle apple ");
    assert_eq!(r["model"]["loras"][0]["unet"], 0.8);
    assert_eq!(r["model"]["embeddings"][0]["name"], "tinystyle");
    for (from, to) in [
        ("Lora/style.safetensors", "Lora/renamed-lora.safetensors"),
        (
            "embeddings/tinystyle.safetensors",
            "embeddings/renamed.safetensors",
        ),
    ] {
        std::fs::rename(models.join(from), models.join(to)).unwrap();
    }
    let o = ok(seedling(h)
        .args(["replay", "--verify", "--models-dir"])
        .arg(&models)
        .arg(&src));
    assert_eq!(stdout(&o).trim(), "identical", "{}", stderr(&o));
}
