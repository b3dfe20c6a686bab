//! The parsers on real-world metadata, written as each tool writes it (the source of each
//! format is named above its example), and the mapping to a Recipe.

use super::a1111::read as parameters;
use super::foreign::*;
use super::{format_parameters, read_foreign};
use crate::noise::RngKind;
use crate::recipe::{ModelSource, Recipe};
use crate::sampler::{SamplerKind, ScheduleKind};

/// A1111 1.10's infotext (modules/processing.py `create_infotext`; "Schedule type" split off
/// the sampler since 1.9, RNG written when not GPU).
const A1111_110: &str =
    "a lighthouse at dawn, (golden hour:1.2)\nNegative prompt: blurry, lowres\n\
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, \
    Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, RNG: NV, Version: v1.10.1";

/// The model lookup these tests pass, a stand-in for `model::lookup` with an empty cache (which
/// its own tests cover) that reads no files: it knows sd15 by the hash of its published
/// checkpoint (identified by content) and by the names the samples here give it (a guess);
/// other hashes and names it does not know.
pub(super) fn fake_lookup(name: Option<&str>, hash: Option<&str>) -> Option<ResolvedModel> {
    const SD15_HASH: &str = "6ce0161689";
    const SD15_NAMES: [&str; 4] = [
        "sd15",
        "stable-diffusion-v1-5",
        "v1-5-pruned-emaonly",
        "v1-5-pruned-emaonly.safetensors",
    ];
    let by_content = hash.is_some_and(|h| h.to_lowercase().starts_with(SD15_HASH));
    if !by_content && !name.is_some_and(|n| SD15_NAMES.contains(&n)) {
        return None;
    }
    let how = if by_content {
        format!("by model hash {SD15_HASH}")
    } else {
        "by name only".to_string()
    };
    Some(ResolvedModel {
        source: ModelSource::Hub {
            repo: "stable-diffusion-v1-5/stable-diffusion-v1-5".into(),
            revision: "main".into(),
        },
        family: "sd1".into(),
        preset: Some("sd15".into()),
        how: format!("preset sd15, {how}"),
        by_content,
    })
}

fn fields(s: &ForeignSettings) -> Vec<String> {
    s.unmapped.iter().map(|u| u.field.clone()).collect()
}

fn has(list: &[Unmapped], field: &str, value: &str) -> bool {
    list.iter().any(|u| u.field == field && u.value == value)
}

#[test]
fn a1111_1_10_infotext() {
    let s = parameters::parse(A1111_110).unwrap();
    assert_eq!(s.tool, ForeignTool::Automatic1111);
    assert_eq!(
        s.patch.prompt.as_deref(),
        Some("a lighthouse at dawn, (golden hour:1.2)")
    );
    assert_eq!(s.patch.negative_prompt.as_deref(), Some("blurry, lowres"));
    assert_eq!(s.patch.steps, Some(20));
    assert_eq!(s.patch.sampler, Some(SamplerKind::DpmPp2m));
    assert_eq!(s.patch.schedule, Some(ScheduleKind::Karras));
    assert_eq!(s.patch.cfg, Some(7.0));
    assert_eq!(s.patch.seed, Some(1234));
    assert_eq!((s.patch.width, s.patch.height), (Some(512), Some(768)));
    assert_eq!(s.patch.rng, Some(RngKind::Philox));
    assert_eq!(s.model_name.as_deref(), Some("v1-5-pruned-emaonly"));
    assert_eq!(s.model_hash.as_deref(), Some("6ce0161689"));
    // Only the emphasis caveat: everything else maps.
    assert_eq!(fields(&s), vec!["prompt"]);

    let f = to_recipe(s, &fake_lookup);
    let r = &f.recipe;
    assert_eq!(
        (r.seed, r.steps, r.cfg, r.width, r.height),
        (1234, 20, 7.0, 512, 768)
    );
    assert_eq!(r.schedule, ScheduleKind::Karras);
    let m = f
        .model
        .resolved
        .as_ref()
        .expect("the known checkpoint hash");
    assert_eq!(m.preset.as_deref(), Some("sd15"));
    assert_eq!(r.model.preset.as_deref(), Some("sd15"));
    assert!(has(&f.unmapped, "dtype", "absent"));
    // Samplers and rngs this build lacks are listed, never a failure.
    let sampler_known = "dpmpp_2m".parse::<SamplerKind>().is_ok();
    assert_eq!(!sampler_known, has(&f.unmapped, "sampler", "dpmpp_2m"));
    let philox_known = "philox".parse::<RngKind>().is_ok();
    assert_eq!(!philox_known, has(&f.unmapped, "rng", "philox"));
    r.validate(8, 1000).unwrap();
}

#[test]
fn a1111_old_combined_sampler_and_default_gpu_rng() {
    // A1111 before 1.9: the schedule is part of the sampler name; no RNG field = GPU.
    let s = parameters::parse(
        "a cat\nSteps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 42, Size: 512x512, \
         Model hash: 6ce0161689, Model: v1-5-pruned-emaonly",
    )
    .unwrap();
    assert_eq!(s.patch.sampler, Some(SamplerKind::DpmPp2m));
    assert_eq!(s.patch.schedule, Some(ScheduleKind::Karras));
    assert_eq!(s.patch.rng, None);
    let rng = s.unmapped.iter().find(|u| u.field == "RNG").unwrap();
    assert_eq!(rng.value, "absent");
    assert!(rng.note.contains("--rng philox"), "{}", rng.note);
    // No negative prompt line: listed as absent, used ''.
    let f = to_recipe(s, &fake_lookup);
    assert_eq!(f.recipe.negative_prompt, "");
    let neg = f
        .unmapped
        .iter()
        .find(|u| u.field == "negative prompt")
        .unwrap();
    assert_eq!(neg.to_string(), "negative prompt: absent (used '')");
    assert!(has(&f.unmapped, "rng", "absent or not mappable"));
}

#[test]
fn a1111_names_that_exist_now_map_exactly() {
    let s = parameters::parse(
        "a red apple\nSteps: 4, Sampler: Euler a, Schedule type: Automatic, CFG scale: 5.5, \
         Seed: 7, Size: 64x64, Model: tiny, RNG: CPU, Eta: 1, Clip skip: 1, ENSD: 0",
    )
    .unwrap();
    let f = to_recipe(s, &NoLookup);
    let r = &f.recipe;
    assert_eq!(r.sampler, SamplerKind::EulerAncestral);
    assert_eq!(r.rng, RngKind::TorchCpu);
    assert_eq!(r.schedule, ScheduleKind::Default);
    assert_eq!(
        (r.seed, r.steps, r.cfg, r.width, r.height),
        (7, 4, 5.5, 64, 64)
    );
    // Eta 1 (ancestral), Clip skip 1 and ENSD 0 equal seedling's behaviour: not listed.
    let listed: Vec<String> = f.unmapped.iter().map(|u| u.field.clone()).collect();
    assert_eq!(
        listed,
        vec!["Schedule type", "negative prompt", "dtype", "model"],
        "{:?}",
        f.unmapped
    );
    assert!(f.model.resolved.is_none());
}

