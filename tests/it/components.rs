//! Each network against diffusers' own tensors for the same inputs (../shared/fixtures/parity*):
//! the text encoder from token ids, the UNet on the recorded step-0 input, the VAE on the
//! recorded final latents. These isolate a divergence to one component before the end-to-end
//! parity tests (tests/it/parity.rs) look at whole images.

use crate::common::shared;
use candle_core::{DType, Device, Tensor};
use seedling::models::{ModelInfo, ModelSpec};
use seedling::nets::Components;
use seedling::recipe::ModelDType;
use std::collections::HashMap;

fn load(model: &str) -> (ModelInfo, Components) {
    let info = ModelInfo::open(&ModelSpec::Local(shared(&format!("fixtures/{model}")))).unwrap();
    let weights = info.weights(ModelDType::F32).unwrap();
    let comps = Components::load(&info, &weights, ModelDType::F32, &Device::Cpu).unwrap();
    (info, comps)
}

fn tensors(rel: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(shared(rel), &Device::Cpu).unwrap()
}

/// max |a − b| / max |b|: the error relative to the tensor's scale.
fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let diff = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let scale = b
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    diff / scale
}

fn ids(t: &Tensor) -> Tensor {
    t.to_dtype(DType::U32).unwrap()
}

// f32 reference vs f32 candle; differences come from summation order only.
const TOL: f32 = 1e-4;

#[test]
fn text_encoder_matches_transformers() {
    for (model, case) in [
        ("tiny-sd", "parity/a_ddim_64x64_10st_g7.5_s42.safetensors"),
        (
            "tiny-sd2v",
            "parity-sd2v/sd2v_ddim_64x64_10st_g7.5_s42.safetensors",
        ),
    ] {
        let (_, c) = load(model);
        let t = tensors(&format!("fixtures/{case}"));
        for (ids_key, emb_key) in [
            ("input_ids", "prompt_embeds"),
            ("neg_input_ids", "negative_prompt_embeds"),
        ] {
            let out = c
                .text
                .model
                .forward(&ids(&t[ids_key]))
                .unwrap()
                .last_hidden_state;
            let err = rel_err(&out, &t[emb_key]);
            assert!(err < TOL, "{model} {emb_key}: relative error {err}");
        }
    }
}

#[test]
fn tokenizer_gives_the_reference_ids() {
    for (model, case) in [
        ("tiny-sd", "parity/a_ddim_64x64_10st_g7.5_s42.safetensors"),
        (
            "tiny-sd2v",
            "parity-sd2v/sd2v_ddim_64x64_10st_g7.5_s42.safetensors",
        ),
    ] {
        let (info, _) = load(model);
        let t = tensors(&format!("fixtures/{case}"));
        let tok = info.tokenizer().unwrap();
        let want: Vec<i64> = t["input_ids"].flatten_all().unwrap().to_vec1().unwrap();
        let got = tok.encode("a red apple on a table").unwrap().ids;
        assert_eq!(
            got.iter().map(|&i| i as i64).collect::<Vec<_>>(),
            want,
            "{model}"
        );
        let want: Vec<i64> = t["neg_input_ids"].flatten_all().unwrap().to_vec1().unwrap();
        let got = tok.encode("").unwrap().ids;
        assert_eq!(
            got.iter().map(|&i| i as i64).collect::<Vec<_>>(),
            want,
            "{model} negative"
        );
    }
}

