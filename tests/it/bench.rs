//! `seedling bench`: the real binary on tiny-sd, and the random-weight path of `--arch` on
//! tiny-sdxl's configs (the full-size architectures are too big for CI; `#[ignore]`d below).

use crate::common::*;
use seedling::bench::{self, BenchNets, BenchSettings};
use seedling::nets::arch::{random_nets, ArchConfigs};
use seedling::sampler::SchedulerConfig;

const STAGES: [&str; 5] = [
    "text encoding (1 prompt)",
    "unet step, batch 2 (with guidance)",
    "unet step, batch 1 (no guidance)",
    "vae decode",
    "end to end (1 steps, guidance)",
];

#[test]
fn bench_reports_every_stage_as_json() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let o = ok(seedling(h)
        .args([
            "bench",
            "--repeats",
            "2",
            "--steps",
            "1",
            "--json",
            "--model",
        ])
        .arg(shared("fixtures/tiny-sd")));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["width"], 64);
    assert_eq!(report["repeats"], 2);
    assert_eq!(report["cfg"], 7.5);
    let stages = report["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, STAGES);
    for s in stages {
        let runs = s["runs_s"].as_array().unwrap();
        assert_eq!(runs.len(), 2);
        let min = s["min_s"].as_f64().unwrap();
        assert!(min > 0.0 && min <= s["median_s"].as_f64().unwrap());
        if cfg!(target_os = "linux") {
            let peak = s["peak_rss_bytes"].as_u64().unwrap();
            assert!(peak > 1 << 20);
            // The resident set when the stage began cannot exceed the stage's peak.
            let start = s["start_rss_bytes"].as_u64().unwrap();
            assert!(start > 0 && start <= peak, "{start} > {peak}");
        }
    }
}

/// `--vae-only` loads only the VAE and times its decode: one stage, whose resident memory is
/// below the full bench's (no text encoder or UNet weights).
#[test]
fn vae_only_times_the_decode_with_only_the_vae_loaded() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let model = shared("fixtures/tiny-sd");
    let run = |extra: &[&str]| -> serde_json::Value {
        let o = ok(seedling(h)
            .args(["bench", "--repeats", "1", "--steps", "1", "--json"])
            .args(extra)
            .arg("--model")
            .arg(&model));
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    let alone = run(&["--vae-only"]);
    let stages = alone["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 1);
    assert_eq!(stages[0]["name"], "vae decode (VAE alone)");
    assert!(stages[0]["min_s"].as_f64().unwrap() > 0.0);
    if cfg!(target_os = "linux") {
        let full = run(&[]);
        let start = |v: &serde_json::Value, i: usize| v["stages"][i]["start_rss_bytes"].as_u64();
        // The full bench's VAE stage (index 3) begins with every network resident.
        assert!(start(&alone, 0).unwrap() < start(&full, 3).unwrap());
    }
}

#[test]
fn bench_refuses_bad_settings_with_the_fix() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let e = fails(seedling(h).args(["bench", "--arch", "sd15"]));
    assert!(e.contains("--random-weights"), "{e}");
    let e = fails(seedling(h).args(["bench", "--arch", "sd3", "--random-weights"]));
    assert!(
        e.contains("unknown architecture 'sd3'; use one of: sd15, sd21, sdxl"),
        "{e}"
    );
    let e = fails(
        seedling(h)
            .args(["bench", "--width", "101", "--model"])
            .arg(shared("fixtures/tiny-sd")),
    );
    assert!(e.contains("width 101 is not a multiple of"), "{e}");
    let e = fails(
        seedling(h)
            .args(["bench", "--cfg=-1", "--model"])
            .arg(shared("fixtures/tiny-sd")),
    );
    assert!(
        e.contains("--cfg must be a number of at least 0 (at most 1 means no guidance)"),
        "{e}"
    );
}

/// tiny-sdxl's configs in the shape of `models/arch/*.json`.
fn tiny_sdxl_configs() -> ArchConfigs {
    let read = |rel: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(shared(&format!("fixtures/tiny-sdxl/{rel}"))).unwrap(),
        )
        .unwrap()
    };
    serde_json::from_value(serde_json::json!({
        "scheduler": read("scheduler/scheduler_config.json"),
        "unet": read("unet/config.json"),
        "vae": read("vae/config.json"),
        "text_encoder": read("text_encoder/config.json"),
        "text_encoder_2": read("text_encoder_2/config.json"),
    }))
    .unwrap()
}

#[test]
fn random_weights_run_every_stage_of_an_sdxl_architecture() {
    let c = tiny_sdxl_configs();
    let device = candle_core::Device::Cpu;
    let nets = random_nets(&c, candle_core::DType::F32, &device).unwrap();
    let factor = c.vae.scale_factor() as usize;
    let bench_nets = BenchNets {
        text: nets.text.iter().collect(),
        unet: &nets.unet,
        vae: &nets.vae,
        latent_channels: c.unet.in_channels,
        latent_factor: factor,
        scaling_factor: c.vae.scaling_factor,
        scheduler: SchedulerConfig::from_json(&c.scheduler.to_string()).unwrap(),
        dtype: candle_core::DType::F32,
        vae_dtype: candle_core::DType::F32,
        device,
    };
    let settings = BenchSettings {
        width: 8 * factor,
        height: 8 * factor,
        repeats: 1,
        steps: 1,
        guidance: 7.5,
    };
    let mut seen = Vec::new();
    let stages = bench::run(&bench_nets, &settings, &mut |s| seen.push(s.name.clone())).unwrap();
    assert_eq!(seen, STAGES);
    assert_eq!(stages.len(), 5);
    // Guidance at most 1: the end-to-end run makes one UNet pass per step (sd-turbo's way),
    // with SDXL's pooled embedding and size conditioning for one image.
    let unguided = BenchSettings {
        steps: 2,
        guidance: 1.0,
        ..settings
    };
    let stages = bench::run(&bench_nets, &unguided, &mut |_| {}).unwrap();
    assert_eq!(stages[4].name, "end to end (2 steps, no guidance)");
}

#[test]
#[ignore = "builds a full-size SD 1.5 with random weights: minutes and ~5 GB; run by hand"]
fn full_size_sd15_architecture_benches() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let o = ok(seedling(h).args([
        "bench",
        "--arch",
        "sd15",
        "--random-weights",
        "--repeats",
        "1",
        "--steps",
        "1",
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["width"], 512);
}
