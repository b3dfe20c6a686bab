//! clap definitions. Flag names and meanings are part of the interface: tests and other tools
//! drive the binary with them.

use clap::{Args, Parser, Subcommand};
use seedling::noise::RngKind;
use seedling::recipe::ModelDType;
use seedling::sampler::{SamplerKind, ScheduleKind};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "seedling",
    version,
    about = "Reproducible images from a prompt and a seed: every PNG carries its recipe",
    after_help = "Examples:\n  seedling generate \"a lighthouse at dawn\" --seed 721\n  \
                  seedling replay outputs/00001-721-a-lighthouse-at-dawn.png --seed 722\n  \
                  seedling inspect outputs/00001-721-a-lighthouse-at-dawn.png"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an image from a prompt and a seed
    Generate(GenerateArgs),
    /// Regenerate an image from the recipe in its PNG, optionally changing some fields
    Replay(ReplayArgs),
    /// Print the recipe stored in a PNG
    Inspect(InspectArgs),
    /// Render neighbouring seeds or an X/Y plot: one PNG per cell plus a contact sheet
    Grid(GridArgs),
    /// Run the jobs of a prompt file (TOML; see prompts/)
    Batch(BatchArgs),
    /// List the model presets, which are in the Hugging Face cache, and their sizes
    Models(ModelsArgs),
    /// Time text encoding, a UNet step, the VAE decode and a short generation
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model to time: a preset, a Hugging Face repo or a local diffusers folder [default: sd-turbo]
    #[arg(long, value_name = "REPO[@REV]|DIR", conflicts_with = "arch")]
    pub model: Option<String>,
    /// A built-in full-size architecture instead of a model (needs --random-weights)
    #[arg(long, value_parser = parse_arch, value_name = "sd15|sd21|sdxl", requires = "random_weights")]
    pub arch: Option<seedling::nets::arch::Arch>,
    /// Random weights for --arch: real-size networks, offline, meaningless images
    #[arg(long, requires = "arch")]
    pub random_weights: bool,
    /// Image width [default: the model's native size]
    #[arg(long)]
    pub width: Option<u32>,
    /// Image height [default: the model's native size]
    #[arg(long)]
    pub height: Option<u32>,
    /// Precision of the networks
    #[arg(long, value_parser = parse_dtype, value_name = "f32|f16|bf16", default_value = "f32")]
    pub dtype: ModelDType,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Timed runs per stage (after one untimed warm-up run)
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub repeats: usize,
    /// Denoising steps of the end-to-end run
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub steps: usize,
    /// Guidance scale of the end-to-end run (at most 1 = no guidance: one UNet pass per step, as sd-turbo runs)
    #[arg(long, default_value_t = 7.5, value_name = "CFG")]
    pub cfg: f64,
    /// Time only the VAE decode, loading only the VAE (its peak memory without the other networks')
    #[arg(long)]
    pub vae_only: bool,
    /// Print the results as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Print the list as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GridArgs {
    /// What to draw
    pub prompt: String,
    /// What to steer away from (used when --cfg > 1)
    #[arg(long, value_name = "TEXT")]
    pub negative: Option<String>,
    /// Seeds SEED-R … SEED+R (with --seed, else around a random seed)
    #[arg(long, value_name = "R", conflicts_with_all = ["seeds", "count"])]
    pub around: Option<u64>,
    /// Seeds to render: a range 716-724, a list 1,5,9, or both 1-3,10
    #[arg(long, value_name = "LIST", conflicts_with = "count")]
    pub seeds: Option<String>,
    /// N consecutive seeds from --seed (else from a random seed)
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// X axis of an X/Y plot: FIELD=VALUES, e.g. seed=1-4, cfg=3,5,7, sampler=ddim,euler,
    /// steps=1-4, variation_strength=0,0.2, prompt_sr=cat,dog
    #[arg(long, value_name = "FIELD=VALUES")]
    pub x: Option<String>,
    /// Y axis of an X/Y plot (needs --x)
    #[arg(long, value_name = "FIELD=VALUES", requires = "x")]
    pub y: Option<String>,
    #[command(flatten)]
    pub recipe: RecipeArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// A prompt file (TOML), e.g. prompts/landscapes.toml
    pub file: PathBuf,
    /// Only render images whose file does not exist yet (resume an interrupted run)
    #[arg(long)]
    pub skip_existing: bool,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Output folder; images go to DIR/<file name>/<job>-<seed>.png [default: outputs]
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Images per UNet call (speed only: never changes an image)
    #[arg(long, default_value_t = 1, value_name = "B", value_parser = parse_batch_size)]
    pub batch_size: usize,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to draw
    pub prompt: String,
    /// What to steer away from (used when --cfg > 1)
    #[arg(long, value_name = "TEXT")]
    pub negative: Option<String>,
    /// Make N images with seeds SEED, SEED+1, … (each its own PNG); with a variation in use, as in
    /// AUTOMATIC1111, the seed stays and the variation seed counts up instead
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub count: usize,
    #[command(flatten)]
    pub recipe: RecipeArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A PNG written by seedling, or by AUTOMATIC1111/Forge, stable-diffusion.cpp, ComfyUI or InvokeAI
    pub image: PathBuf,
    /// Compare the result with the source pixels; fails unless an unchanged replay is identical
    /// (for another tool's image it only reports the difference)
    #[arg(long)]
    pub verify: bool,
    /// Override the prompt
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// Override the negative prompt
    #[arg(long, value_name = "TEXT")]
    pub negative: Option<String>,
    #[command(flatten)]
    pub recipe: RecipeArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Recipe fields: settings for `generate`, overrides for `replay`.
