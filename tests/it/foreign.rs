//! Images made by other tools: `inspect` and `replay` on PNGs carrying AUTOMATIC1111,
//! stable-diffusion.cpp, ComfyUI and InvokeAI metadata (built here in each tool's documented
//! layout), and a fuzz run of malformed metadata that must map or fail clearly, never panic.

use crate::common::*;
use seedling::metadata::foreign::{self, ForeignTool};
use seedling::metadata::{self, AnyRecipe};
use seedling::models::lookup;
use std::path::Path;

/// A 64x64 RGB PNG with a gradient (not what any model makes) and the given text chunks:
/// (chunk type, keyword, text).
fn png_with(chunks: &[(&str, &str, &str)]) -> Vec<u8> {
    let pixels: Vec<u8> = (0..64 * 64)
        .flat_map(|i: u32| [(i % 64 * 4) as u8, (i / 64 * 4) as u8, 128])
        .collect();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 64, 64);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    for (kind, keyword, text) in chunks {
        let (k, t) = (keyword.to_string(), text.to_string());
        match *kind {
            "tEXt" => enc.add_text_chunk(k, t),
            "zTXt" => enc.add_ztxt_chunk(k, t),
            _ => enc.add_itxt_chunk(k, t),
        }
        .unwrap();
    }
    let mut w = enc.write_header().unwrap();
    w.write_image_data(&pixels).unwrap();
    w.finish().unwrap();
    out
}

pub(crate) fn write_png(dir: &Path, name: &str, chunks: &[(&str, &str, &str)]) {
    std::fs::write(dir.join(name), png_with(chunks)).unwrap();
}

/// A1111 1.10 infotext (modules/processing.py `create_infotext`) with settings tiny-sd can run.
const A1111_TINY: &str = "a red apple on a table\nNegative prompt: blurry\nSteps: 3, \
    Sampler: Euler a, Schedule type: Automatic, CFG scale: 5, Seed: 4242, Size: 64x64, \
    Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, RNG: CPU, Clip skip: 2, Version: v1.10.1";

/// The same, made with a checkpoint seedling cannot know.
const A1111_UNKNOWN_MODEL: &str = "a red apple on a table\nSteps: 3, Sampler: Euler a, \
    CFG scale: 5, Seed: 4242, Size: 64x64, Model hash: 879db523c3, Model: dreamshaper_8, \
    RNG: CPU, Version: v1.10.1";

