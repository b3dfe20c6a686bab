//! Golden tests of every sampler (DDIM, Euler, Euler-ancestral, DPM++ 2M with and without
//! Karras sigmas, UniPC, PNDM, LCM) against reference runs of diffusers 0.42.1 (torch 2.15,
//! CPU, float32) in `../shared/fixtures` (see its README).
//!
//! Every expected number here comes from the fixtures:
//! * `parity/cases.json`, `parity-sd2v/cases.json`: per case the resolved scheduler config
//!   (`scheduler_config`), `timesteps`, `sigmas`, `init_noise_sigma`, `n_scheduler_noise_draws`;
//! * `parity/traces/<id>.safetensors`: `step_latents[i]` (latents handed to step i),
//!   `step_noise_pred[i]` (guided model output of step i), `step_noise_draws` (every noise
//!   tensor the scheduler drew, in order), `step0_model_input` (scale_model_input at step 0,
//!   `cat([latents] * 2)` with CFG);
//! * `<id>.safetensors`: `init_noise` (the draw before `* init_noise_sigma`), `final_latents`,
//!   and for the SD2 cases `step0_unet_in` / `step0_unet_out` / `step0_unet_t`.
//!
//! The step checks are teacher-forced: step i is fed diffusers' own latents and model output,
//! and a replay noise source returns diffusers' draws, so each step is compared on its own.
//! A free-running chain (our latents fed forward, diffusers' model outputs) is checked too.
//! Deviations are measured relative to the latent scale, max |reference|, and printed
//! (`cargo test --test it sampler_golden:: -- --nocapture`).

use candle_core::{Device, Tensor};
use seedling::noise::{BatchNoise, NoiseSource};
use seedling::sampler::{self, schedule, SamplerKind, ScheduleKind, SchedulerConfig};
use serde_json::Value;
use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures");

/// Schedule quantities: relative tolerance (diffusers computes them in float32; see
/// `sampler::schedule` for the precision argument — observed ≤ 2.5e-7).
const SCHEDULE_RTOL: f64 = 1e-5;
/// One step, relative to the latent scale: float32 rounding differences only (observed ~1e-7).
const STEP_RTOL: f64 = 1e-5;
/// The free-running chain over all steps (errors may compound a little).
const CHAIN_RTOL: f64 = 1e-4;

/// Replays recorded noise draws in order and counts them.
struct Replay {
    draws: Vec<Vec<f32>>,
    used: Rc<Cell<usize>>,
}

impl NoiseSource for Replay {
    fn randn(&mut self, n: usize) -> Vec<f32> {
        let i = self.used.get();
        let draw = self.draws.get(i).unwrap_or_else(|| {
            panic!(
                "the sampler asked for draw {i}, diffusers made only {}",
                self.draws.len()
            )
        });
        assert_eq!(draw.len(), n, "draw {i} has the wrong size");
        self.used.set(i + 1);
        draw.clone()
    }
}

fn replay(draws: Option<&Tensor>) -> (BatchNoise, Rc<Cell<usize>>) {
    let draws = match draws {
        Some(t) => (0..t.dim(0).unwrap())
            .map(|i| t.get(i).unwrap().flatten_all().unwrap().to_vec1().unwrap())
            .collect(),
        None => Vec::new(),
    };
    let used = Rc::new(Cell::new(0));
    let source = Replay {
        draws,
        used: used.clone(),
    };
    (BatchNoise::new(vec![Box::new(source)]), used)
}

/// A case's tensor file; `key` ("file" or "trace_file") names it relative to the case's folder.
fn load(case: &Value, key: &str) -> HashMap<String, Tensor> {
    let dir = case["_dir"].as_str().unwrap();
    let rel = case[key].as_str().unwrap();
    candle_core::safetensors::load(format!("{FIXTURES}/{dir}/{rel}"), &Device::Cpu)
        .unwrap_or_else(|e| panic!("loading {dir}/{rel}: {e}"))
}