#[test]
fn unet_matches_diffusers_at_step_zero() {
    // SD2-style: the case file records the exact UNet inputs and output.
    let (_, c) = load("tiny-sd2v");
    let t = tensors("fixtures/parity-sd2v/sd2v_ddim_64x64_10st_g7.5_s42.safetensors");
    let ts = t["step0_unet_t"]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()[0] as f64;
    let out = c
        .unet
        .forward(
            &t["step0_unet_in"],
            ts,
            &t["step0_encoder_hidden_states"],
            None,
        )
        .unwrap();
    let err_sd2 = rel_err(&out, &t["step0_unet_out"]);

    // SD1-style: inputs from the trace, context from the case file ([uncond, cond]).
    let (_, c) = load("tiny-sd");
    let case = tensors("fixtures/parity/a_ddim_64x64_10st_g7.5_s42.safetensors");
    let trace = tensors("fixtures/parity/traces/a_ddim_64x64_10st_g7.5_s42.safetensors");
    let context = Tensor::cat(
        &[&case["negative_prompt_embeds"], &case["prompt_embeds"]],
        0,
    )
    .unwrap();
    let t0 = case["timesteps"].to_vec1::<f64>().unwrap()[0];
    let out = c
        .unet
        .forward(&trace["step0_model_input"], t0, &context, None)
        .unwrap();
    let err = rel_err(&out, &trace["step0_unet_out"]);
    assert!(err < TOL, "tiny-sd unet: relative error {err}");
    assert!(err_sd2 < TOL, "tiny-sd2v unet: relative error {err_sd2}");
}

#[test]
fn vae_decoder_matches_diffusers() {
    for (model, case) in [
        ("tiny-sd", "parity/a_ddim_64x64_10st_g7.5_s42.safetensors"),
        (
            "tiny-sd2v",
            "parity-sd2v/sd2v_ddim_64x64_10st_g7.5_s42.safetensors",
        ),
    ] {
        let (info, c) = load(model);
        let t = tensors(&format!("fixtures/{case}"));
        let latents = (&t["final_latents"] / info.vae.scaling_factor).unwrap();
        let out = c.vae.decode(&latents).unwrap();
        let err = rel_err(&out, &t["decoded"]);
        assert!(err < TOL, "{model} vae: relative error {err}");
    }
}

/// SDXL (tiny-sdxl vs StableDiffusionXLPipeline): two encoders' penultimate states
/// concatenated and the pooled projection; the UNet with pooled + size conditioning; the VAE
/// with SDXL's scaling factor.
#[test]
fn sdxl_components_match_diffusers() {
    let (info, c) = load("tiny-sdxl");
    let t = tensors("fixtures/parity-sdxl/sdxl_euler_64x64_10st_g5.0_s42.safetensors");
    let cond = c
        .text
        .condition("a red apple on a table", "prompt", false, &[])
        .unwrap();
    let err = rel_err(&cond.context, &t["prompt_embeds"]);
    assert!(err < TOL, "sdxl prompt_embeds: relative error {err}");
    let err = rel_err(cond.pooled.as_ref().unwrap(), &t["pooled_prompt_embeds"]);
    assert!(err < TOL, "sdxl pooled: relative error {err}");
    // The case used no negative prompt: force_zeros_for_empty_prompt gives exact zeros.
    assert!(info.force_zeros_for_empty_prompt);
    let zero = t["negative_prompt_embeds"]
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(zero, 0.0);

    let ts = t["step0_unet_t"]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()[0] as f64;
    let ids: Vec<f32> = t["add_time_ids"].flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(&ids[..6], &[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]);
    let added = seedling::nets::unet::AddedCond {
        text_embeds: t["add_text_embeds"].clone(),
        time_ids: ids.iter().map(|&v| f64::from(v)).collect(),
    };
    let out = c
        .unet
        .forward(
            &t["step0_unet_in"],
            ts,
            &t["step0_encoder_hidden_states"],
            Some(&added),
        )
        .unwrap();
    let err = rel_err(&out, &t["step0_unet_out"]);
    assert!(err < TOL, "sdxl unet: relative error {err}");

    assert_eq!(info.vae.scaling_factor, 0.13025);
    let latents = (&t["final_latents"] / info.vae.scaling_factor).unwrap();
    let err = rel_err(&c.vae.decode(&latents).unwrap(), &t["decoded"]);
    assert!(err < TOL, "sdxl vae: relative error {err}");
}