/// ComfyUI's default workflow in API format, as SaveImage writes it to the `prompt` chunk.
const COMFY_DEFAULT: &str = r#"{"3": {"inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8,
 "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "model": ["4", 0],
 "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}, "class_type": "KSampler"},
 "4": {"inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}, "class_type": "CheckpointLoaderSimple"},
 "5": {"inputs": {"width": 512, "height": 512, "batch_size": 1}, "class_type": "EmptyLatentImage"},
 "6": {"inputs": {"text": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,",
 "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
 "7": {"inputs": {"text": "text, watermark", "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
 "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode"},
 "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage"}}"#;

/// InvokeAI 5.x `invokeai_metadata` (core_metadata node fields).
const INVOKE: &str = r#"{"generation_mode": "txt2img", "positive_prompt": "a red fox in the snow",
 "negative_prompt": "", "width": 512, "height": 768, "seed": 3043525093, "rand_device": "cpu",
 "cfg_scale": 7.5, "cfg_rescale_multiplier": 0, "steps": 30, "scheduler": "euler",
 "clip_skip": 0, "seamless_x": false, "seamless_y": false,
 "model": {"key": "7a1b2c3d", "hash": "blake3:44c1c5b2ee0a", "name": "stable-diffusion-v1-5",
 "base": "sd-1", "type": "main"}, "loras": [], "app_version": "5.0.0"}"#;

/// stable-diffusion.cpp's settings line (examples/common/common.cpp `get_image_params`).
const SDCPP: &str = "a cat in a hat\nSteps: 20, CFG scale: 7.000000, Guidance: 3.500000, \
    Eta: 0.000000, Seed: 42, Size: 512x512, Model: v1-5-pruned-emaonly.safetensors, RNG: cuda, \
    Sampler: euler, Version: stable-diffusion.cpp";

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

#[test]
fn inspect_a1111_png() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    write_png(h, "a1111.png", &[("tEXt", "parameters", A1111_TINY)]);
    let out = stdout(&ok(seedling(h).args(["inspect", "a1111.png"])));
    assert_eq!(
        lines(&out),
        vec![
            "made by:         AUTOMATIC1111 (parameters text)",
            "prompt:          a red apple on a table",
            "negative prompt: blurry",
            "model:           'v1-5-pruned-emaonly' (hash 6ce0161689) -> \
             stable-diffusion-v1-5/stable-diffusion-v1-5 @ main (preset sd15, by model hash \
             6ce0161689)",
            "seed:            4242 (rng torch-cpu)",
            "size:            64x64",
            "sampler:         euler_a (default schedule), 3 steps, cfg 5, eta 0",
            "dtype:           f32",
            "not mapped:      Schedule type: Automatic (A1111's k-diffusion samplers space the \
             steps evenly from timestep 999 to 0; seedling follows the model's scheduler config \
             (for SD 1.5 'leading'), so the noise levels differ slightly)",
            "not mapped:      Clip skip: 2 (not used by seedling)",
            "not mapped:      dtype: absent (AUTOMATIC1111 does not record it; used f32)",
        ]
    );

    let json: serde_json::Value = serde_json::from_str(&stdout(&ok(seedling(h).args([
        "inspect",
        "a1111.png",
        "--json",
    ]))))
    .unwrap();
    assert_eq!(json["source_tool"], "AUTOMATIC1111");
    assert_eq!(json["source_format"], "AUTOMATIC1111 (parameters text)");
    assert_eq!(json["recipe"]["seed"], 4242);
    assert_eq!(json["recipe"]["rng"], "torch-cpu");
    assert_eq!(json["recipe"]["model"]["preset"], "sd15");
    assert_eq!(json["model"]["hash"], "6ce0161689");
    let unmapped = json["unmapped"].as_array().unwrap();
    assert_eq!(unmapped.len(), 3);
    assert_eq!(unmapped[1]["field"], "Clip skip");
    assert_eq!(unmapped[1]["value"], "2");
}

#[test]
fn inspect_a1111_1_10_real_world_and_itxt() {
    // The typical A1111 1.10 line: DPM++ 2M with the Karras schedule, on the NV generator.
    let text = "a lighthouse at dawn\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, \
                CFG scale: 7, Seed: 1234, Size: 512x768, Model hash: 6ce0161689, \
                Model: v1-5-pruned-emaonly, RNG: NV, Version: v1.10.1";
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    write_png(h, "nv.png", &[("iTXt", "parameters", text)]);
    let out = stdout(&ok(seedling(h).args(["inspect", "nv.png"])));
    let l = lines(&out);
    assert_eq!(l[0], "made by:         AUTOMATIC1111 (parameters text)");
    assert_eq!(l[1], "prompt:          a lighthouse at dawn");
    assert_eq!(l[4], "seed:            1234 (rng philox)");
    assert_eq!(l[5], "size:            512x768");
    assert_eq!(
        l[6],
        "sampler:         dpmpp_2m (karras schedule), 20 steps, cfg 7, eta 0"
    );
    assert!(!out.contains("not mapped:      Sampler"), "{out}");
    assert!(!out.contains("not mapped:      RNG"), "{out}");
    assert!(
        out.contains("not mapped:      negative prompt: absent (used '')"),
        "{out}"
    );
}

