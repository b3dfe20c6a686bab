//! LoRAs as A1111 users have them: found by name in a models folder (`--lora NAME`,
//! `<lora:NAME:W>` prompt tags), found again by hash on replay after the file moved, and the
//! A1111 `parameters` text carrying the tags so A1111 applies them too.

use crate::common::*;
use std::path::{Path, PathBuf};

/// An A1111 install folder with the kohya test LoRA as `Lora/my-style.safetensors`; returns
/// the install folder.
fn webui(h: &Path) -> PathBuf {
    let root = h.join("webui");
    let lora = root.join("models/Lora/my-style.safetensors");
    std::fs::create_dir_all(lora.parent().unwrap()).unwrap();
    std::fs::create_dir_all(root.join("models/Stable-diffusion")).unwrap();
    std::fs::copy(
        shared("fixtures/wild/loras/tiny-sd1-lora.safetensors"),
        &lora,
    )
    .unwrap();
    root
}

#[test]
fn a_name_or_a_prompt_tag_is_the_file_at_the_same_strength() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let root = webui(h);
    let file = root.join("models/Lora/my-style.safetensors");
    let by_file = h.join("file.png");
    let mut arg = file.clone().into_os_string();
    arg.push(":0.8");
    ok(tiny_generate(h, "a red apple", 42, &by_file)
        .arg("--lora")
        .arg(&arg));
    let by_name = h.join("name.png");
    ok(tiny_generate(h, "a red apple", 42, &by_name)
        .args(["--lora", "my-style:0.8", "--models-dir"])
        .arg(&root));
    assert_eq!(pixels(&by_file).as_raw(), pixels(&by_name).as_raw());

    // The tag is taken out of the prompt (the text A1111 encodes) and applied as --lora is.
    let by_tag = h.join("tag.png");
    ok(
        tiny_generate(h, "<lora:my-style:0.8>a red apple", 42, &by_tag)
            .arg("--models-dir")
            .arg(&root),
    );
    assert_eq!(pixels(&by_file).as_raw(), pixels(&by_tag).as_raw());
    let r = recipe_json(h, &by_tag);
    assert_eq!(r["prompt"], "a red apple");
    assert_eq!(r["model"]["loras"][0]["unet"], 0.8);
    assert_eq!(
        r["model"]["loras"],
        recipe_json(h, &by_file)["model"]["loras"]
    );
    // A replay's --prompt override is read for tags too: the plain image with the tag in the
    // new prompt is the tagged image. The recorded prompt is never re-read.
    let plain = h.join("plain.png");
    ok(&mut tiny_generate(h, "a red apple", 42, &plain));
    let replayed = h.join("replayed.png");
    ok(seedling(h)
        .args(["replay", "--prompt", "<lora:my-style:0.8>a red apple", "-o"])
        .arg(&replayed)
        .arg("--models-dir")
        .arg(&root)
        .arg(&plain));
    assert_eq!(pixels(&by_tag).as_raw(), pixels(&replayed).as_raw());
    // SEEDLING_MODELS_DIR does as --models-dir.
    let by_env = h.join("env.png");
    ok(tiny_generate(h, "a red apple", 42, &by_env)
        .args(["--lora", "my-style.safetensors:0.8"])
        .env("SEEDLING_MODELS_DIR", &root));
    assert_eq!(pixels(&by_file).as_raw(), pixels(&by_env).as_raw());
    // The model's weight files were hashed once and kept in the hash cache, with the LoRA.
    let cache = std::fs::read_to_string(h.join("hash-cache.json")).unwrap();
    for file in [
        "unet/diffusion_pytorch_model.safetensors",
        "my-style.safetensors",
    ] {
        assert!(cache.contains(file), "{file}: {cache}");
    }
}