#[test]
fn forge_extras_are_listed() {
    // Forge / A1111 with hires fix, clip skip and a LoRA (quoted JSON-style value with commas).
    let s = parameters::parse(
        "portrait <lora:add_detail:0.5>\nSteps: 25, Sampler: Euler, Schedule type: Karras, \
         CFG scale: 6, Seed: 3, Size: 512x512, Model hash: 879db523c3, Model: dreamshaper_8, \
         Denoising strength: 0.5, Clip skip: 2, Hires upscale: 2, Hires steps: 10, \
         Hires upscaler: Latent, Lora hashes: \"add_detail: 7c6bad76eb54, other: 123\", \
         Eta: 0.5, Version: f2.0.1v1.10.1-previous-313-g8a042934",
    )
    .unwrap();
    for (field, value) in [
        ("Denoising strength", "0.5"),
        ("Clip skip", "2"),
        ("Hires upscale", "2"),
        ("Hires steps", "10"),
        ("Hires upscaler", "Latent"),
        ("Eta", "0.5"),
    ] {
        assert!(has(&s.unmapped, field, value), "{field}: {:?}", s.unmapped);
    }
    // The tag is taken out of the prompt A1111 encodes and is a LoRA with its hash; a hash no
    // tag gives strengths for is listed.
    assert_eq!(s.patch.prompt.as_deref(), Some("portrait "));
    assert_eq!(
        s.loras,
        [crate::metadata::foreign::ForeignLora {
            name: "add_detail".into(),
            hash: Some("7c6bad76eb54".into()),
            text_encoder: 0.5,
            unet: 0.5,
        }]
    );
    assert!(has(&s.unmapped, "Lora hashes", "other: 123"));
    assert!(!s.unmapped.iter().any(|u| u.field == "prompt"));
    assert!(!s.unmapped.iter().any(|u| u.field == "Version"));
    let f = to_recipe(s, &fake_lookup);
    assert!(f.model.resolved.is_none());
    assert!(has(
        &f.unmapped,
        "model",
        "'dreamshaper_8' (hash 879db523c3)"
    ));
}

#[test]
fn a1111_variation_and_unknown_sampler() {
    let s = parameters::parse(
        "x\nSteps: 20, Sampler: Heun, CFG scale: 7, Seed: 5, Size: 512x512, Variation seed: 99, \
         Variation seed strength: 0.25, RNG: CPU",
    )
    .unwrap();
    assert_eq!(s.patch.sampler, None);
    assert!(has(&s.unmapped, "Sampler", "Heun"));
    let f = to_recipe(s, &NoLookup);
    assert_eq!(f.recipe.variation_seed, Some(99));
    assert_eq!(f.recipe.variation_strength, 0.25);
    assert_eq!(f.recipe.sampler, SamplerKind::EulerAncestral);
    assert!(has(&f.unmapped, "sampler", "absent or not mappable"));
}

#[test]
fn our_own_parameters_text_maps_back() {
    // A seedling image whose `seedling` chunk was stripped still has our A1111 text.
    let mut r = Recipe {
        prompt: "a lighthouse: at dawn, \"quoted\"".into(),
        negative_prompt: "blurry".into(),
        seed: 18_000_000_000_000_000_000,
        sampler: SamplerKind::Ddim,
        eta: 0.3,
        cfg: 12.25,
        steps: 50,
        width: 768,
        height: 512,
        variation_seed: Some(5),
        variation_strength: 0.1,
        ..Recipe::default()
    };
    r.model.preset = Some("sd15".into());
    let text = format_parameters(&r);
    let f = to_recipe(parameters::parse(&text).unwrap(), &fake_lookup);
    let back = &f.recipe;
    assert_eq!(back.prompt, r.prompt);
    assert_eq!(back.negative_prompt, r.negative_prompt);
    assert_eq!(back.seed, r.seed);
    assert_eq!(back.rng, RngKind::Chacha);
    assert_eq!(back.sampler, SamplerKind::Ddim);
    assert_eq!(back.eta, 0.3);
    assert_eq!(
        (back.cfg, back.steps, back.width, back.height),
        (12.25, 50, 768, 512)
    );
    assert_eq!(
        (back.variation_seed, back.variation_strength),
        (Some(5), 0.1)
    );
    // "Model: sd15" without a hash is a name: a suggestion, not the recipe's model.
    assert_eq!(f.model.resolved, None);
    assert_eq!(f.model.suggested.unwrap().preset.as_deref(), Some("sd15"));
    let listed: Vec<String> = f.unmapped.iter().map(|u| u.field.clone()).collect();
    assert_eq!(listed, vec!["dtype", "model"], "{:?}", f.unmapped);
}

/// stable-diffusion.cpp's `get_image_params` (examples/common/common.cpp) before the SDCPP tail:
/// `std::to_string` floats, "Sampler: <method> <scheduler>", RNG "cuda" by default.
const SDCPP_LINE: &str =
    "a cat in a hat\nNegative prompt: blurry\nSteps: 20, CFG scale: 7.000000, \
    Guidance: 3.500000, Eta: 0.000000, Seed: 42, Size: 512x512, \
    Model: v1-5-pruned-emaonly.safetensors, RNG: cuda, Sampler: euler_a karras, \
    Version: stable-diffusion.cpp";

#[test]
fn sdcpp_settings_line() {
    let s = parameters::parse(SDCPP_LINE).unwrap();
    assert_eq!(s.tool, ForeignTool::StableDiffusionCpp);
    assert_eq!(s.patch.sampler, Some(SamplerKind::EulerAncestral));
    assert_eq!(s.patch.schedule, Some(ScheduleKind::Karras));
    assert_eq!(s.patch.cfg, Some(7.0));
    assert_eq!(s.patch.rng, Some(RngKind::Philox));
    assert_eq!(
        s.model_name.as_deref(),
        Some("v1-5-pruned-emaonly.safetensors")
    );
    assert!(has(&s.unmapped, "Guidance", "3.500000"));
    assert!(has(&s.unmapped, "Eta", "0.000000"));
    let f = to_recipe(s, &fake_lookup);
    assert_eq!(f.model.resolved, None);
    assert_eq!(f.model.suggested.unwrap().preset.as_deref(), Some("sd15"));
}