#[test]
fn inspect_comfyui_png() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // ComfyUI also writes its UI-format `workflow`; seedling reads the API-format `prompt`.
    write_png(
        h,
        "comfy.png",
        &[
            ("tEXt", "prompt", COMFY_DEFAULT),
            ("tEXt", "workflow", "{\"nodes\": []}"),
        ],
    );
    let out = stdout(&ok(seedling(h).args(["inspect", "comfy.png"])));
    assert_eq!(
        lines(&out),
        vec![
            "made by:         ComfyUI (prompt graph)",
            "prompt:          beautiful scenery nature glass bottle landscape, , purple galaxy bottle,",
            "negative prompt: text, watermark",
            "model:           'v1-5-pruned-emaonly.safetensors' (no hash recorded), not \
             identified by its weights; its name matches sd15 (preset sd15, by checkpoint name \
             only), which is a guess: replay needs --model (--model sd15 if it is that model)",
            "seed:            156680208700286 (rng torch-cpu)",
            "size:            512x512",
            "sampler:         euler (default schedule), 20 steps, cfg 8, eta 0",
            "dtype:           f32",
            "not mapped:      scheduler: normal (ComfyUI spaces these noise levels its own way; \
             seedling follows the model's scheduler config, so the steps differ slightly)",
            "not mapped:      dtype: absent (ComfyUI does not record it; used f32)",
            "not mapped:      model: 'v1-5-pruned-emaonly.safetensors' (no hash recorded) (not \
             identified by its weights; its name matches sd15 (preset sd15, by checkpoint name \
             only), which is a guess: replay needs --model (--model sd15 if it is that model))",
        ]
    );
    // A name is not an identification: replay asks for --model and names the guess.
    let err = fails(seedling(h).args(["replay", "comfy.png"]));
    assert!(
        err.contains(
            "comfy.png was made by ComfyUI with the model 'v1-5-pruned-emaonly.safetensors' (no \
             hash recorded), which seedling cannot identify by its weights; its name matches \
             sd15 (preset sd15, by checkpoint name only), but a name is only a guess: pass \
             --model sd15 if it is that model"
        ),
        "{err}"
    );
    assert!(!h.join("outputs").exists());
}

#[test]
fn inspect_invokeai_and_sdcpp_pngs() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    write_png(h, "invoke.png", &[("iTXt", "invokeai_metadata", INVOKE)]);
    let out = stdout(&ok(seedling(h).args(["inspect", "invoke.png"])));
    let l = lines(&out);
    assert_eq!(l[0], "made by:         InvokeAI (invokeai_metadata)");
    assert_eq!(l[1], "prompt:          a red fox in the snow");
    assert!(
        l[3].contains("its name matches sd15 (preset sd15, by name only), which is a guess"),
        "{out}"
    );
    assert_eq!(l[4], "seed:            3043525093 (rng torch-cpu)");
    assert_eq!(l[5], "size:            512x768");
    assert_eq!(
        l[6],
        "sampler:         euler (default schedule), 30 steps, cfg 7.5, eta 0"
    );
    assert!(
        out.contains("not mapped:      noise dtype: not recorded"),
        "{out}"
    );

    write_png(h, "sdcpp.png", &[("tEXt", "parameters", SDCPP)]);
    let out = stdout(&ok(seedling(h).args(["inspect", "sdcpp.png"])));
    let l = lines(&out);
    assert_eq!(
        l[0],
        "made by:         stable-diffusion.cpp (parameters text)"
    );
    assert_eq!(
        l[6],
        "sampler:         euler (default schedule), 20 steps, cfg 7, eta 0"
    );
    assert!(
        out.contains("not mapped:      Guidance: 3.500000 (not used by seedling)"),
        "{out}"
    );
}

#[test]
fn inspect_fooocus_json_parameters() {
    // Fooocus writes its recipe into `parameters` as one line of JSON: read as Fooocus's, not
    // as an A1111 settings line (which gave an empty prompt and fields cut out of the JSON).
    let json = r#"{"base_model": "juggernautXL_v8Rundiffusion", "guidance_scale": 4, "metadata_scheme": "fooocus", "negative_prompt": "", "prompt": "a cat", "resolution": "(1152, 896)", "sampler": "dpmpp_2m", "scheduler": "karras", "seed": "1234567", "sharpness": 2, "steps": 30, "version": "Fooocus v2.5.5"}"#;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    write_png(h, "fooocus.png", &[("tEXt", "parameters", json)]);
    let out = stdout(&ok(seedling(h).args(["inspect", "fooocus.png"])));
    let l = lines(&out);
    assert_eq!(l[0], "made by:         Fooocus (parameters JSON)");
    assert_eq!(l[1], "prompt:          a cat");
    assert_eq!(l[4], "seed:            1234567 (rng torch-cpu)");
    assert_eq!(l[5], "size:            1152x896");
    assert_eq!(
        l[6],
        "sampler:         dpmpp_2m (karras schedule), 30 steps, cfg 4, eta 0"
    );
    assert!(
        out.contains("not mapped:      sharpness: 2 (Fooocus sharpens"),
        "{out}"
    );
}