#[test]
fn names_not_found_or_found_twice_and_other_tags_are_refused_before_work() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let root = webui(h);
    let out = h.join("out.png");
    let folder = root.join("models/Lora");
    let e = fails(
        tiny_generate(h, "a red apple", 42, &out)
            .args(["--lora", "nothing:0.5", "--models-dir"])
            .arg(&root),
    );
    assert_eq!(
        e.trim(),
        format!(
            "error: no LoRA file nothing, nor a LoRA called nothing in {}; give the file's path \
             with --lora, or the models folder that holds it with --models-dir",
            folder.display()
        )
    );
    let e = fails(&mut tiny_generate(
        h,
        "<lora:my-style:1> a red apple",
        42,
        &out,
    ));
    assert_eq!(
        e.trim(),
        "error: no LoRA file my-style, and no models folder to find a LoRA of that name in; \
         give the file's path with --lora, or the models folder that holds it with --models-dir"
    );
    // Two files of one stem in subfolders: the name is ambiguous, the names below the folder
    // are not.
    for sub in ["people", "places"] {
        let other = folder.join(format!("{sub}/My-Style.safetensors"));
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        std::fs::copy(folder.join("my-style.safetensors"), &other).unwrap();
    }
    std::fs::remove_file(folder.join("my-style.safetensors")).unwrap();
    let e = fails(
        tiny_generate(h, "a red apple", 42, &out)
            .args(["--lora", "my-style", "--models-dir"])
            .arg(&root),
    );
    assert_eq!(
        e.trim(),
        format!(
            "error: the LoRA name my-style matches 2 files in the models folders: {}, {}; give \
             the one you mean by its path or by its name below its LoRA folder \
             (people/My-Style or places/My-Style) with --lora",
            folder.join("people/My-Style.safetensors").display(),
            folder.join("places/My-Style.safetensors").display()
        )
    );
    let e = fails(&mut tiny_generate(
        h,
        "a red apple <hypernet:anime:1>",
        42,
        &out,
    ));
    assert_eq!(
        e.trim(),
        "error: the prompt's <hypernet:anime:1> asks for a hypernetwork, which seedling does \
         not apply; take the tag out of the prompt"
    );
    let e = fails(seedling(h).args([
        "grid",
        "a red apple",
        "--model",
        &tiny_sd(),
        "--x",
        "prompt_sr=apple,<lora:my-style:1> pear",
    ]));
    assert_eq!(
        e.trim(),
        "error: axis prompt_sr: the value holds the tag <lora:my-style:1>, and an axis cannot \
         change the weights from cell to cell; apply the LoRA to the whole grid with --lora \
         (or a <lora:…> tag in the prompt) and leave it out of the axis"
    );
    assert!(!out.exists());
    assert!(!h.join("outputs").exists());
}

#[test]
fn replay_finds_a_moved_lora_by_hash_and_names_a_missing_one() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let root = webui(h);
    let src = h.join("src.png");
    ok(
        tiny_generate(h, "<lora:my-style:0.7> a red apple", 42, &src)
            .arg("--models-dir")
            .arg(&root),
    );
    let sha = recipe_json(h, &src)["model"]["loras"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    // Moved and renamed inside the models folder: found by its sha256, the same image.
    let old = root.join("models/Lora/my-style.safetensors");
    let moved = root.join("models/Lora/styles/renamed.safetensors");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&old, &moved).unwrap();
    let o = ok(seedling(h)
        .args(["replay", "--verify", "--models-dir"])
        .arg(&root)
        .arg(&src));
    assert_eq!(stdout(&o).trim(), "identical", "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "note: the LoRA {} is not there; using {}, which has its sha256",
            std::fs::canonicalize(h)
                .unwrap()
                .join("webui/models/Lora/my-style.safetensors")
                .display(),
            moved.display()
        )),
        "{}",
        stderr(&o)
    );
    // The hash cache holds it: a second replay reads it from there (the cache file names it).
    let cache = std::fs::read_to_string(h.join("hash-cache.json")).unwrap();
    assert!(cache.contains("renamed.safetensors"), "{cache}");

    // Gone from everywhere: refused before any work, naming the file and its AutoV2 hash.
    std::fs::remove_file(&moved).unwrap();
    let out = h.join("again.png");
    let e = fails(
        seedling(h)
            .args(["replay", "-o"])
            .arg(&out)
            .arg("--models-dir")
            .arg(&root)
            .arg(&src),
    );
    assert_eq!(
        e.trim(),
        format!(
            "error: the image was made with the LoRA {} (AutoV2 hash {}, sha256 {sha}), which is \
             not there, nor is it in {}; find the file with that hash and give it with --lora, \
             or the models folder that holds it with --models-dir",
            std::fs::canonicalize(h)
                .unwrap()
                .join("webui/models/Lora/my-style.safetensors")
                .display(),
            &sha[..10],
            root.join("models/Lora").display()
        )
    );
    assert!(!out.exists());
}

