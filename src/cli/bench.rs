//! `seedling bench`: load a model (or build an architecture with random weights), time its
//! stages, print a table or JSON.

use super::args::BenchArgs;
use anyhow::{bail, Result};
use seedling::bench::{self, BenchNets, BenchSettings, Stage, VaeInput};
use seedling::models::cache::human_size;
use seedling::nets::arch::{random_nets, random_vae, Arch};
use seedling::nets::Components;
use seedling::recipe::check_side;
use seedling::sampler::SchedulerConfig;
use seedling::session::{describe_device, DeviceSpec};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Serialize)]
struct Report {
    /// The model or built-in architecture measured.
    subject: String,
    random_weights: bool,
    width: usize,
    height: usize,
    dtype: String,
    device: String,
    /// Threads candle's CPU kernels use (RAYON_NUM_THREADS, else every core).
    cpu_threads: usize,
    repeats: usize,
    steps: usize,
    /// Guidance scale of the end-to-end run (at most 1: none).
    cfg: f64,
    stages: Vec<Stage>,
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let device = args.device.parse::<DeviceSpec>()?.open()?;
    seedling::pipeline::check_device_dtype(&device, args.dtype)?;
    if args.repeats == 0 || args.steps == 0 {
        bail!("--repeats and --steps must be at least 1");
    }
    if !args.cfg.is_finite() || args.cfg < 0.0 {
        bail!("--cfg must be a number of at least 0 (at most 1 means no guidance)");
    }
    let dtype = args.dtype.candle();
    let quiet = args.json;
    let mut print_stage = |s: &Stage| {
        if !quiet {
            println!("{}", stage_line(s));
        }
    };
    let (subject, stages, width, height) = match args.arch {
        Some(arch) => {
            let c = arch.configs();
            let factor = c.vae.scale_factor();
            let side = c.unet.sample_size.unwrap_or(64) as u32 * factor;
            let (w, h) = size(&args, (side, side), factor)?;
            eprintln!("building {arch} with random weights ({})…", args.dtype);
            if args.vae_only {
                let random = random_vae(&c, dtype, &device)?;
                let input = VaeInput {
                    vae: &random.vae,
                    shape: bench::latent_dims(c.unet.in_channels, factor as usize, (w, h), 1),
                    dtype,
                    device: &device,
                };
                let subject = format!("{arch} (random weights)");
                let stage = vae_alone(&input, &subject, &args, (w, h), &mut print_stage)?;
                (arch_subject(arch), vec![stage], w, h)
            } else {
                let nets = random_nets(&c, dtype, &device)?;
                let settings = settings(&args, w, h);
                if !quiet {
                    println!(
                        "{}",
                        header(&format!("{arch} (random weights)"), &args, w, h)
                    );
                }
                let bench_nets = BenchNets {
                    text: nets.text.iter().collect(),
                    unet: &nets.unet,
                    vae: &nets.vae,
                    latent_channels: c.unet.in_channels,
                    latent_factor: factor as usize,
                    scaling_factor: c.vae.scaling_factor,
                    scheduler: SchedulerConfig::from_json(&c.scheduler.to_string())?,
                    dtype,
                    vae_dtype: dtype,
                    device: device.clone(),
                };
                let stages = bench::run(&bench_nets, &settings, &mut print_stage)?;
                (arch_subject(arch), stages, w, h)
            }
        }
        None => {
            let spec = super::args::model_spec(args.model.as_deref(), args.config.as_deref())?;
            let info = seedling::models::ModelInfo::open(&spec)?;
            for note in info.location.notes() {
                eprintln!("note: {note}");
            }
            let (w, h) = size(&args, info.default_size(), info.latent_factor())?;
            let weights = info.weights(args.dtype)?;
            eprintln!("loading {}…", info.location.describe());
            let subject = info.location.describe();
            if args.vae_only {
                let (vae, vae_dtype) = Components::load_vae(&info, &weights, dtype, &device)?;
                let factor = info.latent_factor() as usize;
                let input = VaeInput {
                    vae: &vae,
                    shape: bench::latent_dims(info.unet.in_channels, factor, (w, h), 1),
                    dtype: vae_dtype,
                    device: &device,
                };
                let stage = vae_alone(&input, &subject, &args, (w, h), &mut print_stage)?;
                return finish(&args, subject, vec![stage], (w, h), &device);
            }
            let c = Components::load(&info, &weights, args.dtype, &device)?;
            let mut text = vec![&c.text.model];
            if let Some((_, second)) = &c.text.second {
                text.push(second);
            }
            if !quiet {
                println!("{}", header(&subject, &args, w, h));
            }
            let bench_nets = BenchNets {
                text,
                unet: &c.unet,
                vae: &c.vae,
                latent_channels: info.unet.in_channels,
                latent_factor: info.latent_factor() as usize,
                scaling_factor: info.vae.scaling_factor,
                scheduler: info.scheduler.clone(),
                dtype,
                vae_dtype: c.vae_dtype,
                device: device.clone(),
            };
            let stages = bench::run(&bench_nets, &settings(&args, w, h), &mut print_stage)?;
            (subject, stages, w, h)
        }
    };
    finish(&args, subject, stages, (width, height), &device)
}