#[test]
fn sdcpp_json_tail_wins_over_the_line() {
    // Recent sd.cpp appends `, SDCPP: {json}` (schema sdcpp.image.params/v1); it echoes the
    // prompt, which here holds text that looks like a settings field.
    let json = serde_json::json!({
        "schema": "sdcpp.image.params/v1",
        "mode": "img_gen",
        "generator": {"name": "stable-diffusion.cpp", "version": "master", "commit": "b290693"},
        "seed": 1375127038u64, "width": 512, "height": 640,
        "prompt": {"positive": "A sunflower field, Seed: 999", "negative": "Blue sky"},
        "sampling": {"steps": 30, "eta": 0, "method": "dpm++2m", "scheduler": "karras",
                     "guidance": {"txt_cfg": 5, "img_cfg": 5, "distilled_guidance": 3.5,
                                  "slg": {"scale": 0, "layers": [], "start": 0.01, "end": 0.2}}},
        "models": {"model": "v1-5-pruned-emaonly.safetensors"},
        "clip_skip": -1, "strength": 0.75, "rng": "cpu"
    });
    let text = format!(
        "A sunflower field, Seed: 999\nNegative prompt: Blue sky\nSteps: 30, CFG scale: 5.000000, \
         Guidance: 3.500000, Eta: 0.000000, Seed: 1375127038, Size: 512x640, \
         Model: v1-5-pruned-emaonly.safetensors, RNG: cpu, Sampler: dpm++2m karras, \
         Version: stable-diffusion.cpp, SDCPP: {json}"
    );
    let s = parameters::parse(&text).unwrap();
    assert_eq!(s.tool, ForeignTool::StableDiffusionCpp);
    assert_eq!(
        s.patch.prompt.as_deref(),
        Some("A sunflower field, Seed: 999")
    );
    assert_eq!(s.patch.negative_prompt.as_deref(), Some("Blue sky"));
    assert_eq!(s.patch.seed, Some(1375127038));
    assert_eq!((s.patch.width, s.patch.height), (Some(512), Some(640)));
    assert_eq!(s.patch.steps, Some(30));
    assert_eq!(s.patch.cfg, Some(5.0));
    assert_eq!(s.patch.sampler, Some(SamplerKind::DpmPp2m));
    assert_eq!(s.patch.schedule, Some(ScheduleKind::Karras));
    assert_eq!(s.patch.rng, Some(RngKind::TorchCpu));
    // Leftover non-neutral JSON leaves are listed by their path.
    for (field, value) in [
        ("sampling.guidance.img_cfg", "5"),
        ("sampling.guidance.distilled_guidance", "3.5"),
        ("sampling.guidance.slg.start", "0.01"),
        ("strength", "0.75"),
    ] {
        assert!(has(&s.unmapped, field, value), "{field}: {:?}", s.unmapped);
    }
    assert!(!fields(&s)
        .iter()
        .any(|f| f.starts_with("generator") || f == "clip_skip"));
}

/// ComfyUI's default workflow ("Load Default"), as SaveImage stores it in the `prompt` chunk
/// (API format; node ids as the default graph numbers them).
pub const COMFY_DEFAULT: &str = r#"{
  "3": {"inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "euler",
        "scheduler": "normal", "denoise": 1, "model": ["4", 0], "positive": ["6", 0],
        "negative": ["7", 0], "latent_image": ["5", 0]}, "class_type": "KSampler",
        "_meta": {"title": "KSampler"}},
  "4": {"inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"},
        "class_type": "CheckpointLoaderSimple", "_meta": {"title": "Load Checkpoint"}},
  "5": {"inputs": {"width": 512, "height": 512, "batch_size": 1},
        "class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"}},
  "6": {"inputs": {"text": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,",
        "clip": ["4", 1]}, "class_type": "CLIPTextEncode",
        "_meta": {"title": "CLIP Text Encode (Prompt)"}},
  "7": {"inputs": {"text": "text, watermark", "clip": ["4", 1]}, "class_type": "CLIPTextEncode",
        "_meta": {"title": "CLIP Text Encode (Prompt)"}},
  "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode",
        "_meta": {"title": "VAE Decode"}},
  "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage",
        "_meta": {"title": "Save Image"}}
}"#;

#[test]
fn comfyui_default_workflow() {
    let s = comfyui::parse(COMFY_DEFAULT).unwrap();
    assert_eq!(s.tool, ForeignTool::ComfyUi);
    assert_eq!(s.patch.seed, Some(156680208700286));
    assert_eq!(s.patch.steps, Some(20));
    assert_eq!(s.patch.cfg, Some(8.0));
    assert_eq!(s.patch.sampler, Some(SamplerKind::Euler));
    assert_eq!(s.patch.schedule, Some(ScheduleKind::Default));
    assert_eq!(s.patch.rng, Some(RngKind::TorchCpu));
    assert_eq!(
        s.patch.prompt.as_deref(),
        Some("beautiful scenery nature glass bottle landscape, , purple galaxy bottle,")
    );
    assert_eq!(s.patch.negative_prompt.as_deref(), Some("text, watermark"));
    assert_eq!((s.patch.width, s.patch.height), (Some(512), Some(512)));
    assert_eq!(
        s.model_name.as_deref(),
        Some("v1-5-pruned-emaonly.safetensors")
    );
    // Only the scheduler's spacing caveat: every node is part of the mapped chain.
    assert_eq!(fields(&s), vec!["scheduler"], "{:?}", s.unmapped);
    let f = to_recipe(s, &fake_lookup);
    assert_eq!(f.recipe.sampler, SamplerKind::Euler);
    assert_eq!(f.recipe.rng, RngKind::TorchCpu);
    // ComfyUI records no hash: the checkpoint's file name is only a suggestion.
    assert_eq!(f.model.resolved, None);
    assert_eq!(f.model.suggested.unwrap().preset.as_deref(), Some("sd15"));
}