#[test]
fn replay_a1111_png_on_tiny_sd_records_the_foreign_parent() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    write_png(h, "a1111.png", &[("tEXt", "parameters", A1111_TINY)]);
    let out = h.join("replayed.png");
    let o = ok(seedling(h)
        .args(["replay", "a1111.png", "--model", &tiny_sd(), "-o"])
        .arg(&out));
    let err = stderr(&o);
    // The unmapped list comes first, as warnings.
    assert!(err.contains("a1111.png was made by AUTOMATIC1111 (parameters text); 3 field(s)"));
    assert!(
        err.contains("warning: Clip skip: 2 (not used by seedling)"),
        "{err}"
    );
    let warn_at = err.find("warning: Clip skip").unwrap();
    assert!(warn_at < err.find("loading").unwrap(), "{err}");

    let (meta, _) = metadata::read_recipe(&out).unwrap();
    let r = &meta.recipe;
    assert_eq!(r.prompt, "a red apple on a table");
    assert_eq!(r.negative_prompt, "blurry");
    assert_eq!((r.seed, r.steps, r.cfg), (4242, 3, 5.0));
    assert_eq!((r.width, r.height), (64, 64));
    assert_eq!(r.rng.name(), "torch-cpu");
    assert_eq!(r.sampler.name(), "euler_a");
    let parent = meta.provenance.parent.as_ref().unwrap();
    assert_eq!(
        parent.made_by.as_deref(),
        Some("AUTOMATIC1111 (parameters text)")
    );
    assert!(parent
        .unmapped
        .contains(&"Clip skip: 2 (not used by seedling)".to_string()));
    assert_eq!(parent.overrides, vec![format!("model={}", tiny_sd())]);
    let source = pixels(&h.join("a1111.png"));
    assert_eq!(
        parent.pixels_sha256,
        seedling::provenance::sha256_hex(source.as_raw())
    );

    // The replay is a seedling image: inspect shows where it came from, and it replays exactly.
    let shown = stdout(&ok(seedling(h).args(["inspect"]).arg(&out)));
    assert!(shown.contains("replayed from:   an image made by AUTOMATIC1111 (parameters text)"));
    assert!(shown.contains("parent unmapped: Clip skip: 2"), "{shown}");
    let o = ok(seedling(h).args(["replay", "--verify"]).arg(&out));
    assert_eq!(stdout(&o).trim(), "identical");
}

#[test]
fn replay_verify_of_a_foreign_png_reports_without_failing() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    write_png(h, "a1111.png", &[("tEXt", "parameters", A1111_TINY)]);
    let o = ok(seedling(h).args(["replay", "a1111.png", "--verify", "--model", &tiny_sd()]));
    let said = stdout(&o);
    assert!(said.starts_with("max pixel difference "), "{said}");
    assert!(said.contains("not expected to match"), "{said}");
    // --verify alone writes nothing.
    assert!(!h.join("outputs").exists());
}

#[test]
fn replay_without_a_resolvable_model_says_to_pass_model() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    write_png(
        h,
        "dream.png",
        &[("tEXt", "parameters", A1111_UNKNOWN_MODEL)],
    );
    let err = fails(seedling(h).args(["replay", "dream.png"]));
    assert!(err.contains("dream.png was made by AUTOMATIC1111"), "{err}");
    assert!(err.contains("'dreamshaper_8' (hash 879db523c3)"), "{err}");
    assert!(err.contains("pass --model"), "{err}");
    assert!(!h.join("outputs").exists());
}