/// `src`'s pixels with only an A1111 `parameters` chunk holding `text`: the image as another
/// tool (or a site that dropped seedling's own chunk) passes it on.
fn a1111_copy(src: &Path, text: &str, dest: &Path) {
    let image = pixels(src);
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, image.width(), image.height());
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.add_text_chunk("parameters".into(), text.into())
        .unwrap();
    let mut w = enc.write_header().unwrap();
    w.write_image_data(image.as_raw()).unwrap();
    w.finish().unwrap();
    std::fs::write(dest, out).unwrap();
}

#[test]
fn the_a1111_text_carries_the_loras_and_replays_with_them() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let root = webui(h);
    let src = h.join("src.png");
    ok(tiny_generate(h, "a red apple", 42, &src)
        .args(["--lora", "my-style:0.8:0.6", "--models-dir"])
        .arg(&root));
    let text = seedling::metadata::read_png(&src)
        .unwrap()
        .parameters
        .unwrap();
    let hash = recipe_json(h, &src)["model"]["loras"][0]["a1111_hash"]
        .as_str()
        .unwrap()
        .to_string();
    // A1111 order: text encoder, then UNet; the hash under the tag's name.
    assert!(
        text.starts_with("a red apple <lora:my-style:0.6:0.8>\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Lora hashes: \"my-style: {hash}\"")),
        "{text}"
    );
    let copy = h.join("a1111.png");
    a1111_copy(&src, &text, &copy);

    // Renamed in the models folder: found by A1111's hash, the same pixels.
    let renamed = root.join("models/Lora/other-name.safetensors");
    std::fs::rename(root.join("models/Lora/my-style.safetensors"), &renamed).unwrap();
    let o = ok(seedling(h)
        .args(["replay", "--verify", "--model", &tiny_sd(), "--models-dir"])
        .arg(&root)
        .arg(&copy));
    assert_eq!(
        stdout(&o).trim(),
        "identical (made by AUTOMATIC1111)",
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(&format!(
            "note: the image's LoRA my-style (hash {hash}) is {}",
            renamed.display()
        )),
        "{}",
        stderr(&o)
    );
    // Without the models folder: refused before any work, naming the LoRA and its hash.
    let e = fails(
        seedling(h)
            .args(["replay", "--model", &tiny_sd(), "-o", "x.png"])
            .arg(&copy),
    );
    assert!(
        e.trim().ends_with(&format!(
            "error: the image was made with the LoRA my-style (hash {hash}), and no models \
             folder was given to look in; find the file by that name or hash (Civitai looks \
             LoRAs up by hash) and give it with --lora, or the models folder that holds it \
             with --models-dir"
        )),
        "{e}"
    );
    assert!(!h.join("x.png").exists());
}

/// An A1111 install with the tiny SD1 single file in its checkpoint folder: (root, file).
fn webui_with_checkpoint(h: &Path) -> (PathBuf, PathBuf) {
    let root = webui(h);
    let ckpt = root.join("models/Stable-diffusion/tiny-sd1.safetensors");
    std::fs::copy(
        shared("fixtures/wild/checkpoints/tiny-sd1.safetensors"),
        &ckpt,
    )
    .unwrap();
    (root, ckpt)
}

/// "a red apple", seed 7, 64×64, `steps` steps with `model` (tiny-sd's configs) into `out`.
fn generate_with(h: &Path, model: &Path, steps: u32, out: &Path) {
    ok(seedling(h)
        .args([
            "generate",
            "a red apple",
            "--seed",
            "7",
            "--width",
            "64",
            "--height",
            "64",
        ])
        .args([
            "--steps",
            &steps.to_string(),
            "--config",
            &tiny_sd(),
            "--model",
        ])
        .arg(model)
        .arg("-o")
        .arg(out));
}