#[derive(Debug, Args, Clone, Default)]
pub struct RecipeArgs {
    /// Model: a preset (`seedling models` lists them), a Hugging Face repo (owner/name[@revision]) or a
    /// local diffusers folder [default: sd-turbo]
    #[arg(long, value_name = "REPO[@REV]|DIR")]
    pub model: Option<String>,
    /// A VAE to use instead of the model's own (an AutoencoderKL repo or folder), e.g.
    /// madebyollin/sdxl-vae-fp16-fix to decode SDXL in f16 without upcasting
    #[arg(long, value_name = "REPO[@REV]|DIR")]
    pub vae: Option<String>,
    /// Seed, 0 to 2^64 − 1 [default: random, printed and recorded]
    #[arg(long, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Mix in the noise of this second seed (A1111's variation seed), as much as
    /// --variation-strength says
    #[arg(long, value_name = "SEED", value_parser = parse_any_seed, allow_negative_numbers = true)]
    pub variation_seed: Option<u64>,
    /// How much of --variation-seed's noise: 0 = none, 1 = all
    #[arg(long, value_name = "W", allow_negative_numbers = true)]
    pub variation_strength: Option<f64>,
    /// Noise generator: chacha (default), torch-cpu for diffusers/ComfyUI seeds, philox for
    /// AUTOMATIC1111 "NV" seeds
    #[arg(long, value_parser = parse_rng, value_name = "chacha|torch-cpu|philox")]
    pub rng: Option<RngKind>,
    /// Sampler: ddim, euler, euler_a, dpmpp_2m, unipc, pndm or lcm [default: the model preset's,
    /// else euler_a]
    #[arg(long, value_parser = parse_sampler, value_name = "NAME")]
    pub sampler: Option<SamplerKind>,
    /// Noise-level spacing: default (the model's scheduler config) or karras
    #[arg(long, value_parser = parse_schedule, value_name = "default|karras")]
    pub schedule: Option<ScheduleKind>,
    /// Denoising steps
    #[arg(long)]
    pub steps: Option<u32>,
    /// Classifier-free guidance scale (at most 1 = no guidance)
    #[arg(long, allow_negative_numbers = true)]
    pub cfg: Option<f64>,
    /// DDIM eta (0 = deterministic)
    #[arg(long, allow_negative_numbers = true)]
    pub eta: Option<f64>,
    /// Image width in pixels
    #[arg(long)]
    pub width: Option<u32>,
    /// Image height in pixels
    #[arg(long)]
    pub height: Option<u32>,
    /// Precision of the networks (latents and sampler math stay f32)
    #[arg(long, value_parser = parse_dtype, value_name = "f32|f16|bf16")]
    pub dtype: Option<ModelDType>,
    /// Drop prompt tokens past the text encoder's limit instead of refusing the prompt
    #[arg(long)]
    pub truncate: bool,
}