#[test]
fn comfyui_lora_clip_skip_reroute_advanced_and_batch() {
    let mut g: serde_json::Value = serde_json::from_str(COMFY_DEFAULT).unwrap();
    // A LoRA between checkpoint and sampler, CLIP skip on the text encoder, a Reroute on the
    // positive, KSamplerAdvanced with a partial range, a batch of 4, euler_ancestral + karras.
    g["10"] = serde_json::json!({"class_type": "LoraLoader", "inputs": {
        "lora_name": "add_detail.safetensors", "strength_model": 0.8, "strength_clip": 1,
        "model": ["4", 0], "clip": ["4", 1]}});
    g["11"] = serde_json::json!({"class_type": "CLIPSetLastLayer", "inputs": {
        "stop_at_clip_layer": -2, "clip": ["10", 1]}});
    g["12"] = serde_json::json!({"class_type": "Reroute", "inputs": {"": ["6", 0]}});
    g["6"]["inputs"]["clip"] = serde_json::json!(["11", 0]);
    g["5"]["inputs"]["batch_size"] = serde_json::json!(4);
    g["3"] = serde_json::json!({"class_type": "KSamplerAdvanced", "inputs": {
        "add_noise": "enable", "noise_seed": 7, "steps": 30, "cfg": 6.5,
        "sampler_name": "euler_ancestral", "scheduler": "karras", "start_at_step": 0,
        "end_at_step": 20, "return_with_leftover_noise": "enable",
        "model": ["10", 0], "positive": ["12", 0], "negative": ["7", 0],
        "latent_image": ["5", 0]}});
    let s = comfyui::parse(&g.to_string()).unwrap();
    assert_eq!(s.patch.seed, Some(7));
    assert_eq!(s.patch.sampler, Some(SamplerKind::EulerAncestral));
    assert_eq!(s.patch.schedule, Some(ScheduleKind::Karras));
    assert_eq!(
        s.model_name.as_deref(),
        Some("v1-5-pruned-emaonly.safetensors")
    );
    assert!(s
        .patch
        .prompt
        .as_deref()
        .unwrap()
        .starts_with("beautiful scenery"));
    // The LoRA loader is the recipe's LoRA, found later by its name below models/loras.
    assert_eq!(
        s.loras,
        [crate::metadata::foreign::ForeignLora {
            name: "add_detail.safetensors".into(),
            hash: None,
            text_encoder: 1.0,
            unet: 0.8,
        }]
    );
    let f = fields(&s);
    assert!(!f.iter().any(|x| x.contains("LoraLoader")), "{f:?}");
    for expected in [
        "node 11 (CLIPSetLastLayer)",
        "end_at_step",
        "return_with_leftover_noise",
        "batch_size",
        "sampler noise",
    ] {
        assert!(f.iter().any(|x| x == expected), "{expected}: {f:?}");
    }
    assert!(!f.iter().any(|x| x.contains("Reroute")), "{f:?}");
}

#[test]
fn comfyui_without_ksampler_or_with_cycles_is_a_clear_error_or_listed() {
    let err = comfyui::parse(r#"{"1": {"class_type": "SaveImage", "inputs": {}}}"#).unwrap_err();
    assert!(err.contains("no KSampler"), "{err}");
    // A cycle of Reroutes on the positive input: unmapped, no hang.
    let mut g: serde_json::Value = serde_json::from_str(COMFY_DEFAULT).unwrap();
    g["20"] = serde_json::json!({"class_type": "Reroute", "inputs": {"": ["21", 0]}});
    g["21"] = serde_json::json!({"class_type": "Reroute", "inputs": {"": ["20", 0]}});
    g["3"]["inputs"]["positive"] = serde_json::json!(["20", 0]);
    let s = comfyui::parse(&g.to_string()).unwrap();
    assert_eq!(s.patch.prompt, None);
    assert!(
        has(&s.unmapped, "positive", "not linked"),
        "{:?}",
        s.unmapped
    );
}

/// InvokeAI 5.x `invokeai_metadata` (the core_metadata node's fields, as the Linear UI writes
/// them for a text-to-image run).
pub const INVOKE_5: &str = r#"{
  "generation_mode": "txt2img",
  "positive_prompt": "a red fox in the snow",
  "negative_prompt": "lowres",
  "width": 512, "height": 768, "seed": 3043525093, "rand_device": "cpu",
  "cfg_scale": 7.5, "cfg_rescale_multiplier": 0, "steps": 30, "scheduler": "dpmpp_2m_k",
  "clip_skip": 0, "seamless_x": false, "seamless_y": false,
  "model": {"key": "7a1b2c3d-0000-4000-8000-000000000000",
            "hash": "blake3:44c1c5b2ee0a9b3e2a3c0b7d8c5f1a4e2f9d0c6b8a7e5d3c1b0a9f8e7d6c5b4a",
            "name": "stable-diffusion-v1-5", "base": "sd-1", "type": "main"},
  "loras": [], "controlnets": [], "ipAdapters": [], "t2iAdapters": [],
  "hrf_enabled": false, "hrf_method": "ESRGAN", "hrf_strength": 0.45,
  "app_version": "5.0.0"
}"#;

#[test]
fn invokeai_5_metadata() {
    let s = invokeai::parse(INVOKE_5).unwrap();
    assert_eq!(s.tool, ForeignTool::InvokeAi);
    assert_eq!(s.patch.prompt.as_deref(), Some("a red fox in the snow"));
    assert_eq!(s.patch.negative_prompt.as_deref(), Some("lowres"));
    assert_eq!(s.patch.seed, Some(3043525093));
    assert_eq!((s.patch.width, s.patch.height), (Some(512), Some(768)));
    assert_eq!(s.patch.steps, Some(30));
    assert_eq!(s.patch.cfg, Some(7.5));
    assert_eq!(s.patch.sampler, Some(SamplerKind::DpmPp2m));
    assert_eq!(s.patch.schedule, Some(ScheduleKind::Karras));
    assert_eq!(s.patch.rng, Some(RngKind::TorchCpu));
    assert_eq!(s.model_name.as_deref(), Some("stable-diffusion-v1-5"));
    assert_eq!(fields(&s), vec!["noise dtype"], "{:?}", s.unmapped);
    let f = to_recipe(s, &fake_lookup);
    assert_eq!(f.model.resolved, None);
    assert_eq!(f.model.suggested.unwrap().preset.as_deref(), Some("sd15"));

    let mut g: serde_json::Value = serde_json::from_str(INVOKE_5).unwrap();
    g["rand_device"] = "cuda".into();
    g["loras"] = serde_json::json!([{"model": {"name": "detail"}, "weight": 0.75}]);
    g["generation_mode"] = "img2img".into();
    g["model"]["base"] = "sd-3".into();
    let s = invokeai::parse(&g.to_string()).unwrap();
    assert_eq!(s.patch.rng, Some(RngKind::Philox));
    let f = fields(&s);
    for expected in ["loras", "generation_mode", "model.base"] {
        assert!(f.iter().any(|x| x == expected), "{expected}: {f:?}");
    }
}