#[test]
fn unusable_foreign_metadata_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    write_png(
        h,
        "nosampler.png",
        &[(
            "tEXt",
            "prompt",
            r#"{"1": {"class_type": "LoadImage", "inputs": {}}}"#,
        )],
    );
    let err = fails(seedling(h).args(["inspect", "nosampler.png"]));
    assert!(
        err.contains("nosampler.png carries a ComfyUI prompt graph"),
        "{err}"
    );
    assert!(err.contains("no KSampler"), "{err}");
    write_png(
        h,
        "caption.png",
        &[("tEXt", "parameters", "just a caption")],
    );
    let err = fails(seedling(h).args(["replay", "caption.png"]));
    assert!(err.contains("no settings line"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Hostile and damaged files (issue 22).

/// The recipe and provenance seedling could have written for `prompt` and `pixels` (made up;
/// nothing here renders it).
fn seedling_meta(prompt: &str, pixels: &image::RgbImage) -> metadata::ImageMeta {
    use seedling::provenance::{sha256_hex, Provenance, CANDLE_VERSION, TOOL};
    metadata::ImageMeta {
        recipe: seedling::Recipe {
            prompt: prompt.into(),
            ..seedling::Recipe::default()
        },
        provenance: Provenance {
            tool: TOOL.into(),
            candle: CANDLE_VERSION.into(),
            device: "cpu".into(),
            noise_sha256: sha256_hex(b"noise"),
            pixels_sha256: sha256_hex(pixels.as_raw()),
            parent: None,
        },
    }
}

/// A 64x64 PNG seedling could have written for `prompt`.
fn seedling_png(prompt: &str) -> Vec<u8> {
    let pixels = image::RgbImage::from_pixel(64, 64, image::Rgb([200, 100, 50]));
    metadata::encode_png(&pixels, &seedling_meta(prompt, &pixels)).unwrap()
}

#[test]
fn inspect_escapes_terminal_controls_from_metadata() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Retitle the window, erase the line and draw a fake prompt; a bidi override; a C1 CSI; and
    // a second line that would pass for a field of its own.
    let prompt = "apple\u{1b}]0;owned\u{7} \u{1b}[2K\rfake$ \u{202e}gnp\nseed:            1";
    let text = format!(
        "{prompt}\nNegative prompt: blurry\u{9b}31m\nSteps: 3, Sampler: Euler a, CFG scale: 5, \
         Seed: 4242, Size: 64x64"
    );
    write_png(h, "ctl.png", &[("iTXt", "parameters", &text)]);
    let out = stdout(&ok(seedling(h).args(["inspect", "ctl.png"])));
    let l = lines(&out);
    assert_eq!(
        l[1],
        r"prompt:          apple\u{1b}]0;owned\u{7} \u{1b}[2K\rfake$ \u{202e}gnp"
    );
    assert_eq!(l[2], "                 seed:            1");
    assert_eq!(l[3], r"negative prompt: blurry\u{9b}31m");
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
    // --json is exact: JSON escapes the controls itself.
    let json = stdout(&ok(seedling(h).args(["inspect", "--json", "ctl.png"])));
    assert!(
        json.contains(r"apple\u001b]0;owned\u0007 \u001b[2K\rfake$ "),
        "{json}"
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["recipe"]["prompt"], prompt);
    assert_eq!(v["recipe"]["negative_prompt"], "blurry\u{9b}31m");

    // A seedling image: the same.
    std::fs::write(h.join("own.png"), seedling_png("red\u{1b}[8mhidden")).unwrap();
    let out = stdout(&ok(seedling(h).args(["inspect", "own.png"])));
    assert_eq!(lines(&out)[0], r"prompt:          red\u{1b}[8mhidden");

    // A contact sheet: its axis and cell file names come from the file too.
    let pixels = image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]));
    let sheet = metadata::SheetMeta {
        cells: vec![metadata::SheetEntry {
            file: "a\u{1b}[1Ab.png".into(),
            col: 0,
            row: 0,
            meta: seedling_meta("x", &pixels),
        }],
        x_axis: Some("seed\r\u{1b}[2K".into()),
        y_axis: None,
    };
    let bytes = metadata::encode_sheet_png(&pixels, &sheet).unwrap();
    std::fs::write(h.join("sheet.png"), bytes).unwrap();
    let out = stdout(&ok(seedling(h).args(["inspect", "sheet.png"])));
    assert_eq!(
        lines(&out),
        vec![
            "contact sheet of 1 cells",
            r"x axis: seed\r\u{1b}[2K",
            r"col 0 row 0: a\u{1b}[1Ab.png (seed 0, euler_a 20 steps, cfg 7.5)",
        ]
    );
}