/// The cases of `<dir>/cases.json`, each tagged with `_dir`.
fn cases(dir: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{dir}/cases.json")).unwrap();
    // Python's json writes -Infinity (DPM++'s lambda_min_clipped, a key no test here reads);
    // serde_json rejects it.
    let v: Value = serde_json::from_str(&text.replace("-Infinity", "null")).unwrap();
    let mut cases = v["cases"].as_array().unwrap().clone();
    for c in &mut cases {
        c["_dir"] = Value::from(dir);
    }
    cases
}

/// The scheduler_config.json a case was built from (`<class>.from_config(that file)`).
fn config_path(case: &Value) -> String {
    match case["scheduler_base_config"].as_str() {
        None => format!("{FIXTURES}/tiny-sd/scheduler/scheduler_config.json"),
        Some("model") => format!("{FIXTURES}/tiny-sd2v/scheduler/scheduler_config.json"),
        Some("sd_turbo") => format!("{FIXTURES}/parity-sd2v/scheduler_config_sd_turbo.json"),
        Some(other) => panic!("unknown scheduler_base_config {other}"),
    }
}

/// (max |a − b|, max |b|) over all elements.
fn deviation(ours: &Tensor, reference: &Tensor) -> (f64, f64) {
    assert_eq!(ours.dims(), reference.dims());
    let a: Vec<f32> = ours.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = reference.flatten_all().unwrap().to_vec1().unwrap();
    let dev = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs() as f64).fold(0.0, f64::max);
    (dev, scale)
}

fn rel_close(ours: f64, reference: f64, rtol: f64) -> bool {
    (ours - reference).abs() <= rtol * reference.abs().max(1e-12)
}

/// Compares our resolution of the config file with the config diffusers reports it used.
fn check_resolution(
    case: &Value,
    kind: SamplerKind,
    schedule: ScheduleKind,
    cfg: &SchedulerConfig,
) {
    let id = case["id"].as_str().unwrap();
    let want = &case["scheduler_config"];
    let r = cfg.resolve(kind).unwrap();
    let f = |k: &str| want[k].as_f64().unwrap();
    let s = |k: &str| want[k].as_str().unwrap().to_string();
    let b = |k: &str| want[k].as_bool().unwrap();
    assert_eq!(
        r.num_train_timesteps as f64,
        f("num_train_timesteps"),
        "{id}"
    );
    assert_eq!(r.beta_schedule.name(), s("beta_schedule"), "{id}");
    match &r.beta_schedule {
        schedule::BetaSchedule::Linear { start, end }
        | schedule::BetaSchedule::ScaledLinear { start, end } => {
            assert_eq!((*start, *end), (f("beta_start"), f("beta_end")), "{id}");
        }
        other => panic!("{id}: unexpected {other:?}"),
    }
    assert!(want["trained_betas"].is_null(), "{id}");
    assert_eq!(r.prediction_type.name(), s("prediction_type"), "{id}");
    // PNDM has no rescale_betas_zero_snr; LCM ignores timestep_spacing (checked by timesteps).
    if kind != SamplerKind::Pndm {
        assert_eq!(
            r.rescale_betas_zero_snr,
            b("rescale_betas_zero_snr"),
            "{id}"
        );
    }
    assert_eq!(r.timestep_spacing.name(), s("timestep_spacing"), "{id}");
    assert_eq!(r.steps_offset as f64, f("steps_offset"), "{id}");
    if want.get("use_karras_sigmas").is_some() {
        let karras = r.karras || schedule == ScheduleKind::Karras;
        assert_eq!(karras, b("use_karras_sigmas"), "{id}");
    }
    if want.get("final_sigmas_type").is_some() {
        assert_eq!(r.final_sigmas.name(), s("final_sigmas_type"), "{id}");
    }
    match kind {
        SamplerKind::Ddim | SamplerKind::Lcm => {
            assert_eq!(r.set_alpha_to_one, b("set_alpha_to_one"), "{id}");
            assert!(!b("thresholding"), "{id}");
            let clip = b("clip_sample").then(|| f("clip_sample_range"));
            assert_eq!(r.clip_sample_range, clip, "{id}");
            if kind == SamplerKind::Lcm {
                let orig = r.original_inference_steps as f64;
                assert_eq!(orig, f("original_inference_steps"), "{id}");
                assert_eq!(r.timestep_scaling, f("timestep_scaling"), "{id}");
            }
        }
        SamplerKind::Euler => {
            assert_eq!(s("interpolation_type"), "linear", "{id}");
            assert_eq!(s("timestep_type"), "discrete", "{id}");
        }
        SamplerKind::EulerAncestral => {}
        SamplerKind::DpmPp2m => {
            // What the name dpmpp_2m fixes, and the defaults we implement.
            assert_eq!(s("algorithm_type"), "dpmsolver++", "{id}");
            assert_eq!(f("solver_order"), 2.0, "{id}");
            assert_eq!(s("solver_type"), "midpoint", "{id}");
            assert_eq!(r.lower_order_final, b("lower_order_final"), "{id}");
            assert_eq!(r.euler_at_final, b("euler_at_final"), "{id}");
            assert!(
                !b("thresholding") && want["variance_type"].is_null(),
                "{id}"
            );
        }
        SamplerKind::UniPc => {
            assert_eq!(r.solver_order as f64, f("solver_order"), "{id}");
            assert_eq!(s("solver_type"), "bh2", "{id}");
            assert!(b("predict_x0") && !b("thresholding"), "{id}");
            assert_eq!(r.lower_order_final, b("lower_order_final"), "{id}");
            assert_eq!(want["disable_corrector"].as_array().map(Vec::len), Some(0));
        }
        SamplerKind::Pndm => {
            assert_eq!(r.set_alpha_to_one, b("set_alpha_to_one"), "{id}");
            assert!(b("skip_prk_steps"), "{id}");
        }
        other => panic!("{id}: no diffusers settings are checked for {other} yet"),
    }
}