#[test]
fn detection_order_and_errors() {
    let texts = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let read = |texts: &[(String, String)], name: &str| read_foreign(texts, name, &fake_lookup);
    assert!(read(&texts(&[("Software", "x")]), "a.png").is_none());
    let f = read(
        &texts(&[("parameters", A1111_110), ("prompt", COMFY_DEFAULT)]),
        "a.png",
    )
    .unwrap()
    .unwrap();
    assert_eq!(f.tool, ForeignTool::ComfyUi);
    // A broken graph falls back to the parameters text.
    let f = read(
        &texts(&[("parameters", A1111_110), ("prompt", "{oops")]),
        "a.png",
    )
    .unwrap()
    .unwrap();
    assert_eq!(f.tool, ForeignTool::Automatic1111);
    let e = read(&texts(&[("parameters", "just a caption")]), "b.png")
        .unwrap()
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("b.png") && msg.contains("no settings line"),
        "{msg}"
    );
}

#[test]
fn json_output_names_the_tool_and_nulls_an_unknown_model() {
    let s = parameters::parse(
        "x\nSteps: 4, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 64x64, Model: mystery",
    )
    .unwrap();
    let f = to_recipe(s, &NoLookup);
    let j = f.to_json();
    assert_eq!(j["source_tool"], "AUTOMATIC1111");
    assert_eq!(j["recipe"]["model"], serde_json::Value::Null);
    assert_eq!(j["model"]["name"], "mystery");
    assert!(j["unmapped"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["field"] == "RNG"));
}

// ---------------------------------------------------------------------------------------------
// Issue 22: bounded parsing, other tools' variants, and what seedling writes read back.

/// The two hostile settings lines of the issue: 256 000 key characters without a colon, and
/// 160 000 distinct `key: value` fields, plus the same with duplicate keys and quoted values
/// that never close. Each must be read with work linear in its length.
fn hostile_lines() -> Vec<(&'static str, String)> {
    let no_colon = "Steps 20 Seed 1 Size 8x8 ".repeat(256_000 / 25);
    let fields: String = (0..160_000).map(|i| format!("k{i}: v, ")).collect();
    let dup: String = (0..100_000).map(|i| format!("Key: {i}, ")).collect();
    let open_quotes = "Ab: \"x, ".repeat(40_000);
    let escapes = format!("Ab: \"{}", "\\\"".repeat(100_000));
    vec![
        ("no colon", no_colon),
        ("160 000 fields", fields),
        ("one key 100 000 times", dup),
        ("quotes that never close", open_quotes),
        ("escaped quotes", escapes),
    ]
}

#[test]
fn the_settings_line_scan_reads_each_character_a_bounded_number_of_times() {
    // A deterministic measure, not a timing: the scanner counts its reads of the line. Python's
    // backtracking findall (and the port that followed it) read a run of key characters again
    // from every position after a failed start: 256 000 characters without a colon cost
    // ~3.3e10 reads (`inspect` past 60 s).
    for (what, line) in hostile_lines() {
        let n = line.chars().count();
        let (_, reads) = parameters::scan_params(&line);
        assert!(
            reads <= 6 * n + 16,
            "{what}: {reads} reads for {n} characters"
        );
    }
}

#[test]
fn hostile_parameters_texts_parse_in_linear_work() {
    // The whole parse of the issue's reproducers: with the quadratic key dedup (a list that
    // removed the earlier entry on every insert) the 160 000-field line took minutes; now it is
    // a hash index. What they map to:
    let no_colon = format!("a prompt\n{}", "word ".repeat(51_200));
    let e = parameters::parse(&no_colon).unwrap_err();
    assert!(e.contains("no settings line"), "{e}");

    let fields: String = (0..160_000).map(|i| format!("k{i}: v{i}, ")).collect();
    let s = parameters::parse(&format!("a prompt\nSteps: 20, Seed: 1, {fields}")).unwrap();
    assert_eq!((s.patch.steps, s.patch.seed), (Some(20), Some(1)));
    assert_eq!(
        s.unmapped
            .iter()
            .filter(|u| u.note == "not used by seedling")
            .count(),
        160_000
    );
    // A1111's dict: a repeated key keeps its first place and its last value.
    let s = parameters::parse("p\nSteps: 1, Zz: a, Seed: 2, Zz: b, Size: 8x8, Steps: 3").unwrap();
    assert_eq!(s.patch.steps, Some(3));
    let zz: Vec<&Unmapped> = s.unmapped.iter().filter(|u| u.field == "Zz").collect();
    assert_eq!(zz.len(), 1);
    assert_eq!(zz[0].value, "b");
}

#[test]
fn the_linear_scan_matches_re_param_on_tricky_lines() {
    // The cases where skipping ahead could differ from Python's findall (expected values from
    // `[m for m in re_param.findall(line)]` in CPython 3.11 with A1111's pattern).
    let cases: [(&str, &[(&str, &str)]); 8] = [
        ("a: 1, bb: 2", &[("bb", "2")]),
        ("x y z: 1", &[("x y z", "1")]),
        ("-ab: 1, /cd: 2", &[("ab", "1"), ("cd", "2")]),
        ("\tab\tcd: 1", &[("cd", "1")]),
        (
            "ab cd ef, gh: \"q, r\" s, ij: 3",
            &[("gh", "\"q"), ("ij", "3")],
        ),
        ("ab: \"\", cd: 1", &[("ab", ""), ("cd", "1")]),
        ("ab: \"x\\\", y\", cd: 1", &[("ab", "x\", y"), ("cd", "1")]),
        ("ab: \"x\\", &[("ab", "\"x\\")]),
    ];
    for (line, want) in cases {
        let got = parameters::find_params(line);
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want, "{line}");
    }
}

#[test]
fn the_linear_scan_agrees_with_pythons_re_param() {
    // 600 seeded random lines (half of them pieces of settings lines) with what CPython's `re`
    // and `json` make of them through A1111's `re_param.findall` + `unquote`
    // (testdata/re_param_cases.py writes the file).
    let cases: serde_json::Value =
        serde_json::from_str(include_str!("testdata/re_param_cases.json")).unwrap();
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 600);
    for case in cases {
        let line = case["line"].as_str().unwrap();
        let want: Vec<(String, String)> = case["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| {
                let s = |i: usize| kv[i].as_str().unwrap().to_string();
                (s(0), s(1))
            })
            .collect();
        assert_eq!(parameters::find_params(line), want, "{line:?}");
    }
}

