//! Writing the AUTOMATIC1111 "parameters" text ("infotext"), so A1111's PNG Info tab, Civitai
//! and the many tools that read that layout show what made a seedling image.
//!
//! Layout, as A1111's `create_infotext` (modules/processing.py) builds it:
//!
//! ```text
//! <prompt>
//! Negative prompt: <negative prompt>
//! Steps: 20, Sampler: Euler a, Schedule type: Uniform, CFG scale: 7.5, Seed: 42, ...
//! ```
//!
//! Where seedling departs from `create_infotext`, it is so that other readers regenerate the
//! same settings:
//! * the `Negative prompt:` line is written even when the negative prompt is empty (A1111 leaves
//!   it out): ComfyUI's A1111 import (`importA1111`) accepts the text only with a
//!   "\nNegative prompt:" before the settings line;
//! * "Schedule type" names the schedule seedling ran, never "Automatic" for a sampler whose
//!   schedule A1111 chooses (A1111 1.9+ reads "DPM++ 2M" + "Automatic" as Karras);
//! * UniPC gets `UniPC variant: bh2` (A1111's default is bh1; it applies the field to its
//!   `uni_pc_variant` setting when the text is pasted).
//!
//! The whole text is then whitespace-stripped at both ends (Python `str.strip()`). Every value in
//! the last line goes through A1111's `quote()` (modules/infotext_utils.py): a value holding `,`,
//! `:` or a newline is written as a JSON string (`json.dumps(v, ensure_ascii=False)`), so A1111's
//! parser (`re_param` + `unquote`) reads it back whole. The prompt lines are never quoted.
//!
//! `read` reads that text back (ours and other tools'); both take their names from `names`.

use super::names::{self, key, NEGATIVE_PROMPT, UNIPC_VARIANT};
use super::python::py_strip;
use crate::provenance::TOOL;
use crate::recipe::{Recipe, Value};
use crate::sampler::{SamplerKind, ScheduleKind};

/// The A1111 infotext for `recipe`.
pub fn format_parameters(recipe: &Recipe) -> String {
    let text = format!(
        "{}{}\n{NEGATIVE_PROMPT} {}\n{}",
        recipe.prompt,
        lora_tags(recipe),
        recipe.negative_prompt,
        params_line(recipe)
    );
    let text = py_strip(&text);
    // With an empty prompt the strip would take the newline before `Negative prompt:` that
    // ComfyUI's import looks for; A1111's parser strips the text first, so it reads the same.
    if text.starts_with(NEGATIVE_PROMPT) {
        format!("\n{text}")
    } else {
        text.to_string()
    }
}