/// Timesteps (exact where integral), sigmas and init_noise_sigma against the case.
fn check_schedule(
    case: &Value,
    kind: SamplerKind,
    schedule: ScheduleKind,
    cfg: &SchedulerConfig,
) -> Box<dyn sampler::Sampler> {
    let id = case["id"].as_str().unwrap();
    let steps = case["num_inference_steps"].as_u64().unwrap() as usize;
    let eta = case["eta"].as_f64().unwrap();
    let s = sampler::build(kind, schedule, cfg, steps, eta).unwrap();
    let want_t: Vec<f64> = case["timesteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(s.timesteps().len(), want_t.len(), "{id}");
    for (got, want) in s.timesteps().iter().zip(&want_t) {
        if want.fract() == 0.0 {
            assert_eq!(got, want, "{id}: timesteps {:?}", s.timesteps());
        } else {
            assert!(rel_close(*got, *want, 1e-6), "{id}: {got} vs {want}");
        }
    }
    let mut max_rel: f64 = 0.0;
    assert_eq!(
        s.sigmas().is_some(),
        case["sigmas"].is_array(),
        "{id}: sigmas present in exactly the samplers that have them in diffusers"
    );
    if let (Some(want_sigmas), Some(sigmas)) = (case["sigmas"].as_array(), s.sigmas()) {
        assert_eq!(sigmas.len(), want_sigmas.len(), "{id}");
        for (got, want) in sigmas.iter().zip(want_sigmas) {
            let want = want.as_f64().unwrap();
            if want == 0.0 {
                assert_eq!(*got, 0.0, "{id}");
            } else {
                max_rel = max_rel.max((got / want - 1.0).abs());
            }
        }
        assert!(
            max_rel <= SCHEDULE_RTOL,
            "{id}: sigma deviation {max_rel:e}"
        );
    }
    let want_init = case["init_noise_sigma"].as_f64().unwrap();
    let init_rel = (s.init_noise_sigma() / want_init - 1.0).abs();
    assert!(
        init_rel <= SCHEDULE_RTOL,
        "{id}: init_noise_sigma {} vs {want_init}",
        s.init_noise_sigma()
    );
    println!(
        "{id}: timesteps exact; sigmas max rel dev {max_rel:.2e}; init_noise_sigma rel dev {init_rel:.2e}"
    );
    s
}

/// The sampler, schedule and config file of a case. Case ids name DPM++ 2M "dpmpp2m" and
/// its Karras variant "dpmpp2m_karras" (overrides `use_karras_sigmas: true`); our sampler is
/// dpmpp_2m, with `--schedule karras` for the latter.
fn sampler_for(case: &Value) -> (SamplerKind, ScheduleKind, SchedulerConfig) {
    let class = case["scheduler_class"].as_str().unwrap();
    let kind = SamplerKind::from_diffusers_class(class).unwrap();
    let overrides = case["scheduler_overrides"].as_object().unwrap();
    let mut schedule = ScheduleKind::Default;
    for (key, value) in overrides {
        match (key.as_str(), kind) {
            ("algorithm_type", SamplerKind::DpmPp2m) => assert_eq!(value, "dpmsolver++"),
            ("solver_order", SamplerKind::DpmPp2m) => assert_eq!(value, 2),
            ("use_karras_sigmas", _) if value == true => schedule = ScheduleKind::Karras,
            ("use_karras_sigmas", _) => assert_eq!(value, false),
            other => panic!("unexpected override {other:?}"),
        }
    }
    (
        kind,
        schedule,
        SchedulerConfig::from_file(config_path(case)).unwrap(),
    )
}

fn is_ours(case: &Value) -> bool {
    let known = [
        "ddim",
        "euler",
        "euler_a",
        "dpmpp2m",
        "dpmpp2m_karras",
        "unipc",
        "pndm",
        "lcm",
    ];
    known.contains(&case["scheduler"].as_str().unwrap())
}

#[test]
fn parity_schedules_match_diffusers() {
    let all: Vec<Value> = cases("parity")
        .into_iter()
        .chain(cases("parity-sd2v"))
        .filter(is_ours)
        .collect();
    assert_eq!(all.len(), 11, "9 tiny-sd cases + 2 sd2v cases");
    for case in &all {
        let (kind, schedule, cfg) = sampler_for(case);
        check_resolution(case, kind, schedule, &cfg);
        check_schedule(case, kind, schedule, &cfg);
    }
}

/// `scale_model_input(cat([latents] * copies))` at step 0 against diffusers' UNet input.
fn check_scale_input(id: &str, s: &dyn sampler::Sampler, latents0: &Tensor, want: &Tensor) -> f64 {
    let copies = want.dim(0).unwrap() / latents0.dim(0).unwrap();
    let batch = Tensor::cat(&vec![latents0.clone(); copies], 0).unwrap();
    let (dev, scale) = deviation(&s.scale_model_input(&batch, 0).unwrap(), want);
    assert!(
        dev <= STEP_RTOL * scale,
        "{id}: scale_model_input off by {dev:e} (scale {scale})"
    );
    dev / scale
}

#[test]
fn parity_traces_replay_step_by_step() {
    let all = cases("parity");
    assert_eq!(all.iter().filter(|c| is_ours(c)).count(), 9);
    for case in all.iter().filter(|c| is_ours(c)) {
        let id = case["id"].as_str().unwrap();
        let (kind, schedule, cfg) = sampler_for(case);
        let mut s = check_schedule(case, kind, schedule, &cfg);
        let main = load(case, "file");
        let trace = load(case, "trace_file");
        let latents = &trace["step_latents"];
        let preds = &trace["step_noise_pred"];
        let n = s.timesteps().len();
        assert_eq!(latents.dim(0).unwrap(), n, "{id}");

        // Step 0 latents are init_noise * init_noise_sigma.
        let init = main["init_noise"]
            .affine(s.init_noise_sigma(), 0.0)
            .unwrap();
        let (dev, scale) = deviation(&init, &latents.get(0).unwrap());
        assert!(
            dev <= STEP_RTOL * scale,
            "{id}: initial latents off by {dev:e}"
        );
        let scale_dev = check_scale_input(
            id,
            s.as_ref(),
            &latents.get(0).unwrap(),
            &trace["step0_model_input"],
        );

        // Teacher-forced: every step from diffusers' own inputs.
        let (mut noise, used) = replay(trace.get("step_noise_draws"));
        let mut worst: f64 = 0.0;
        for i in 0..n {
            let x = latents.get(i).unwrap();
            let want = if i + 1 < n {
                latents.get(i + 1).unwrap()
            } else {
                main["final_latents"].clone()
            };
            let got = s.step(&preds.get(i).unwrap(), i, &x, &mut noise).unwrap();
            let (dev, scale) = deviation(&got, &want);
            worst = worst.max(dev / scale);
            assert!(
                dev <= STEP_RTOL * scale,
                "{id} step {i}: off by {dev:e} (scale {scale})"
            );
        }
        let want_draws = case["n_scheduler_noise_draws"].as_u64().unwrap() as usize;
        assert_eq!(used.get(), want_draws, "{id}: noise draws");

        // Free-running: our own latents carried from step to step.
        let (mut noise, used) = replay(trace.get("step_noise_draws"));
        let mut x = init;
        for i in 0..n {
            x = s.step(&preds.get(i).unwrap(), i, &x, &mut noise).unwrap();
        }
        assert_eq!(used.get(), want_draws, "{id}: noise draws (chain)");
        let (dev, scale) = deviation(&x, &main["final_latents"]);
        assert!(
            dev <= CHAIN_RTOL * scale,
            "{id}: chained final latents off by {dev:e}"
        );
        println!(
            "{id}: {n} steps, {want_draws} draws; max step dev {worst:.2e}, chained final dev \
             {:.2e}, step-0 scale_model_input dev {scale_dev:.2e} (relative to latent scale)",
            dev / scale
        );
    }
}

/// SD2-style cases: no per-step trace, but the step-0 UNet input, and for the 1-step turbo
/// case (Euler-ancestral, trailing, epsilon, no CFG) the whole run: its one step goes from
/// init_noise * init_noise_sigma with the UNet output and the recorded draw to final_latents.
/// v_prediction (the DDIM case) is covered by hand-computed unit tests in `sampler::ddim`,
/// `sampler::euler` and `sampler::euler_ancestral`: without intermediate latents its steps
/// cannot be replayed here.
#[test]
fn sd2v_cases_match_diffusers() {
    for case in cases("parity-sd2v").iter().filter(|c| is_ours(c)) {
        let id = case["id"].as_str().unwrap();
        let (kind, schedule, cfg) = sampler_for(case);
        let mut s = check_schedule(case, kind, schedule, &cfg);
        let main = load(case, "file");
        let t0: Vec<f32> = main["step0_unet_t"]
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(t0[0] as f64, s.timesteps()[0], "{id}: UNet timestep");
        let init = main["init_noise"]
            .affine(s.init_noise_sigma(), 0.0)
            .unwrap();
        let scale_dev = check_scale_input(id, s.as_ref(), &init, &main["step0_unet_in"]);
        let mut line = format!("{id}: step-0 scale_model_input dev {scale_dev:.2e}");
        if s.timesteps().len() == 1 {
            assert_eq!(
                case["guidance_scale"].as_f64(),
                Some(0.0),
                "{id}: no CFG expected"
            );
            let (mut noise, used) = replay(main.get("step_noise_draws"));
            let got = s
                .step(&main["step0_unet_out"], 0, &init, &mut noise)
                .unwrap();
            assert_eq!(
                used.get() as u64,
                case["n_scheduler_noise_draws"].as_u64().unwrap()
            );
            let (dev, scale) = deviation(&got, &main["final_latents"]);
            assert!(
                dev <= STEP_RTOL * scale,
                "{id}: final latents off by {dev:e} (scale {scale})"
            );
            line += &format!(", one-step final latents dev {:.2e}", dev / scale);
        }
        println!("{line}");
    }
}