/// `replay` prints what it cannot map and the model the file names, both from the file: the
/// same escaping as `inspect` (they went to the terminal raw).
#[test]
fn replay_escapes_terminal_controls_from_metadata() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let text = "apple\nSteps: 3, Sampler: Euler a, CFG scale: 5, Seed: 4242, Size: 64x64, \
                Hires upscaler: x\u{1b}]0;owned\u{7}, Model: m\u{1b}[2K\rfake";
    write_png(h, "ctl.png", &[("iTXt", "parameters", text)]);
    let err = fails(seedling(h).args(["replay", "ctl.png", "-o", "out.png"]));
    assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "{err:?}");
    assert!(
        err.contains(r"Hires upscaler: x\u{1b}]0;owned\u{7}"),
        "{err}"
    );
    assert!(err.contains(r"m\u{1b}[2K\rfake"), "{err}");
    assert!(!h.join("out.png").exists());
}

#[test]
fn a_damaged_seedling_chunk_is_an_error_not_another_tools_image() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let mut png = seedling_png("a lighthouse");
    // One byte of the prompt in the seedling chunk made invalid UTF-8, and the chunk's CRC fixed
    // to match: the image used to read as AUTOMATIC1111's (from its `parameters` text), and
    // `replay --verify` said "identical (made by AUTOMATIC1111)".
    let chunk_at = png
        .windows(13)
        .position(|w| w == b"iTXtseedling\0")
        .unwrap();
    let len = u32::from_be_bytes(png[chunk_at - 4..chunk_at].try_into().unwrap()) as usize;
    let data = chunk_at + 4..chunk_at + 4 + len;
    let at = data.start
        + png[data.clone()]
            .windows(10)
            .position(|w| w == b"lighthouse")
            .unwrap();
    png[at] = 0xFF;
    let crc = crc32fast::hash(&png[chunk_at..data.end]);
    png[data.end..data.end + 4].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(h.join("damaged.png"), &png).unwrap();
    let expected = "error: damaged.png has a damaged seedling chunk: its text is not valid UTF-8; \
                    the recipe cannot be recovered from this file — use an intact copy\n";
    assert_eq!(
        fails(seedling(h).args(["inspect", "damaged.png"])),
        expected
    );
    assert_eq!(
        fails(seedling(h).args(["replay", "--verify", "damaged.png"])),
        expected
    );
}

#[test]
fn a_sheet_with_damaged_metadata_says_so() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    write_png(
        h,
        "grid.png",
        &[
            ("tEXt", "parameters", A1111_TINY),
            ("iTXt", "seedling-sheet", "{\"cells\": [{\"file\": "),
        ],
    );
    let err = fails(seedling(h).args(["inspect", "grid.png"]));
    assert!(
        err.starts_with("error: grid.png has a damaged seedling-sheet chunk: it is not valid JSON"),
        "{err}"
    );
    assert!(!err.contains("use one of the cell PNGs"), "{err}");
}