/// The VAE decode timed alone (`--vae-only`).
fn vae_alone(
    input: &VaeInput,
    subject: &str,
    args: &BenchArgs,
    (w, h): (usize, usize),
    print_stage: &mut dyn FnMut(&Stage),
) -> Result<Stage> {
    if !args.json {
        println!("{}", header(subject, args, w, h));
    }
    let stage = bench::run_vae_alone(input, args.repeats)?;
    print_stage(&stage);
    Ok(stage)
}

/// The JSON report, when asked for.
fn finish(
    args: &BenchArgs,
    subject: String,
    stages: Vec<Stage>,
    (width, height): (usize, usize),
    device: &candle_core::Device,
) -> Result<ExitCode> {
    if args.json {
        let report = Report {
            subject,
            random_weights: args.random_weights,
            width,
            height,
            dtype: args.dtype.to_string(),
            device: describe_device(device),
            cpu_threads: candle_core::utils::get_num_threads(),
            repeats: args.repeats,
            steps: args.steps,
            cfg: args.cfg,
            stages,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn arch_subject(arch: Arch) -> String {
    format!("{arch} architecture")
}

fn size(args: &BenchArgs, native: (u32, u32), factor: u32) -> Result<(usize, usize)> {
    let (w, h) = (
        args.width.unwrap_or(native.0),
        args.height.unwrap_or(native.1),
    );
    check_side("width", w, factor)?;
    check_side("height", h, factor)?;
    Ok((w as usize, h as usize))
}

fn settings(args: &BenchArgs, width: usize, height: usize) -> BenchSettings {
    BenchSettings {
        width,
        height,
        repeats: args.repeats,
        steps: args.steps,
        guidance: args.cfg,
    }
}

fn header(subject: &str, args: &BenchArgs, w: usize, h: usize) -> String {
    format!(
        "{subject}: {w}x{h}, {}, {}, {} CPU threads, {} timed runs per stage after one warm-up\n\
         {:<40} {:>9} {:>9} {:>10} {:>10}",
        args.dtype,
        args.device,
        candle_core::utils::get_num_threads(),
        args.repeats,
        "stage",
        "min s",
        "median s",
        "peak RSS",
        "added"
    )
}

fn stage_line(s: &Stage) -> String {
    let rss = s
        .peak_rss_bytes
        .map(human_size)
        .unwrap_or_else(|| "-".into());
    // What the stage holds above what was resident when it began (the loaded weights).
    let added = match (s.peak_rss_bytes, s.start_rss_bytes) {
        (Some(peak), Some(start)) => human_size(peak.saturating_sub(start)),
        _ => "-".into(),
    };
    format!(
        "{:<40} {:>9.3} {:>9.3} {:>10} {:>10}",
        s.name, s.min_s, s.median_s, rss, added
    )
}
