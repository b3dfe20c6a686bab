//! The samplers and schedulers against ComfyUI's own KSampler runs on tiny-sd1
//! (../shared/fixtures/wild/comfyui: cases.json and one safetensors file per case, made by
//! ComfyUI 0.3.64 with torch 2.15 on the CPU; see that folder's README), and against diffusers'
//! runs on tiny-sd (../shared/fixtures/parity).
//!
//! * Every ComfyUI case's `sigmas` comes out float32-exact (`schedules_match_comfyui_bit_for_bit`).
//! * torch's CPU randn for the seed is ComfyUI's initial noise and, from a fresh generator, its
//!   ancestral draws (`torch_cpu_stream_is_comfyuis_noise`).
//! * With the real tiny-sd UNet (f32, CPU; the diffusers weights of ../shared/fixtures/tiny-sd,
//!   which wild/checkpoints/verify.json shows equal to tiny-sd1.safetensors tensor for tensor)
//!   run as ComfyUI runs it (`guided_denoise`), the samplers reproduce diffusers' own runs
//!   (`diffusers_cross_checks`).
//! * End to end against ComfyUI (`*_matches_comfyui`, ignored: see `COMFY_GAP`): ComfyUI's
//!   conditioning straight from the case file (so its float16 text encoder does not enter),
//!   the case's `init_noise` through `noise_scaling`, the recorded `noise_draws` for ancestral
//!   cases; the final latent / 0.18215 (comfy/latent_formats.py `SD15.process_out`) against the
//!   case's `samples`, relative to max |samples|.

use super::sigmas::{div_scalar, ModelSampling};
use super::{guided_denoise, KSampler, Scheduler};
use crate::models::{ModelInfo, ModelSpec};
use crate::nets::lora;
use crate::nets::unet::UNet;
use crate::noise::{BatchNoise, NoiseSource, TorchCpuNoise};
use crate::recipe::ModelDType;
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
}