#[test]
fn a_foreign_images_checkpoint_is_found_in_the_models_folder_by_hash() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (root, ckpt) = webui_with_checkpoint(h);
    let src = h.join("src.png");
    generate_with(h, &ckpt, 3, &src);
    let text = seedling::metadata::read_png(&src)
        .unwrap()
        .parameters
        .unwrap();
    assert!(
        text.contains("Model hash: 79e01fec06, Model: tiny-sd1.safetensors,"),
        "{text}"
    );
    // Renamed, and named otherwise in the text: found by A1111's hash (AutoV2, or the legacy
    // AutoV1 of older infotexts). The tiny file's architecture needs its folder's configs.
    let renamed = root.join("models/Stable-diffusion/sub/renamed.safetensors");
    std::fs::create_dir_all(renamed.parent().unwrap()).unwrap();
    std::fs::rename(&ckpt, &renamed).unwrap();
    for hash in ["79e01fec06", "6a243d3f"] {
        let copy = h.join(format!("a1111-{hash}.png"));
        let text = text
            .replace("Model hash: 79e01fec06", &format!("Model hash: {hash}"))
            .replace("Model: tiny-sd1.safetensors", "Model: something-else");
        a1111_copy(&src, &text, &copy);
        let o = ok(seedling(h)
            .args(["replay", "--verify", "--config", &tiny_sd(), "--models-dir"])
            .arg(&root)
            .arg(&copy));
        assert_eq!(
            stdout(&o).trim(),
            "identical (made by AUTOMATIC1111)",
            "{}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains(&format!(
                "using models folder file {}, by model hash {hash}",
                renamed.display()
            )),
            "{}",
            stderr(&o)
        );
        // inspect finds it the same way.
        let shown = stdout(&ok(seedling(h)
            .args(["inspect", "--json", "--models-dir"])
            .arg(&root)
            .arg(&copy)));
        let json: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(
            json["recipe"]["model"]["source"]["path"],
            renamed.display().to_string(),
            "{shown}"
        );
    }
    // By name only (another hash): used, with a warning.
    let copy = h.join("a1111-name.png");
    a1111_copy(
        &src,
        &text
            .replace("Model hash: 79e01fec06", "Model hash: 0123456789")
            .replace("Model: tiny-sd1.safetensors", "Model: renamed"),
        &copy,
    );
    let o = ok(seedling(h)
        .args(["replay", "--verify", "--config", &tiny_sd(), "--models-dir"])
        .arg(&root)
        .arg(&copy));
    assert!(
        stderr(&o).contains(&format!(
            "warning: the image names the model 'renamed' (hash 0123456789), which no file in \
             the models folders matches by hash; using {}, found by name only: its weights may \
             differ, and the image with them",
            renamed.display()
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_model_named_by_its_checkpoint_in_the_models_folder() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (root, ckpt) = webui_with_checkpoint(h);
    let by_path = h.join("path.png");
    generate_with(h, &ckpt, 2, &by_path);
    let by_name = h.join("name.png");
    let o = ok(seedling(h)
        .args(["generate", "a red apple", "--steps", "2", "--seed", "7"])
        .args(["--width", "64", "--height", "64", "--config", &tiny_sd()])
        .args(["--model", "tiny-sd1", "--models-dir"])
        .arg(&root)
        .arg("-o")
        .arg(&by_name));
    assert!(
        stderr(&o).contains(&format!(
            "note: --model tiny-sd1 is the checkpoint {}",
            ckpt.display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(pixels(&by_path).as_raw(), pixels(&by_name).as_raw());
    // batch's --model too, with its --models-dir.
    let jobs = h.join("jobs.toml");
    std::fs::write(
        &jobs,
        "[[job]]\nname = \"a\"\nprompt = \"a red apple\"\nseed = 7\nsteps = 2\nwidth = 64\n\
         height = 64\n",
    )
    .unwrap();
    ok(seedling(h)
        .arg("batch")
        .arg(&jobs)
        .args([
            "--config",
            &tiny_sd(),
            "--out-dir",
            "b",
            "--model",
            "tiny-sd1",
        ])
        .arg("--models-dir")
        .arg(&root));
    assert_eq!(
        pixels(&by_path).as_raw(),
        pixels(&h.join("b/jobs/a-7.png")).as_raw()
    );
}