#[test]
fn a1111_automatic_is_the_samplers_own_default() {
    // A1111 1.10 writes the UI's "Automatic"; for DPM++ 2M that ran Karras.
    let s = parameters::parse(
        "x\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Automatic, CFG scale: 7, Seed: 1, \
         Size: 512x512, Version: v1.10.1",
    )
    .unwrap();
    assert_eq!(s.patch.schedule, Some(ScheduleKind::Karras));
    assert!(
        !fields(&s).contains(&"Schedule type".to_string()),
        "{:?}",
        s.unmapped
    );
    // Before 1.9 there was no "Schedule type", and "DPM++ 2M" was uniform.
    let s = parameters::parse(
        "x\nSteps: 20, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1, Size: 512x512, Version: v1.7.0",
    )
    .unwrap();
    assert_eq!(s.patch.schedule, Some(ScheduleKind::Default));
    // "Uniform" and A1111's lower-case scheduler names.
    for (label, kind) in [
        ("Uniform", ScheduleKind::Default),
        ("karras", ScheduleKind::Karras),
    ] {
        let s = parameters::parse(&format!(
            "x\nSteps: 20, Sampler: Euler, Schedule type: {label}, Seed: 1, Size: 8x8"
        ))
        .unwrap();
        assert_eq!(s.patch.schedule, Some(kind), "{label}");
    }
}

#[test]
fn seedlings_old_and_new_text_read_back_as_written() {
    // Before issue 22 seedling wrote "Automatic" for its default schedule and no empty
    // "Negative prompt:" line; that text still means the default schedule.
    let old = "a cat\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Automatic, CFG scale: 7, \
               Seed: 1, Size: 512x512, Model: sd15, RNG: CPU, Version: seedling 0.1.0";
    let s = parameters::parse(old).unwrap();
    assert_eq!(s.patch.sampler, Some(SamplerKind::DpmPp2m));
    assert_eq!(s.patch.schedule, Some(ScheduleKind::Default));
    assert_eq!(s.patch.negative_prompt, None);
    assert!(s.unmapped.is_empty(), "{:?}", s.unmapped);

    // Every sampler and schedule seedling writes maps back to itself, with no A1111 caveat.
    for sampler in SamplerKind::ALL {
        for schedule in [ScheduleKind::Default, ScheduleKind::Karras] {
            if schedule == ScheduleKind::Karras && !sampler.has_sigmas() {
                continue;
            }
            let r = Recipe {
                prompt: "a (red) apple".into(),
                sampler,
                schedule,
                ..Recipe::default()
            };
            let text = format_parameters(&r);
            let s = parameters::parse(&text).unwrap();
            assert_eq!(s.patch.sampler, Some(sampler), "{text}");
            assert_eq!(s.patch.schedule, Some(schedule), "{text}");
            assert_eq!(s.patch.negative_prompt.as_deref(), Some(""), "{text}");
            assert_eq!(s.patch.prompt.as_deref(), Some("a (red) apple"), "{text}");
            assert!(s.unmapped.is_empty(), "{text}: {:?}", s.unmapped);
        }
    }
}

#[test]
fn a1111_unipc_settings_are_checked() {
    // A1111's UniPC defaults (variant bh1, order 3) are not seedling's.
    let s = parameters::parse("x\nSteps: 20, Sampler: UniPC, Seed: 1, Size: 8x8").unwrap();
    assert_eq!(s.patch.sampler, Some(SamplerKind::UniPc));
    assert!(has(
        &s.unmapped,
        "UniPC variant",
        "absent (A1111's default, bh1)"
    ));
    assert!(has(
        &s.unmapped,
        "UniPC order",
        "absent (A1111's default, 3)"
    ));
    let s = parameters::parse(
        "x\nSteps: 20, Sampler: UniPC, Seed: 1, Size: 8x8, RNG: CPU, UniPC variant: bh2, \
         UniPC order: 2",
    )
    .unwrap();
    assert!(s.unmapped.is_empty(), "{:?}", s.unmapped);
}

/// InvokeAI 3.x's `invokeai_metadata` (core_metadata node with `MainModelField`).
const INVOKE_3: &str = r#"{"generation_mode": "txt2img", "positive_prompt": "a lighthouse",
 "negative_prompt": "", "width": 512, "height": 512, "seed": 12, "rand_device": "cpu",
 "cfg_scale": 7.5, "steps": 20, "scheduler": "euler", "clip_skip": 0,
 "model": {"model_name": "stable-diffusion-v1-5", "base_model": "sd-1", "model_type": "main"},
 "controlnets": [], "loras": [], "vae": null, "app_version": "3.4.0"}"#;

#[test]
fn invokeai_3_model_object_is_read() {
    let s = invokeai::parse(INVOKE_3).unwrap();
    assert_eq!(s.model_name.as_deref(), Some("stable-diffusion-v1-5"));
    assert_eq!(fields(&s), vec!["noise dtype"], "{:?}", s.unmapped);
    let f = to_recipe(s, &fake_lookup);
    assert!(!has(&f.unmapped, "model", "absent"), "{:?}", f.unmapped);
    assert_eq!(f.model.name.as_deref(), Some("stable-diffusion-v1-5"));
}

#[test]
fn invokeai_sdxl_is_supported() {
    let mut g: serde_json::Value = serde_json::from_str(INVOKE_5).unwrap();
    g["generation_mode"] = "sdxl_txt2img".into();
    g["model"]["base"] = "sdxl".into();
    g["model"]["name"] = "stable-diffusion-xl-base-1-0".into();
    g["positive_style_prompt"] = g["positive_prompt"].clone();
    g["negative_style_prompt"] = g["negative_prompt"].clone();
    let s = invokeai::parse(&g.to_string()).unwrap();
    assert_eq!(fields(&s), vec!["noise dtype"], "{:?}", s.unmapped);
    assert_eq!(invokeai::invoke_base_family("sdxl"), Some("sdxl"));
    // A refiner as the main model, or another architecture, is not something seedling runs.
    for base in ["sdxl-refiner", "flux"] {
        g["model"]["base"] = base.into();
        let s = invokeai::parse(&g.to_string()).unwrap();
        assert!(has(&s.unmapped, "model.base", base), "{:?}", s.unmapped);
    }
}

#[test]
fn comfyui_early_2023_sampler_names() {
    for (old, ours) in [
        ("sample_euler", "euler"),
        ("sample_euler_ancestral", "euler_a"),
        ("sample_dpmpp_2m", "dpmpp_2m"),
    ] {
        assert_eq!(comfyui::comfy_sampler_name(old), Some(ours), "{old}");
        let mut g: serde_json::Value = serde_json::from_str(COMFY_DEFAULT).unwrap();
        g["3"]["inputs"]["sampler_name"] = old.into();
        let s = comfyui::parse(&g.to_string()).unwrap();
        assert_eq!(s.patch.sampler.map(SamplerKind::name), Some(ours));
        assert!(!fields(&s).contains(&"sampler_name".to_string()));
    }
    assert_eq!(comfyui::comfy_sampler_name("sample_heun"), None);
    assert_eq!(comfyui::comfy_sampler_name("sample_ddim"), None);
}