fn comfy_dir() -> PathBuf {
    shared().join("wild/comfyui")
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(comfy_dir().join("cases.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn case(id: &str) -> Value {
    cases()
        .into_iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

fn tensors(c: &Value) -> HashMap<String, Tensor> {
    let file = comfy_dir().join(c["file"].as_str().unwrap());
    candle_core::safetensors::load(file, &Device::Cpu).unwrap()
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Every case's schedule, from its scheduler and sampler names, equal to ComfyUI's float32
/// sigmas bit for bit (both the case file's tensor and cases.json's list).
#[test]
fn schedules_match_comfyui_bit_for_bit() {
    let ms = ModelSampling::sd1();
    for c in cases() {
        let id = c["id"].as_str().unwrap();
        let scheduler = Scheduler::from_name(c["scheduler"].as_str().unwrap()).unwrap();
        let steps = c["steps"].as_u64().unwrap() as usize;
        let sampler = c["sampler_name"].as_str().unwrap();
        // uni_pc and dpmpp_2m_sde are not implemented here; uni_pc discards the penultimate
        // sigma as dpm_2 does.
        let discard = matches!(
            sampler,
            "uni_pc" | "uni_pc_bh2" | "dpm_2" | "dpm_2_ancestral"
        );
        let got = super::ksampler_sigmas(&ms, scheduler, steps, discard).unwrap();
        let want_json: Vec<f32> = c["sigmas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let want_file = f32s(&tensors(&c)["sigmas"]);
        assert_eq!(want_json, want_file, "{id}: cases.json vs the case file");
        assert_eq!(got, want_file, "{id}: {} {steps} steps", scheduler.name());
        println!("{id}: {} sigmas bit-identical", got.len());
    }
}

/// Replays recorded draws, one per call, checking each call's size.
struct Replay {
    draws: Vec<Vec<f32>>,
    next: usize,
}

impl NoiseSource for Replay {
    fn randn(&mut self, n: usize) -> Vec<f32> {
        let d = self
            .draws
            .get(self.next)
            .expect("more draws than ComfyUI made")
            .clone();
        assert_eq!(d.len(), n);
        self.next += 1;
        d
    }
}

/// torch's CPU randn seeded with the KSampler seed gives ComfyUI's initial noise and then,
/// call after call, the ancestral draws (`default_noise_sampler` is the same stream).
#[test]
fn torch_cpu_stream_is_comfyuis_noise() {
    for id in [
        "c_euler_ancestral_normal_s42",
        "c_euler_ancestral_karras_8st_sbig",
    ] {
        let c = case(id);
        let t = tensors(&c);
        let seed = c["seed"].as_u64().unwrap();
        let mut source = TorchCpuNoise::new(seed);
        let init = f32s(&t["init_noise"]);
        assert_eq!(source.randn(init.len()), init, "{id}: init_noise");
        let draws = &t["noise_draws"];
        let k = draws.dim(0).unwrap();
        assert_eq!(k, c["n_noise_draws"].as_u64().unwrap() as usize);
        assert_eq!(
            f32s(&draws.get(0).unwrap()),
            init,
            "{id}: first draw = init_noise"
        );
        // ComfyUI's noise sampler is a second generator with the same seed: its draws are the
        // stream from the start again.
        let mut again = TorchCpuNoise::new(seed);
        for i in 0..k {
            assert_eq!(
                again.randn(init.len()),
                f32s(&draws.get(i).unwrap()),
                "{id}: draw {i}"
            );
        }
        println!("{id}: init_noise and {k} draws bit-identical");
    }
}

/// The tiny-sd UNet in f32 on the CPU, with the case's LoRA fused into it when it has one.
fn unet(lora_strength: Option<f64>) -> UNet {
    let dev = Device::Cpu;
    let info = ModelInfo::open(&ModelSpec::Local(shared().join("tiny-sd"))).unwrap();
    let weights = info.weights(ModelDType::F32).unwrap();
    let vb = seedling_kernels::mmap::var_builder(&weights.unet, DType::F32, &dev).unwrap();
    let vb = match lora_strength {
        None => vb,
        Some(strength) => {
            let file = crate::models::lora::read(
                &shared().join("wild/loras/tiny-sd1-lora.safetensors"),
                &dev,
            )
            .unwrap();
            let names = |path: &Path| {
                candle_core::safetensors::load(path, &dev)
                    .unwrap()
                    .into_iter()
                    .map(|(k, v)| (k, v.dims().to_vec()))
                    .collect()
            };
            // The LoRA has text-encoder layers too; resolve against both, keep the UNet's.
            let targets = BTreeMap::from([
                (crate::models::lora::Network::Unet, names(&weights.unet)),
                (
                    crate::models::lora::Network::TextEncoder,
                    names(&weights.text_encoder),
                ),
            ]);
            let resolved: Vec<_> = crate::models::lora::resolve(&file, &targets)
                .unwrap()
                .into_iter()
                .filter(|(net, _, _)| *net == crate::models::lora::Network::Unet)
                .collect();
            let deltas = lora::deltas([(resolved, strength, strength)]).unwrap();
            lora::with_deltas(vb, deltas[&crate::models::lora::Network::Unet].clone())
        }
    };
    UNet::new(vb, &info.unet.spec().unwrap()).unwrap()
}

/// Runs one case through the sampler and returns (max |Δ|, max |Δ| / max |samples|).
fn run_case(id: &str) -> (f32, f32) {
    let c = case(id);
    let t = tensors(&c);
    let ms = ModelSampling::sd1();
    let sampler = KSampler::from_name(c["sampler_name"].as_str().unwrap()).unwrap();
    let sigmas = f32s(&t["sigmas"]);
    let cfg = c["cfg"].as_f64().unwrap();
    let lora_strength = c["lora"].as_object().map(|l| {
        l.get("strength_model")
            .and_then(Value::as_f64)
            .unwrap_or(0.8)
    });
    let net = unet(lora_strength);
    let (pos, neg) = (&t["cond_positive"], &t["cond_negative"]);
    let guided = !super::cfg_is_one(cfg);
    let context = if guided {
        Tensor::cat(&[pos, neg], 0).unwrap()
    } else {
        pos.clone()
    };
    let mut eps = |input: &Tensor, timestep: f64| net.forward(input, timestep, &context, None);
    let mut calls = 0usize;
    let mut model = |x: &Tensor, sigma: f32| {
        calls += 1;
        guided_denoise(&ms, &mut eps, x, sigma, cfg)
    };
    let x = ms.noise_scaling(sigmas[0], &t["init_noise"]).unwrap();
    let draws: Vec<Vec<f32>> = match t.get("noise_draws") {
        Some(d) => (0..d.dim(0).unwrap())
            .map(|i| f32s(&d.get(i).unwrap()))
            .collect(),
        None => Vec::new(),
    };
    let n_draws = draws.len();
    let mut noise = BatchNoise::new(vec![Box::new(Replay { draws, next: 0 })]);
    let out = sampler.sample(&mut model, x, &sigmas, &mut noise).unwrap();
    let latent = div_scalar(&out, 0.18215).unwrap();
    let want = &t["samples"];
    let diff = (&latent - want).unwrap().abs().unwrap();
    let max_abs = diff
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let scale = want.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
    let scale = scale.to_scalar::<f32>().unwrap();
    println!(
        "{id}: {} {} steps, {calls} model calls, {n_draws} draws replayed: \
         max |Δ| = {max_abs:.3e} (max |samples| = {scale:.3}), relative {:.3e}",
        sampler.name(),
        sigmas.len() - 1,
        max_abs / scale
    );
    (max_abs, max_abs / scale)
}

/// ComfyUI's fixtures do not come out of the tiny-sd UNet as seedling (and diffusers) run it:
/// diffusers' own Euler result for the same prompt, seed and sigmas (../parity
/// a_euler_64x64_10st_g7.5_s42, which these samplers reproduce to 5e-6, see
/// `diffusers_cross_checks`) is 37% (of max |samples|) away from ComfyUI's euler/normal
/// `samples`, where init scaling (sqrt(1 + σ²) vs σ: 2e-3) and the float16 conditioning
/// (1.5e-4) explain only a fraction of a percent. The gap is in ComfyUI's UNet on the patched
/// tiny model (or the fixture), not in the sampling: these tests print the figures and are
/// ignored until it is understood. Run them with `--ignored --nocapture`.
const TOL: f32 = 1e-3;
const COMFY_GAP: &str = "ComfyUI's tiny-sd UNet output differs from seedling's and diffusers' \
    by ~30% (see COMFY_GAP in parity_tests.rs); prints the figures";

fn check(id: &str) {
    let (_, rel) = run_case(id);
    assert!(rel < TOL, "{id}: relative error {rel:e}");
}

#[test]
#[ignore = "ComfyUI's tiny-sd UNet differs from diffusers' (see TOL's comment)"]
fn euler_normal_matches_comfyui() {
    check("c_euler_normal_s42");
}

#[test]
#[ignore = "ComfyUI's tiny-sd UNet differs from diffusers' (see TOL's comment)"]
fn euler_karras_cfg1_matches_comfyui() {
    check("c_euler_karras_cfg1_sbig");
}

#[test]
#[ignore = "ComfyUI's tiny-sd UNet differs from diffusers' (see TOL's comment)"]
fn euler_ancestral_normal_matches_comfyui() {
    check("c_euler_ancestral_normal_s42");
}

#[test]
#[ignore = "ComfyUI's tiny-sd UNet differs from diffusers' (see TOL's comment)"]
fn euler_ancestral_karras_matches_comfyui() {
    check("c_euler_ancestral_karras_8st_sbig");
}

#[test]
#[ignore = "ComfyUI's tiny-sd UNet differs from diffusers' (see TOL's comment)"]
fn heun_simple_matches_comfyui() {
    check("c_heun_simple_8st_s42");
}

#[test]
#[ignore = "ComfyUI's tiny-sd UNet differs from diffusers' (see TOL's comment)"]
fn dpmpp_2m_karras_matches_comfyui() {
    check("c_dpmpp_2m_karras_s42");
}

#[test]
#[ignore = "ComfyUI's tiny-sd UNet differs from diffusers' (see TOL's comment)"]
fn lms_exponential_matches_comfyui() {
    check("c_lms_exponential_s42");
}

#[test]
#[ignore = "ComfyUI's tiny-sd UNet differs from diffusers' (see TOL's comment)"]
fn uni_pc_sgm_uniform_matches_comfyui() {
    check("c_uni_pc_sgm_uniform_s42");
}

#[test]
#[ignore = "ComfyUI's tiny-sd UNet differs from diffusers' (see TOL's comment)"]
fn euler_weighted_embedding_lora_match_comfyui() {
    let rels: Vec<(&str, f32)> = [
        "c_euler_normal_s42_weighted",
        "c_euler_normal_s42_embedding",
        "c_euler_normal_s42_lora0.8",
    ]
    .into_iter()
    .map(|id| (id, run_case(id).1))
    .collect();
    for (id, rel) in rels {
        assert!(rel < TOL, "{id}: relative error {rel:e}");
    }
}

/// max |a − b| / max |b|.
fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let max = |t: &Tensor| {
        t.abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    max(&(a - b).unwrap()) / max(b)
}

/// Where k-diffusion's sampler and a diffusers scheduler are the same algorithm, these samplers
/// (with `guided_denoise` and the UNet) reproduce diffusers' own runs in ../parity from the
/// recorded sigmas, initial noise and float32
/// prompt embeddings: Euler, Euler ancestral (the draws: torch's CPU stream for seed 42 after
/// the initial noise, as diffusers draws them; diffusers makes a 10th draw at the last step with
/// weight 0) and DPM-Solver++(2M) (midpoint, lower_order_final: the same update in
/// λ = −log σ). This pins the samplers and the denoiser wiring independently of ComfyUI's
/// model. Relative to max |final_latents|.
#[test]
fn diffusers_cross_checks() {
    let net = unet(None);
    let ms = ModelSampling::sd1();
    for (id, sampler, tol) in [
        ("a_euler_64x64_10st_g7.5_s42", KSampler::Euler, 2e-5),
        (
            "a_euler_a_64x64_10st_g7.5_s42",
            KSampler::EulerAncestral,
            2e-5,
        ),
        ("a_dpmpp2m_64x64_10st_g7.5_s42", KSampler::Dpmpp2m, 2e-5),
        (
            "a_dpmpp2m_karras_64x64_10st_g7.5_s42",
            KSampler::Dpmpp2m,
            2e-5,
        ),
    ] {
        let p = candle_core::safetensors::load(
            shared().join(format!("parity/{id}.safetensors")),
            &Device::Cpu,
        )
        .unwrap();
        let sigmas: Vec<f32> = p["sigmas"]
            .to_vec1::<f64>()
            .unwrap()
            .iter()
            .map(|s| *s as f32)
            .collect();
        let context = Tensor::cat(&[&p["prompt_embeds"], &p["negative_prompt_embeds"]], 0).unwrap();
        let mut eps = |input: &Tensor, timestep: f64| net.forward(input, timestep, &context, None);
        let mut model = |x: &Tensor, sigma: f32| guided_denoise(&ms, &mut eps, x, sigma, 7.5);
        let init = &p["init_noise"];
        let mut stream = TorchCpuNoise::new(42);
        assert_eq!(stream.randn(init.elem_count()), f32s(init));
        let mut noise = BatchNoise::new(vec![Box::new(stream)]);
        // diffusers' Euler samplers start from noise·σ_max; DPM-Solver works in the VP latent
        // x/√(1 + σ²) from the noise itself, which is noise·√(1 + σ_max²) here, ComfyUI's
        // noise scaling.
        let x = match sampler {
            KSampler::Dpmpp2m => ms.noise_scaling(sigmas[0], init).unwrap(),
            _ => super::sigmas::mul_scalar(init, sigmas[0]).unwrap(),
        };
        let out = sampler.sample(&mut model, x, &sigmas, &mut noise).unwrap();
        let rel = rel_err(&out, &p["final_latents"]);
        println!(
            "{id}: {} vs diffusers final_latents: relative {rel:.3e}",
            sampler.name()
        );
        assert!(rel < tol, "{id}: {rel:e}");
    }
    // The gap to ComfyUI, for the record.
    let p = candle_core::safetensors::load(
        shared().join("parity/a_euler_64x64_10st_g7.5_s42.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let diffusers = div_scalar(&p["final_latents"], 0.18215).unwrap();
    let comfy = &tensors(&case("c_euler_normal_s42"))["samples"];
    println!(
        "diffusers' euler vs ComfyUI's euler/normal samples: relative {:.3e} ({COMFY_GAP})",
        rel_err(&diffusers, comfy)
    );
}

/// A diagnostic for `COMFY_GAP`: seedling's tiny-sd VAE decoding ComfyUI's own `samples`
/// (ComfyUI's VAEDecode input) against ComfyUI's `decoded_image`. It is not exact either
/// (max |Δ| 2.2e-2 on 0..1 pixels for c_euler_normal_s42, where seedling's VAE matches
/// diffusers' to float rounding), so ComfyUI's patched tiny-sd differs from diffusers' in the
/// VAE as well as in the UNet.
#[test]
#[ignore = "ComfyUI's tiny-sd VAE differs from diffusers' too; prints the figures"]
fn comfyui_samples_decode_to_comfyuis_image() {
    let dev = Device::Cpu;
    let info = ModelInfo::open(&ModelSpec::Local(shared().join("tiny-sd"))).unwrap();
    let weights = info.weights(ModelDType::F32).unwrap();
    let (vae, _) = crate::nets::Components::load_vae(&info, &weights, DType::F32, &dev).unwrap();
    let mut worst = 0f32;
    for id in ["c_euler_normal_s42", "c_heun_simple_8st_s42"] {
        let t = tensors(&case(id));
        let decoded = vae.decode(&t["samples"]).unwrap();
        // comfy/sd.py VAE.decode: clamp((x + 1) / 2, 0, 1), channels last.
        let image = ((decoded + 1.0).unwrap() / 2.0)
            .unwrap()
            .clamp(0f32, 1f32)
            .unwrap()
            .permute((0, 2, 3, 1))
            .unwrap();
        let diff = (&image - &t["decoded_image"]).unwrap().abs().unwrap();
        let max = diff.flatten_all().unwrap().max(0).unwrap();
        let max = max.to_scalar::<f32>().unwrap();
        println!("{id}: seedling's VAE on ComfyUI's samples vs decoded_image: max |Δ| {max:.3e}");
        worst = worst.max(max);
    }
    assert!(worst < 1e-4, "max |Δ| {worst:e}");
}