#[test]
fn oversized_and_endless_inputs_are_refused_early() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // Five zTXt chunks of 16 MiB each when decompressed (the png crate's per-chunk limit was the
    // only one): 80 MiB of metadata.
    let bomb = {
        use png::text_metadata::{EncodableTextChunk, ZTXtChunk};
        let mut c = Vec::new();
        ZTXtChunk::new("Comment", "a".repeat(16 << 20))
            .encode(&mut c)
            .unwrap();
        c
    };
    let plain = png_with(&[("tEXt", "parameters", A1111_TINY)]);
    let (head, iend) = plain.split_at(plain.len() - 12);
    let mut bombs = head.to_vec();
    for _ in 0..5 {
        bombs.extend_from_slice(&bomb);
    }
    bombs.extend_from_slice(iend);
    std::fs::write(h.join("bombs.png"), &bombs).unwrap();
    assert_eq!(
        fails(seedling(h).args(["inspect", "bombs.png"])),
        "error: bombs.png has metadata larger than 64 MiB in its text chunks, more than seedling \
         reads from one PNG (a recipe is a few KiB); remove the extra text chunks (save a copy \
         without metadata) and give the prompt and settings on the command line\n"
    );
    // An endless file is refused after its first 8 bytes.
    if Path::new("/dev/zero").exists() {
        assert_eq!(
            fails(seedling(h).args(["inspect", "/dev/zero"])),
            "error: /dev/zero is not a PNG file; seedling reads recipes from PNG images it wrote\n"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Fuzz: malformed metadata of every kind maps to a recipe that passes validation, or fails with
// a clear error naming the file; never a panic.

/// splitmix64 (Steele et al. 2014): a deterministic stream for the cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const NASTY_VALUES: [&str; 16] = [
    "NaN",
    "inf",
    "-inf",
    "-5",
    "0",
    "99999999999999999999999",
    "1e400",
    "-512x-512",
    "0x0",
    "9999999x9999999",
    "7.5.1",
    "",
    "\"",
    "\"a, b: c\"",
    "x",
    "18446744073709551616",
];

const NASTY_JSON: [&str; 14] = [
    "null",
    "true",
    "-1",
    "0",
    "1e308",
    "-1e308",
    "18446744073709551615",
    "3.5",
    "\"\"",
    "\"karras\"",
    "[]",
    "{}",
    "[\"3\", 0]",
    "[[1,2],[3]]",
];

fn mutate_text(rng: &mut Rng, base: &str) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !chars.is_empty() => chars.truncate(rng.below(chars.len())),
            1 if !chars.is_empty() => {
                let at = rng.below(chars.len());
                let len = rng.below(chars.len() - at + 1);
                chars.drain(at..at + len);
            }
            2 => {
                let at = rng.below(chars.len() + 1);
                let c = *rng.pick(&[',', ':', '"', '\\', '\n', 'x', '7', '-', 'é', '\u{0}', ' ']);
                chars.insert(at, c);
            }
            _ => {
                // Replace one value after a ": " with a nasty one.
                let text: String = chars.iter().collect();
                let spots: Vec<usize> = text.match_indices(": ").map(|(i, _)| i + 2).collect();
                if let Some(&at) = spots.get(rng.below(spots.len())) {
                    let end = text[at..].find(',').map_or(text.len(), |e| at + e);
                    let new = format!("{}{}{}", &text[..at], rng.pick(&NASTY_VALUES), &text[end..]);
                    chars = new.chars().collect();
                }
            }
        }
    }
    chars.into_iter().collect()
}