/// The `Steps: …, Sampler: …` line. Field order follows A1111's `generation_params` dict:
/// Steps, Sampler, Schedule type, CFG scale, Seed, Size, Model hash, Model, RNG, then the
/// sampler's extra params (`Eta DDIM`, `UniPC variant`), then Version. Fields A1111 would
/// leave as `None` are left out, as A1111 does.
fn params_line(recipe: &Recipe) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    fields.extend(as_is(recipe, key::STEPS));
    fields.push((
        key::SAMPLER,
        names::sampler_of(recipe.sampler).name.to_string(),
    ));
    fields.push((
        key::SCHEDULE_TYPE,
        schedule_name(recipe.sampler, recipe.schedule).to_string(),
    ));
    fields.extend(as_is(recipe, key::CFG_SCALE));
    fields.extend(as_is(recipe, key::SEED));
    fields.push((key::SIZE, format!("{}x{}", recipe.width, recipe.height)));
    if let Some(hash) = recipe.model.short_hash() {
        fields.push((key::MODEL_HASH, hash));
    }
    fields.push((key::MODEL, recipe.model.display_name()));
    // A1111 names a separately chosen VAE right after the model.
    if let Some((name, hash)) = recipe.model.vae_name_and_hash() {
        if let Some(hash) = hash {
            fields.push((key::VAE_HASH, hash));
        }
        fields.push((key::VAE, name));
    }
    // A1111 writes these only when a variation seed is in use (strength > 0).
    if recipe.variation_seed.is_some() && recipe.variation_strength > 0.0 {
        fields.extend(as_is(recipe, key::VARIATION_SEED));
        fields.extend(as_is(recipe, key::VARIATION_SEED_STRENGTH));
    }
    fields.push((key::RNG, names::rng_name(recipe.rng).to_string()));
    // Added to extra_generation_params when the networks activate, before the sampler adds
    // its own; only when LoRAs were used.
    if let Some(hashes) = lora_hashes(recipe) {
        fields.push((key::LORA_HASHES, hashes));
    }
    // Written while the prompts are encoded (`setup_conds`), after the networks activate.
    if !recipe.model.embeddings.is_empty() {
        let entries: Vec<String> = recipe
            .model
            .embeddings
            .iter()
            .map(|e| format!("{}: {}", e.name.replace([':', ','], ""), e.a1111_hash()))
            .collect();
        fields.push((key::TI_HASHES, entries.join(", ")));
    }
    // A1111's DDIM sampler adds `Eta DDIM` to extra_generation_params when eta != 0
    // (sd_samplers_timesteps.py, `initialize`); other samplers ignore eta.
    if recipe.sampler == SamplerKind::Ddim && recipe.eta != 0.0 {
        fields.extend(as_is(recipe, key::ETA_DDIM));
    }
    // seedling's UniPC is diffusers' bh2 (the only solver type its config check accepts);
    // A1111 reads this field into its `uni_pc_variant` setting (default bh1). The solver order
    // comes from the model's scheduler config, which the recipe does not carry, so it is not
    // written.
    if recipe.sampler == SamplerKind::UniPc {
        fields.push((key::UNIPC_VARIANT, UNIPC_VARIANT.to_string()));
    }
    fields.push((key::VERSION, TOOL.to_string()));
    fields
        .iter()
        .map(|(k, v)| format!("{k}: {}", quote(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The LoRAs as A1111 applies them from a prompt: ` <lora:STEM:W>` each after the prompt, or
/// ` <lora:STEM:TE:UNET>` when the strengths differ (extensions-builtin/Lora/
/// extra_networks_lora.py reads positional 1 as the text encoder's strength, 2 as the UNet's).
/// A1111 takes the tags out before encoding (modules/extra_networks.py `parse_prompt`), so the
/// prompt it encodes is the recipe's; the names are the files' stems, as its LoRA list shows
/// them, and `Lora hashes` says which files they are.
fn lora_tags(recipe: &Recipe) -> String {
    recipe
        .model
        .loras
        .iter()
        .map(|l| {
            let stem = lora_stem(&l.name);
            match l.text_encoder == l.unet {
                true => format!(" <lora:{stem}:{}>", py_number(l.unet)),
                false => format!(
                    " <lora:{stem}:{}:{}>",
                    py_number(l.text_encoder),
                    py_number(l.unet)
                ),
            }
        })
        .collect()
}

/// The file stem of a recorded LoRA name (a path).
fn lora_stem(name: &str) -> String {
    std::path::Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string())
}

/// A1111's "Lora hashes": `name: hash` per LoRA joined by ", ", the name (the file's stem)
/// without `:` and `,` (extra_networks_lora.py `activate`); LoRAs without an A1111 hash are
/// left out, as A1111 leaves out those it has none for.
fn lora_hashes(recipe: &Recipe) -> Option<String> {
    let entries: Vec<String> = recipe
        .model
        .loras
        .iter()
        .filter_map(|l| {
            let hash = l.a1111_hash.as_deref()?;
            Some(format!(
                "{}: {hash}",
                lora_stem(&l.name).replace([':', ','], "")
            ))
        })
        .collect();
    (!entries.is_empty()).then(|| entries.join(", "))
}

/// The key `k` with the recipe's value of the field it holds as is ([`names::field_for`]).
fn as_is(recipe: &Recipe, k: &'static str) -> Option<(&'static str, String)> {
    names::field_for(k).map(|f| (k, a1111_value(&f.get(recipe))))
}

/// A field's value as A1111 writes it: numbers as Python prints them ([`py_number`]), counts
/// and seeds in decimal.
fn a1111_value(v: &Value) -> String {
    match v {
        Value::Number(x) => py_number(*x),
        Value::Whole(n) => n.to_string(),
        Value::Seed(s) => s.to_string(),
        // `names::AS_IS` holds numbers, counts and seeds only.
        other => other.to_string(),
    }
}

/// A1111's "Schedule type" label (modules/sd_schedulers.py) for the schedule the recipe ran.
/// "Automatic" lets A1111 pick the sampler's own default, which for "DPM++ 2M" is Karras
/// (sd_samplers_kdiffusion.py, `'scheduler': 'karras'`), so it is never written for a sampler
/// whose noise levels A1111 spaces by that setting: seedling's default schedule is A1111's
/// "Uniform" there (evenly spaced timesteps, no Karras sigmas). DDIM, PLMS and UniPC run on
/// A1111's own timesteps and ignore the setting; for them "Automatic" is what A1111 writes.
fn schedule_name(sampler: SamplerKind, schedule: ScheduleKind) -> &'static str {
    match schedule {
        ScheduleKind::Default if !names::sampler_of(sampler).uses_schedule => names::AUTOMATIC.0,
        schedule => names::schedule_names(schedule).0,
    }
}

/// A1111's `quote()`: JSON-quote a value holding `,`, `:` or a newline, else leave it as is.
fn quote(value: &str) -> String {
    if value.contains([',', ':', '\n']) {
        json_string(value)
    } else {
        value.to_string()
    }
}

/// Python's `json.dumps(s, ensure_ascii=False)` for a string: escapes `"`, `\` and the C0
/// control characters (`\n`, `\r`, `\t`, `\b`, `\f` by name, others as `\u00xx`), nothing else.
/// serde_json escapes exactly that set in the same spelling.
fn json_string(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

/// A number as A1111 prints it: whole numbers as integers (`7`, the UI sends them as ints),
/// others as Python's `repr(float)` (`7.5`, `0.3`, `1e-05`).
fn py_number(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 {
        return format!("{}", x as i64);
    }
    py_float_repr(x)
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the
/// decimal exponent is in [-4, 16), else scientific with a signed, at least two-digit exponent
/// (Python's `float_repr_style = 'short'`, format code 'r').
fn py_float_repr(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    // Rust's `{:e}` also prints the shortest round-trip digits: "7.5e0", "1e-5".
    let sci = format!("{:e}", x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..16).contains(&exp) {
        let e_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{e_sign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    if point <= 0 {
        let zeros = "0".repeat((-point) as usize);
        format!("{sign}0.{zeros}{digits}")
    } else if point as usize >= digits.len() {
        let zeros = "0".repeat(point as usize - digits.len());
        format!("{sign}{digits}{zeros}.0")
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::RngKind;
    use crate::recipe::{ModelDType, ModelRef, ModelSource, SCHEMA_VERSION};
    use std::collections::BTreeMap;

    // Expected texts come from an independent Python implementation of A1111's
    // `create_infotext` + `quote` semantics, `testdata/a1111_infotext.py` (it uses CPython's own
    // `json.dumps(..., ensure_ascii=False)`, `repr(float)` and `str.strip()`), whose output is
    // committed as `testdata/a1111_expected.json`. Each test below builds the same recipe as the
    // script's case of the same name; re-run the script after changing one.
    const EXPECTED: &str = include_str!("../testdata/a1111_expected.json");

    fn expected() -> serde_json::Value {
        serde_json::from_str(EXPECTED).expect("testdata/a1111_expected.json is valid JSON")
    }

    fn expected_text(case: &str) -> String {
        let text = expected()[case]
            .as_str()
            .unwrap_or_else(|| panic!("case {case} missing from a1111_expected.json"))
            .to_string();
        // The script pins version 0.1.0; follow the crate version.
        assert!(text.ends_with("Version: seedling 0.1.0"));
        text.replace("Version: seedling 0.1.0", &format!("Version: {TOOL}"))
    }

    fn expected_list(key: &str) -> Vec<String> {
        expected()[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} missing from a1111_expected.json"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn model(preset: Option<&str>, unet_hash: Option<&str>) -> ModelRef {
        let mut files = BTreeMap::new();
        if let Some(h) = unet_hash {
            // A text-encoder file sorts first: the hash must still come from the UNet.
            files.insert(
                "text_encoder/model.safetensors".to_string(),
                "ffff".repeat(16),
            );
            files.insert(
                "unet/diffusion_pytorch_model.safetensors".to_string(),
                h.to_string(),
            );
        }
        ModelRef {
            source: ModelSource::Hub {
                repo: "stable-diffusion-v1-5/stable-diffusion-v1-5".into(),
                revision: "451f4fe16113bff5a5d2269ed5ad43b0592e9a14".into(),
            },
            family: "sd1".into(),
            preset: preset.map(str::to_string),
            files,
            vae: None,
            loras: Vec::new(),
            embeddings: Vec::new(),
        }
    }

    /// The script's `BASE` case.
    fn recipe() -> Recipe {
        Recipe {
            schema: SCHEMA_VERSION,
            model: model(
                Some("sd15"),
                Some("6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"),
            ),
            prompt: "a lighthouse at dawn".into(),
            negative_prompt: String::new(),
            seed: 42,
            rng: RngKind::TorchCpu,
            variation_seed: None,
            variation_strength: 0.0,
            width: 512,
            height: 512,
            sampler: SamplerKind::EulerAncestral,
            schedule: crate::sampler::ScheduleKind::Default,
            steps: 20,
            cfg: 7.5,
            eta: 0.0,
            dtype: ModelDType::F16,
            truncate_prompt: false,
        }
    }

    #[test]
    fn loras_are_written_as_a1111_tags_and_read_back_as_loras() {
        let mut r = recipe();
        let lora = |name: &str, unet, te, hash: &str| crate::recipe::LoraRef {
            name: name.into(),
            sha256: "ab".repeat(32),
            unet,
            text_encoder: te,
            a1111_hash: Some(hash.into()),
        };
        r.model.loras = vec![
            lora("/m/Lora/style.safetensors", 0.8, 0.8, "0123456789ab"),
            lora("/m/Lora/sub/detail.safetensors", 0.5, 1.0, "ba9876543210"),
        ];
        let text = format_parameters(&r);
        assert!(
            text.starts_with(
                "a lighthouse at dawn <lora:style:0.8> <lora:detail:1:0.5>\nNegative prompt: \n"
            ),
            "{text}"
        );
        assert!(text.contains("Lora hashes: \"style: 0123456789ab, detail: ba9876543210\""));
        let s = super::super::read::parse(&text).unwrap();
        // A1111 encodes the text without the tags; seedling reading its own text back also
        // drops the space it wrote before each, giving the recipe's prompt.
        assert_eq!(s.patch.prompt.as_deref(), Some("a lighthouse at dawn"));
        let a1111 = text.replace("seedling ", "1.10.1 ");
        let s = super::super::read::parse(&a1111).unwrap();
        assert_eq!(s.patch.prompt.as_deref(), Some("a lighthouse at dawn  "));
        assert_eq!(s.loras.len(), 2);
        let loras: Vec<(&str, Option<&str>, f64, f64)> = s
            .loras
            .iter()
            .map(|l| (l.name.as_str(), l.hash.as_deref(), l.text_encoder, l.unet))
            .collect();
        assert_eq!(
            loras,
            [
                ("style", Some("0123456789ab"), 0.8, 0.8),
                ("detail", Some("ba9876543210"), 1.0, 0.5)
            ]
        );
        assert!(
            !s.unmapped.iter().any(|u| u.field.contains("Lora")),
            "{:?}",
            s.unmapped
        );
    }

    #[test]
    fn plain_recipe() {
        let text = format_parameters(&recipe());
        assert_eq!(text, expected_text("plain_recipe"));
        // Spelled out once, for the reader:
        assert_eq!(
            text,
            format!(
                "a lighthouse at dawn\nNegative prompt: \nSteps: 20, Sampler: Euler a, \
                 Schedule type: Uniform, CFG scale: 7.5, Seed: 42, Size: 512x512, \
                 Model hash: 6ce0161689, Model: sd15, RNG: CPU, Version: {TOOL}"
            )
        );
    }

    #[test]
    fn schedule_type_is_the_schedule_that_ran() {
        // A1111 1.9+ reads "DPM++ 2M" with "Automatic" as Karras: the default schedule must be
        // written as "Uniform", Karras as "Karras".
        let mut r = recipe();
        r.sampler = SamplerKind::DpmPp2m;
        let text = format_parameters(&r);
        assert_eq!(text, expected_text("dpmpp_2m_default_schedule"));
        assert!(!text.contains("Automatic"), "{text}");
        r.schedule = ScheduleKind::Karras;
        assert_eq!(format_parameters(&r), expected_text("dpmpp_2m_karras"));
        r.sampler = SamplerKind::Lcm;
        r.schedule = ScheduleKind::Default;
        r.steps = 4;
        r.cfg = 1.0;
        assert_eq!(format_parameters(&r), expected_text("lcm"));
        // Samplers A1111 runs on its own timesteps ignore the setting: "Automatic", as A1111
        // writes it.
        let mut r = recipe();
        r.sampler = SamplerKind::Pndm;
        assert_eq!(format_parameters(&r), expected_text("plms"));
    }

    #[test]
    fn unipc_names_its_variant() {
        let mut r = recipe();
        r.sampler = SamplerKind::UniPc;
        let text = format_parameters(&r);
        assert_eq!(text, expected_text("unipc"));
        assert!(text.contains(", UniPC variant: bh2, Version: "), "{text}");
    }

    #[test]
    fn an_empty_prompt_keeps_the_newline_comfyui_looks_for() {
        // ComfyUI's importA1111 needs "\nNegative prompt:" before "\nSteps:".
        let mut r = recipe();
        r.prompt = String::new();
        r.negative_prompt = "blurry".into();
        let text = format_parameters(&r);
        assert_eq!(text, expected_text("empty_prompt_with_negative"));
        assert!(
            text.starts_with("\nNegative prompt: blurry\nSteps: "),
            "{text}"
        );
    }

    #[test]
    fn a_vae_replacement_is_named_after_the_model_as_a1111_does() {
        let mut r = recipe();
        r.model.vae = Some(ModelSource::Hub {
            repo: "madebyollin/sdxl-vae-fp16-fix".into(),
            revision: "0".repeat(40),
        });
        r.model.files.insert(
            "vae-override/diffusion_pytorch_model.safetensors".into(),
            "235745af8d86bf4a4c1b5b4f529868b37019a10f7c0b2e79ad0abca3a22bc6e1".into(),
        );
        let text = format_parameters(&r);
        assert!(
            text.contains(
                "Model: sd15, VAE hash: 235745af8d, VAE: madebyollin/sdxl-vae-fp16-fix, RNG: CPU"
            ),
            "{text}"
        );
    }

    #[test]
    fn philox_is_a1111s_nv_source() {
        let mut r = recipe();
        r.rng = RngKind::Philox;
        let text = format_parameters(&r);
        assert!(text.contains(", RNG: NV, "), "{text}");
    }

    #[test]
    fn negative_prompt_whole_cfg_and_chacha() {
        let mut r = recipe();
        r.negative_prompt = "blurry, lowres".into();
        r.cfg = 7.0;
        r.rng = RngKind::Chacha;
        r.sampler = SamplerKind::Euler;
        r.seed = u64::MAX;
        r.width = 768;
        assert_eq!(
            format_parameters(&r),
            expected_text("negative_prompt_whole_cfg_and_chacha")
        );
    }

    #[test]
    fn ddim_with_eta_and_quoted_model_name() {
        let mut r = recipe();
        r.sampler = SamplerKind::Ddim;
        r.eta = 0.3;
        r.cfg = 12.25;
        r.steps = 50;
        // No preset and no hashed files: the name is the local folder's, and it holds `:` and
        // `,`, so it must be quoted for A1111's `re_param` not to split it.
        r.model = model(None, None);
        r.model.source = ModelSource::Local {
            path: "/models/my model: v2, final".into(),
        };
        let text = format_parameters(&r);
        assert_eq!(text, expected_text("ddim_with_eta_and_quoted_model_name"));
        assert!(text.contains("Model: \"my model: v2, final\""));
        assert!(!text.contains("Model hash"));
    }

    #[test]
    fn ddim_tiny_eta_and_eta_only_for_ddim() {
        let mut r = recipe();
        r.sampler = SamplerKind::Ddim;
        r.eta = 0.00001;
        assert_eq!(format_parameters(&r), expected_text("ddim_tiny_eta"));
        r.eta = 0.0;
        assert!(!format_parameters(&r).contains("Eta DDIM"));
        // eta is DDIM's alone: Euler a never reports it.
        r.eta = 0.5;
        r.sampler = SamplerKind::EulerAncestral;
        assert!(!format_parameters(&r).contains("Eta DDIM"));
    }

    #[test]
    fn multiline_and_unicode_prompts() {
        let mut r = recipe();
        r.prompt = "  \n灯台 at dawn 🌅, \"golden\" hour\nsecond line".into();
        r.negative_prompt = "naïve: ugly\nmore".into();
        assert_eq!(
            format_parameters(&r),
            expected_text("multiline_and_unicode_prompts")
        );
    }

    #[test]
    fn empty_prompts() {
        let mut r = recipe();
        r.prompt = String::new();
        let text = format_parameters(&r);
        assert_eq!(text, expected_text("empty_prompts"));
        // The empty negative prompt still has its line.
        assert!(text.starts_with("\nNegative prompt: \nSteps: "), "{text}");
    }

    #[test]
    fn quote_matches_python_json_dumps() {
        let inputs = [
            "plain",
            "a\"b\\c",
            "a, b",
            "x:\"q\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}é🌅",
        ];
        let got: Vec<String> = inputs.iter().map(|s| quote(s)).collect();
        assert_eq!(got, expected_list("quote"));
    }

    #[test]
    fn numbers_match_python() {
        let inputs = [
            7.0,
            0.0,
            7.5,
            0.1,
            0.00001,
            0.0001,
            1.5e-7,
            12.345678901234567,
        ];
        let got: Vec<String> = inputs.iter().map(|x| py_number(*x)).collect();
        assert_eq!(got, expected_list("numbers"));
        let got: Vec<String> = [1e16, 123.0, -0.5]
            .iter()
            .map(|x| py_float_repr(*x))
            .collect();
        assert_eq!(got, expected_list("repr"));
    }
}