#[test]
fn a_model_matched_by_name_is_a_suggestion_not_the_recipes_model() {
    let s = parameters::parse("x\nSteps: 4, Sampler: Euler, Seed: 1, Size: 64x64, Model: sd15")
        .unwrap();
    let f = to_recipe(s, &fake_lookup);
    assert_eq!(f.model.resolved, None);
    let guess = f.model.suggested.as_ref().unwrap();
    assert_eq!(guess.preset.as_deref(), Some("sd15"));
    assert!(!guess.by_content);
    // The recipe keeps the default model reference, which replay never uses without a model
    // given. The note is text in the library's neutral words (the CLI respells it).
    assert_eq!(f.recipe.model, Recipe::default().model);
    let m = f.unmapped.iter().find(|u| u.field == "model").unwrap();
    assert_eq!(m.value, "'sd15' (no hash recorded)");
    assert!(
        m.note.contains("a guess") && m.note.contains("(model = sd15 if it is that model)"),
        "{}",
        m.note
    );
    assert_eq!(f.to_json()["recipe"]["model"], serde_json::Value::Null);
    assert_eq!(f.to_json()["model"]["suggested"]["preset"], "sd15");
    // Identified by content, it is the recipe's model.
    let s = parameters::parse(A1111_110).unwrap();
    let f = to_recipe(s, &fake_lookup);
    assert!(f.model.resolved.as_ref().unwrap().by_content);
    assert_eq!(f.model.suggested, None);
    assert!(!f.unmapped.iter().any(|u| u.field == "model"));
}

/// Fooocus 2.5's `parameters` in its own scheme (meta_parser.py, `FooocusMetadataParser`:
/// `json.dumps(dict(sorted(res.items())))`, values as Fooocus's UI holds them).
const FOOOCUS_JSON: &str = r#"{"adaptive_cfg": 7, "adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion", "base_model_hash": "aeb7e9e6897a1e58b10494bd989d001e3d4bc9b634633cd7b559838f612c2867", "full_negative_prompt": ["unrealistic, saturated"], "full_prompt": ["a cat, cinematic, highly detailed"], "guidance_scale": 4, "loras": [], "lora_combined_1": "None : 1.0", "metadata_scheme": "fooocus", "negative_prompt": "", "performance": "Speed", "prompt": "a cat", "refiner_model": "None", "refiner_switch": 0.5, "resolution": "(1152, 896)", "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "seed": "1234567", "sharpness": 2, "steps": 30, "styles": "['Fooocus V2', 'Fooocus Enhance']", "vae": "Default (model)", "version": "Fooocus v2.5.5"}"#;