/// Replaces random values of a JSON document with values of the wrong type or range, adds
/// links to random (or missing) nodes, and makes cycles.
fn mutate_json(rng: &mut Rng, value: &mut serde_json::Value, depth: usize) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if rng.below(6) == 0 {
                    let nasty = match rng.below(3) {
                        0 => {
                            let text: &&str = rng.pick(&NASTY_JSON);
                            serde_json::from_str(text).unwrap()
                        }
                        1 => serde_json::json!([rng.pick(&["3", "4", "5", "6", "99"]), 0]),
                        _ => Value::Null,
                    };
                    map.insert(k, nasty);
                } else if rng.below(10) == 0 {
                    map.remove(&k);
                } else if depth < 6 {
                    mutate_json(rng, map.get_mut(&k).unwrap(), depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                if depth < 6 {
                    mutate_json(rng, item, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn random_bytes_text(rng: &mut Rng) -> String {
    let n = rng.below(200);
    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check(case: usize, result: Option<seedling::Result<foreign::ForeignRecipe>>, what: &str) {
    match result {
        None => {}
        Some(Ok(f)) => {
            f.recipe
                .validate(8, 1000)
                .unwrap_or_else(|e| panic!("case {case} ({what}): mapped recipe invalid: {e}"));
            let _ = f.to_json();
            for u in &f.unmapped {
                assert!(!u.field.is_empty(), "case {case}: empty unmapped field");
            }
        }
        Some(Err(e)) => {
            let msg = e.to_string();
            assert!(
                msg.contains("fuzz.png"),
                "case {case}: error does not name the file: {msg}"
            );
        }
    }
}

#[test]
fn fuzzed_metadata_maps_or_fails_clearly() {
    let no_cache = tempfile::tempdir().unwrap();
    let resolve = |n: Option<&str>, h: Option<&str>| lookup::resolve_in(no_cache.path(), n, h);
    let texts = [A1111_TINY, A1111_UNKNOWN_MODEL, SDCPP];
    let jsons = [("prompt", COMFY_DEFAULT), ("invokeai_metadata", INVOKE)];
    let mut rng = Rng(0x5EED_1234);
    let start = std::time::Instant::now();
    let mut mapped = 0;
    for case in 0..3000 {
        let chunk: (String, String) = match rng.below(5) {
            0 | 1 => {
                let base = *rng.pick(&texts);
                ("parameters".into(), mutate_text(&mut rng, base))
            }
            2 | 3 => {
                let (key, doc) = *rng.pick(&jsons);
                let mut v: serde_json::Value = serde_json::from_str(doc).unwrap();
                mutate_json(&mut rng, &mut v, 0);
                let text = if rng.below(8) == 0 {
                    mutate_text(&mut rng, &v.to_string())
                } else {
                    v.to_string()
                };
                (key.into(), text)
            }
            _ => {
                let key = *rng.pick(&["parameters", "prompt", "invokeai_metadata"]);
                (key.into(), random_bytes_text(&mut rng))
            }
        };
        let what = format!(
            "{} = {:?}",
            chunk.0,
            chunk.1.chars().take(80).collect::<String>()
        );
        let result = metadata::read_foreign(&[chunk], "fuzz.png", &resolve);
        if matches!(result, Some(Ok(_))) {
            mapped += 1;
        }
        check(case, result, &what);
    }
    // A fuzz that never maps anything would test nothing.
    assert!(mapped > 500, "only {mapped} of 3000 cases mapped");
    assert!(
        start.elapsed().as_secs() < 10,
        "fuzzing took {:?}",
        start.elapsed()
    );
}

#[test]
fn fuzzed_png_bytes_map_or_fail_clearly() {
    let no_cache = tempfile::tempdir().unwrap();
    let resolve = |n: Option<&str>, h: Option<&str>| lookup::resolve_in(no_cache.path(), n, h);
    let mut rng = Rng(42);
    let good = png_with(&[("tEXt", "parameters", A1111_TINY)]);
    let comfy = png_with(&[("iTXt", "prompt", COMFY_DEFAULT)]);
    for case in 0..300 {
        let mut bytes = if rng.below(2) == 0 {
            good.clone()
        } else {
            comfy.clone()
        };
        match rng.below(4) {
            0 => bytes.truncate(rng.below(bytes.len())),
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(bytes.len());
                    bytes[at] = rng.next() as u8;
                }
            }
            2 => bytes = (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
            _ => {}
        }
        match metadata::decode_any(&bytes, "fuzz.png", &resolve) {
            Ok((AnyRecipe::Foreign(f), _)) => f
                .recipe
                .validate(8, 1000)
                .unwrap_or_else(|e| panic!("case {case}: mapped recipe invalid: {e}")),
            Ok((AnyRecipe::Seedling(_), _)) => panic!("case {case}: no seedling chunk was written"),
            Err(e) => assert!(e.to_string().contains("fuzz.png"), "case {case}: {e}"),
        }
    }
    // Non-UTF-8 bytes in an iTXt chunk: a clear error, not a panic.
    let mut raw = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut raw, 1, 1);
        enc.set_color(png::ColorType::Rgb);
        let mut w = enc.write_header().unwrap();
        w.write_chunk(png::chunk::iTXt, b"parameters\0\0\0\0\0\xff\xfe bad")
            .unwrap();
        w.write_image_data(&[1, 2, 3]).unwrap();
        w.finish().unwrap();
    }
    let e = metadata::decode_any(&raw, "fuzz.png", &resolve)
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("fuzz.png"), "{e}");
    // tEXt is Latin-1: any byte is a character, and the text maps or fails clearly.
    let latin1: String = (32u8..=255).map(char::from).collect();
    let bytes = png_with(&[(
        "tEXt",
        "parameters",
        &format!("{latin1}\nSteps: 3, Seed: 1, Size: 64x64"),
    )]);
    match metadata::decode_any(&bytes, "fuzz.png", &resolve) {
        Ok((AnyRecipe::Foreign(f), _)) => {
            assert_eq!(f.tool, ForeignTool::Automatic1111);
            f.recipe.validate(8, 1000).unwrap();
        }
        other => panic!("expected a mapped recipe: {:?}", other.map(|_| ())),
    }
}