/// Where and how to run; not part of the recipe.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Output file (never overwritten unless --overwrite); for grid, the contact sheet
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        conflicts_with = "out_dir"
    )]
    pub output: Option<PathBuf>,
    /// Output folder; files are named NNNNN-SEED-PROMPT.png [default: outputs]
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Replace the --output file if it exists
    #[arg(long, requires = "output")]
    pub overwrite: bool,
    /// Images per UNet call when rendering many (speed only: never changes an image)
    #[arg(long, default_value_t = 1, value_name = "B", value_parser = parse_batch_size)]
    pub batch_size: usize,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A PNG written by seedling, or by AUTOMATIC1111/Forge, stable-diffusion.cpp, ComfyUI or InvokeAI
    pub image: PathBuf,
    /// Print the recipe and provenance as JSON
    #[arg(long)]
    pub json: bool,
}

impl RecipeArgs {
    /// `--vae`, if given.
    pub fn vae_spec(&self) -> seedling::Result<Option<seedling::models::ModelSpec>> {
        self.vae
            .as_deref()
            .map(seedling::models::ModelSpec::parse)
            .transpose()
    }

    /// `--model`, or the default preset.
    pub fn model_spec(&self) -> seedling::Result<seedling::models::ModelSpec> {
        model_spec(self.model.as_deref())
    }
}

/// A `--model` value, or the default preset when none was given.
pub fn model_spec(model: Option<&str>) -> seedling::Result<seedling::models::ModelSpec> {
    seedling::models::ModelSpec::parse(model.unwrap_or(seedling::models::preset::DEFAULT_PRESET))
}

/// A `--seed`: as `parse_any_seed`, and a refusal names the way to a random seed, since
/// AUTOMATIC1111's users write -1 for that. It names the commands where leaving --seed out means
/// random (in `replay` it keeps the recorded seed). clap's own messages, "unexpected argument
/// '-1'" with a tip to pass it after `--` and "number too large to fit in target type", name
/// neither the range nor the fix.
fn parse_seed(s: &str) -> Result<u64, String> {
    parse_any_seed(s).map_err(|e| {
        format!("{e}; for a random seed (AUTOMATIC1111's -1), leave --seed out of generate or grid")
    })
}

/// A seed: a whole number that fits the u64 every noise source is keyed by.
fn parse_any_seed(s: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("seeds are whole numbers from 0 to {}", u64::MAX))
}

/// A `--batch-size`: at least one image per UNet call (0 used to be taken as 1 silently).
fn parse_batch_size(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(b) if b >= 1 => Ok(b),
        _ => Err(
            "the batch size is how many images share a UNet call: a whole number from 1"
                .to_string(),
        ),
    }
}

fn parse_rng(s: &str) -> Result<RngKind, String> {
    s.parse().map_err(|e: seedling::Error| e.to_string())
}

fn parse_sampler(s: &str) -> Result<SamplerKind, String> {
    s.parse().map_err(|e: seedling::Error| e.to_string())
}

fn parse_schedule(s: &str) -> Result<ScheduleKind, String> {
    s.parse().map_err(|e: seedling::Error| e.to_string())
}

fn parse_arch(s: &str) -> Result<seedling::nets::arch::Arch, String> {
    s.parse().map_err(|e: seedling::Error| e.to_string())
}

fn parse_dtype(s: &str) -> Result<ModelDType, String> {
    s.parse().map_err(|e: seedling::Error| e.to_string())
}