#[test]
fn fooocus_json_is_read_not_taken_for_a1111() {
    let s = parameters::parse(FOOOCUS_JSON).unwrap();
    assert_eq!(s.tool, ForeignTool::Fooocus);
    assert_eq!(s.patch.prompt.as_deref(), Some("a cat"));
    assert_eq!(s.patch.negative_prompt.as_deref(), Some(""));
    assert_eq!(
        (s.patch.seed, s.patch.steps, s.patch.cfg),
        (Some(1234567), Some(30), Some(4.0))
    );
    assert_eq!((s.patch.width, s.patch.height), (Some(1152), Some(896)));
    assert_eq!(s.patch.schedule, Some(ScheduleKind::Karras));
    assert_eq!(s.patch.sampler, None);
    assert_eq!(s.patch.rng, Some(RngKind::TorchCpu));
    assert_eq!(s.model_name.as_deref(), Some("juggernautXL_v8Rundiffusion"));
    assert!(s.model_hash.as_deref().unwrap().starts_with("aeb7e9e689"));
    let listed = fields(&s);
    for field in [
        "sampler",
        "full_prompt",
        "full_negative_prompt",
        "sharpness",
        "adm_guidance",
        "styles",
        "adaptive_cfg",
    ] {
        assert!(listed.iter().any(|f| f == field), "{field}: {listed:?}");
    }
    // Neutral and informational keys are not listed.
    for quiet in [
        "refiner_model",
        "refiner_switch",
        "lora_combined_1",
        "loras",
        "vae",
        "version",
        "metadata_scheme",
        "performance",
        "seed",
    ] {
        assert!(!listed.iter().any(|f| f == quiet), "{quiet}: {listed:?}");
    }
    let f = to_recipe(s, &fake_lookup);
    assert_eq!(f.recipe.seed, 1234567);
    assert_eq!(f.tool.describe(), "Fooocus (parameters JSON)");

    // The label form older Fooocus versions and forks write.
    let labels = r#"{"Prompt": "a dog", "Negative Prompt": "blurry", "Fooocus V2 Expansion": "a dog, sharp focus", "Styles": "['Fooocus V2']", "Performance": "Speed", "Resolution": "(1024, 1024)", "Sharpness": "2.0", "Guidance Scale": "7.0", "ADM Guidance": "(1.5, 0.8, 0.3)", "Base Model": "sd_xl_base_1.0_0.9vae.safetensors", "Refiner Model": "None", "Refiner Switch": "0.8", "Sampler": "dpmpp_2m", "Scheduler": "karras", "Seed": "42", "Version": "v2.1.865"}"#;
    let s = parameters::parse(labels).unwrap();
    assert_eq!(s.tool, ForeignTool::Fooocus);
    assert_eq!(s.patch.prompt.as_deref(), Some("a dog"));
    assert_eq!(s.patch.negative_prompt.as_deref(), Some("blurry"));
    assert_eq!((s.patch.seed, s.patch.cfg), (Some(42), Some(7.0)));
    assert_eq!(s.patch.sampler, Some(SamplerKind::DpmPp2m));
    assert_eq!((s.patch.width, s.patch.height), (Some(1024), Some(1024)));
    let listed = fields(&s);
    for field in ["Fooocus V2 Expansion", "Styles", "Performance", "Sharpness"] {
        assert!(listed.iter().any(|f| f == field), "{field}: {listed:?}");
    }
    assert!(!listed.iter().any(|f| f == "Refiner Switch"), "{listed:?}");

    // A JSON object that is not Fooocus's is refused, not read as a settings line.
    let e = parameters::parse(r#"{"a": 1, "b": 2, "c": 3, "Steps: 1, Seed: 2, Size": "8x8"}"#)
        .unwrap_err();
    assert!(e.contains("JSON object") && e.contains("Fooocus"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Property tests: seeded random mutations of real samples (ComfyUI's own PNGs in
// ../shared/fixtures/wild/comfyui, and the tools' layouts above). Every mutant must parse or be
// refused with a reason, map to a recipe that validates, and the settings-line scan must stay
// linear. Bounded: a fixed number of mutants per sample.

/// splitmix64 (Steele et al. 2014).
struct Mix(u64);

impl Mix {
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
}

/// The `prompt` chunks of ComfyUI's own reference PNGs.
fn comfy_wild_prompts() -> Vec<(String, String)> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/wild/comfyui");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    files.sort();
    for path in files {
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        if let Some(t) = info
            .uncompressed_latin1_text
            .iter()
            .find(|t| t.keyword == "prompt")
        {
            out.push((path.display().to_string(), t.text.clone()));
        }
    }
    assert!(out.len() >= 10, "ComfyUI samples: {}", out.len());
    out
}

/// Characters that matter to the parsers.
const SPICE: [&str; 16] = [
    ":",
    ",",
    "\"",
    "\\",
    "\n",
    " ",
    "{",
    "}",
    "[",
    "]",
    "Steps: ",
    "Negative prompt:",
    "é",
    "\u{1c}",
    "\"3\"",
    "null",
];

/// One text mutation: delete, duplicate or replace a stretch, or insert a spicy piece.
fn mutate(rng: &mut Mix, text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let at = rng.below(n + 1);
    let len = rng.below(16.min(n - at) + 1);
    let (head, rest) = chars.split_at(at);
    let (mid, tail) = rest.split_at(len);
    let s = |c: &[char]| c.iter().collect::<String>();
    match rng.below(4) {
        0 => s(head) + &s(tail),
        1 => s(head) + &s(mid) + &s(mid) + &s(tail),
        2 => s(head) + SPICE[rng.below(SPICE.len())] + &s(tail),
        _ => s(head) + SPICE[rng.below(SPICE.len())] + &s(mid) + &s(tail),
    }
}

/// One JSON mutation somewhere in the tree: a value replaced by another type, a key removed, or
/// a link pointed elsewhere.
fn mutate_json(rng: &mut Mix, v: &mut serde_json::Value, depth: usize) {
    use serde_json::Value as V;
    let replacement = |rng: &mut Mix| match rng.below(8) {
        0 => V::Null,
        1 => V::from(-1),
        2 => V::from(1e300),
        3 => V::from("x".repeat(rng.below(300))),
        4 => serde_json::json!(["3", 0]),
        5 => serde_json::json!(["3", 0, 1]),
        6 => serde_json::json!({}),
        _ => V::from(u64::MAX),
    };
    match v {
        V::Object(map) if !map.is_empty() && depth < 6 => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let k = &keys[rng.below(keys.len())];
            match rng.below(4) {
                0 => {
                    map.remove(k);
                }
                1 => {
                    map.insert(k.clone(), replacement(rng));
                }
                _ => mutate_json(rng, map.get_mut(k).unwrap(), depth + 1),
            }
        }
        V::Array(items) if !items.is_empty() && depth < 6 => {
            let i = rng.below(items.len());
            if rng.below(2) == 0 {
                items[i] = replacement(rng);
            } else {
                mutate_json(rng, &mut items[i], depth + 1);
            }
        }
        other => *other = replacement(rng),
    }
}

/// What every mutant must satisfy: a parse that fails says why; one that succeeds maps to a
/// recipe that validates, with every unmapped value shown short.
fn check_mutant(what: &str, parsed: Result<ForeignSettings, String>) {
    match parsed {
        Err(why) => assert!(!why.is_empty(), "{what}: empty reason"),
        Ok(s) => {
            let f = to_recipe(s, &NoLookup);
            f.recipe
                .validate(8, 1000)
                .unwrap_or_else(|e| panic!("{what}: mapped recipe invalid: {e}"));
            for u in &f.unmapped {
                assert!(
                    u.value.chars().count() <= 200,
                    "{what}: unbounded value for {}",
                    u.field
                );
            }
        }
    }
}

#[test]
fn mutated_real_samples_parse_or_fail_clearly() {
    let mut rng = Mix(22);
    let mut a1111: Vec<String> = vec![A1111_110.to_string(), SDCPP_LINE.to_string()];
    for sampler in SamplerKind::ALL {
        let r = Recipe {
            prompt: "a lighthouse: at dawn, \"q\"".into(),
            negative_prompt: "blurry".into(),
            sampler,
            ..Recipe::default()
        };
        a1111.push(format_parameters(&r));
    }
    for base in &a1111 {
        for round in 0..200 {
            let mut t = base.clone();
            for _ in 0..=rng.below(4) {
                t = mutate(&mut rng, &t);
            }
            check_mutant(&format!("A1111 {round}: {t:?}"), parameters::parse(&t));
            // Linear: the settings line repeated 300 times still costs a bounded number of
            // reads per character.
            let line = t.rsplit('\n').next().unwrap_or("");
            let long = vec![line; 300].join(", ");
            let (_, reads) = parameters::scan_params(&long);
            let n = long.chars().count();
            assert!(reads <= 6 * n + 16, "{t:?}: {reads} reads for {n}");
        }
    }
    let mut json_samples: Vec<(String, String, Parser)> = comfy_wild_prompts()
        .into_iter()
        .map(|(name, text)| (name, text, comfyui::parse as Parser))
        .collect();
    json_samples.push(("COMFY_DEFAULT".into(), COMFY_DEFAULT.into(), comfyui::parse));
    json_samples.push(("INVOKE_5".into(), INVOKE_5.into(), invokeai::parse));
    json_samples.push(("INVOKE_3".into(), INVOKE_3.into(), invokeai::parse));
    json_samples.push(("FOOOCUS".into(), FOOOCUS_JSON.into(), parameters::parse));
    for (name, text, parse) in &json_samples {
        // The sample itself parses.
        check_mutant(name, parse(text));
        let original: serde_json::Value = serde_json::from_str(text).unwrap();
        for round in 0..150 {
            let mut v = original.clone();
            for _ in 0..=rng.below(3) {
                mutate_json(&mut rng, &mut v, 0);
            }
            check_mutant(&format!("{name} json {round}: {v}"), parse(&v.to_string()));
            let t = mutate(&mut rng, text);
            check_mutant(&format!("{name} text {round}: {t:?}"), parse(&t));
        }
    }
}

type Parser = fn(&str) -> std::result::Result<ForeignSettings, String>;
