//! clap definitions. Flag names and meanings are part of the interface: tests and other tools
//! drive the binary with them.

use clap::{Arg, ArgAction, Args, Parser, Subcommand};
use seedling::models::folder::{Kind as FileKind, ModelsLibrary};
use seedling::recipe::fields::Kind;
use seedling::recipe::{Field, ModelDType, Overrides, Value, FIELDS};
use seedling::session::LoraSpec;
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
    /// List the model presets, which are in the Hugging Face cache, and their sizes, and the
    /// files of models folders with their family and A1111 hashes
    Models(ModelsArgs),
    /// Time text encoding, a UNet step, the VAE decode and a short generation
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model to time: a preset, a Hugging Face repo or a local diffusers folder [default: sd-turbo]
    #[arg(long, value_name = "REPO[@REV]|DIR", conflicts_with = "arch")]
    pub model: Option<String>,
    /// For a single-file --model: the diffusers folder or repo whose configs describe it
    #[arg(long, value_name = "REPO[@REV]|DIR", requires = "model")]
    pub config: Option<String>,
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
    /// A models folder in A1111's layout (Stable-diffusion/, Lora/, embeddings/, VAE/) or
    /// ComfyUI's (checkpoints/, loras/, embeddings/, vae/); repeat for several. Without it,
    /// the folders SEEDLING_MODELS_DIR lists (separated as PATH is)
    #[arg(long, value_name = "DIR", action = ArgAction::Append)]
    pub models_dir: Vec<PathBuf>,
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
    /// Model for every job, instead of the ones the file names: a preset, a Hugging Face repo,
    /// a local diffusers folder, or a checkpoint by path or by its name in --models-dir
    #[arg(long, value_name = "REPO[@REV]|DIR")]
    pub model: Option<String>,
    /// A VAE for every job, instead of the ones the file names (an AutoencoderKL repo or folder)
    #[arg(long, value_name = "REPO[@REV]|DIR")]
    pub vae: Option<String>,
    /// For single-file models: the diffusers folder or repo whose configs describe them
    #[arg(long, value_name = "REPO[@REV]|DIR")]
    pub config: Option<String>,
    /// A models folder (A1111's or ComfyUI's layout) whose embeddings the jobs' prompts may
    /// name, and where a model named by its checkpoint's name is found; repeat for several
    /// [default: the folders SEEDLING_MODELS_DIR lists]
    #[arg(long, value_name = "DIR", action = ArgAction::Append)]
    pub models_dir: Vec<PathBuf>,
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
// Replay's model is the image's unless a flag changes it; the shared flag's help names
// generate's default.
#[command(mut_arg("model", |a| a.help(
    "Model to replay with instead of the one the image records: a preset, a Hugging Face repo \
     (owner/name[@revision]) or a local diffusers folder"
)))]
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

/// Recipe fields: settings for `generate`, overrides for `replay`. The model and VAE are
/// flags of their own; every other field's flag is made from its declaration
/// (`seedling::recipe::FIELDS`: name, value, help), so a new field is a new flag.
#[derive(Debug, Clone, Default)]
pub struct RecipeArgs {
    /// `--model`: a preset, a Hugging Face repo or a local diffusers folder.
    pub model: Option<String>,
    /// `--vae`: a VAE to use instead of the model's own.
    pub vae: Option<String>,
    /// `--config`: the configs describing a single-file model's architecture.
    pub config: Option<String>,
    /// `--lora FILE[:WEIGHT]` (or `FILE:UNET:TE`), each time it is given.
    pub loras: Vec<String>,
    /// `--embedding FILE`, each time it is given.
    pub embeddings: Vec<PathBuf>,
    /// `--models-dir`, each time it is given (none: SEEDLING_MODELS_DIR's).
    pub models_dirs: Vec<PathBuf>,
    /// The recipe fields the flags set (prompt and negative prompt are the command's own).
    pub patch: Overrides,
}

/// The fields with a flag in `RecipeArgs`: all but the prompts, which each command takes its
/// own way (an argument, or `--prompt`/`--negative`).
fn flag_fields() -> impl Iterator<Item = &'static Field> {
    FIELDS
        .iter()
        .filter(|f| !matches!(f.name, "prompt" | "negative_prompt"))
}

/// A field's flag. Values are read by the field's type here; ranges are checked with the
/// whole recipe (`Recipe::validate`), which names the fix.
fn flag_of(f: &'static Field) -> Arg {
    let arg = Arg::new(f.name).long(f.flag).help(f.help);
    match f.kind {
        Kind::Flag => arg.action(ArgAction::SetTrue),
        _ => arg
            .value_name(f.value_name)
            .allow_negative_numbers(true)
            .value_parser(move |s: &str| flag_value(f, s)),
    }
}

fn flag_value(f: &'static Field, s: &str) -> Result<Value, String> {
    match f.kind {
        Kind::Choice(_) | Kind::Text => f.parse(s),
        // A1111 writes -1 for "random": say how seedling asks for one.
        Kind::Seed if f.name == "seed" => f.parse(s).map_err(|e| {
            format!(
                "{e}; for a random seed (AUTOMATIC1111's -1), leave --seed out of generate or grid"
            )
        }),
        Kind::Seed => f.parse(s),
        _ => f.typed(s).ok_or_else(|| f.expected()),
    }
}

impl clap::Args for RecipeArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let cmd = cmd
            .arg(
                Arg::new("model")
                    .long("model")
                    .value_name("REPO[@REV]|DIR")
                    .help(
                        "Model: a preset (`seedling models` lists them), a Hugging Face repo \
                         (owner/name[@revision]), a local diffusers folder, or a single-file \
                         checkpoint (.safetensors: SD 1.x, SD 2.x, SDXL), by path or by its name \
                         in --models-dir [default: sd-turbo]",
                    ),
            )
            .arg(config_arg())
            .arg(
                Arg::new("vae")
                    .long("vae")
                    .value_name("REPO[@REV]|DIR")
                    .help(
                    "A VAE to use instead of the model's own (an AutoencoderKL repo or folder, a \
                     .safetensors file, or a file's name in the models folders' VAE folder), \
                     e.g. madebyollin/sdxl-vae-fp16-fix to decode SDXL in f16 without upcasting",
                ),
            )
            .arg(
                Arg::new("lora")
                    .long("lora")
                    .value_name("FILE|NAME[:WEIGHT]")
                    .action(ArgAction::Append)
                    .help(
                        "A LoRA (.safetensors, kohya or diffusers layout) applied to the weights \
                         at WEIGHT [default: 1] on UNet and text encoder alike, or FILE:UNET:TE \
                         for each its own; repeat for several. FILE may be a LoRA's name in the \
                         models folders (A1111's <lora:NAME>). On replay it replaces the \
                         image's LoRAs",
                    ),
            )
            .arg(
                Arg::new("embedding")
                    .long("embedding")
                    .value_name("FILE")
                    .value_parser(clap::value_parser!(std::path::PathBuf))
                    .action(ArgAction::Append)
                    .help(
                        "A textual-inversion embedding (.safetensors, A1111's format) that a \
                         prompt names by the file's name: the word NAME (or ComfyUI's \
                         embedding:NAME) for NAME.safetensors stands for its vectors; repeat \
                         for several; the models folders' embeddings/ are named the same way",
                    ),
            )
            .arg(models_dir_arg());
        flag_fields().fold(cmd, |cmd, f| cmd.arg(flag_of(f)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for RecipeArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut args = RecipeArgs::default();
        args.update_from_arg_matches(m)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.model = m.get_one::<String>("model").cloned();
        self.vae = m.get_one::<String>("vae").cloned();
        self.config = m.get_one::<String>("config").cloned();
        self.loras = m
            .get_many::<String>("lora")
            .map(|v| v.cloned().collect())
            .unwrap_or_default();
        self.embeddings = m
            .get_many::<PathBuf>("embedding")
            .map(|v| v.cloned().collect())
            .unwrap_or_default();
        self.models_dirs = m
            .get_many::<PathBuf>("models_dir")
            .map(|v| v.cloned().collect())
            .unwrap_or_default();
        for f in flag_fields() {
            let value = match f.kind {
                // An absent switch sets nothing (the recorded value stays in a replay).
                Kind::Flag => m.get_flag(f.name).then_some(Value::Flag(true)),
                _ => m.get_one::<Value>(f.name).cloned(),
            };
            if let Some(v) = value {
                f.patch(&mut self.patch, v);
            }
        }
        Ok(())
    }
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
    /// A models folder (A1111's or ComfyUI's layout) where another tool's image's checkpoint
    /// is looked for by hash; repeat for several [default: the folders SEEDLING_MODELS_DIR lists]
    #[arg(long, value_name = "DIR", action = ArgAction::Append)]
    pub models_dir: Vec<PathBuf>,
}

impl RecipeArgs {
    /// The recipe fields these flags set, with the prompt and negative prompt given.
    pub fn overrides(&self, prompt: Option<&str>, negative: Option<&str>) -> Overrides {
        Overrides {
            prompt: prompt.map(str::to_string),
            negative_prompt: negative.map(str::to_string),
            ..self.patch.clone()
        }
    }

    /// `--vae`, if given.
    pub fn vae_spec(&self) -> seedling::Result<Option<seedling::models::ModelSpec>> {
        (self.vae.as_deref())
            .map(|v| parse_vae_in(v, &self.models_dirs))
            .transpose()
    }

    /// `--lora`, each parsed, then the LoRAs of a prompt's `<lora:…>` tags, each found: a
    /// file as given, else a name in the models folders' LoRA folders (opened only then, so a
    /// stale SEEDLING_MODELS_DIR does not stop a run that names files).
    pub fn lora_specs(
        &self,
        tags: &[seedling::prompt_networks::LoraTag],
    ) -> seedling::Result<Vec<LoraSpec>> {
        let specs = self.parsed_loras(tags)?;
        if specs.iter().all(|s| s.path.is_file()) {
            return Ok(specs);
        }
        let library = self.library()?;
        specs.into_iter().map(|s| s.find_in(&library)).collect()
    }

    /// `lora_specs`, with names found in `library` (already open).
    pub fn lora_specs_in(
        &self,
        tags: &[seedling::prompt_networks::LoraTag],
        library: &ModelsLibrary,
    ) -> seedling::Result<Vec<LoraSpec>> {
        let specs = self.parsed_loras(tags)?;
        specs.into_iter().map(|s| s.find_in(library)).collect()
    }

    /// `--lora`, each parsed, then the tags' LoRAs, as given (files or names).
    fn parsed_loras(
        &self,
        tags: &[seedling::prompt_networks::LoraTag],
    ) -> seedling::Result<Vec<LoraSpec>> {
        let flags = self.loras.iter().map(|s| LoraSpec::parse(s));
        flags
            .chain(tags.iter().map(|t| Ok(LoraSpec::from_tag(t))))
            .collect()
    }

    /// The models folders `--models-dir` names (else SEEDLING_MODELS_DIR's), hashing through
    /// the hash cache; notes about the cache go to stderr.
    pub fn library(&self) -> seedling::Result<ModelsLibrary> {
        open_library(&self.models_dirs)
    }

    /// `--embedding`, each called by its file's stem.
    pub fn embedding_specs(&self) -> seedling::Result<Vec<seedling::session::EmbeddingSpec>> {
        self.embeddings
            .iter()
            .map(|p| seedling::session::EmbeddingSpec::file(p.clone()))
            .collect()
    }

    /// `--model` (with `--config`), or the default preset; a name that is no preset, path or
    /// repo may be a checkpoint's in the models folders.
    pub fn model_spec(&self) -> seedling::Result<seedling::models::ModelSpec> {
        let model = self
            .model
            .as_deref()
            .unwrap_or(seedling::models::preset::DEFAULT_PRESET);
        with_config(
            parse_model_in(model, &self.models_dirs)?,
            self.config.as_deref(),
        )
    }
}

/// `--models-dir`, shared by the commands that find models by name or hash.
pub fn models_dir_arg() -> Arg {
    Arg::new("models_dir")
        .long("models-dir")
        .value_name("DIR")
        .action(ArgAction::Append)
        .value_parser(clap::value_parser!(PathBuf))
        .help(
            "A models folder in A1111's layout (Stable-diffusion/, Lora/, embeddings/, VAE/) or \
             ComfyUI's (checkpoints/, loras/, embeddings/, vae/): where --model, --vae and \
             --lora NAME, <lora:NAME:W> tags and a prompt's embedding words are found, and an \
             image's checkpoint, VAE, LoRAs and embeddings by hash; repeat for several \
             [default: the folders SEEDLING_MODELS_DIR lists]",
        )
}

/// `--config`, shared by the commands that take a model.
pub fn config_arg() -> Arg {
    Arg::new("config")
        .long("config")
        .value_name("REPO[@REV]|DIR")
        .help(
            "For a single-file --model: the diffusers folder or repo whose configs describe its \
             architecture (head counts, scheduler) [default: the family's reference config]",
        )
}

/// A `--model` value (with `--config`), or the default preset when none was given.
pub fn model_spec(
    model: Option<&str>,
    config: Option<&str>,
) -> seedling::Result<seedling::models::ModelSpec> {
    let spec = seedling::models::ModelSpec::parse(
        model.unwrap_or(seedling::models::preset::DEFAULT_PRESET),
    )?;
    with_config(spec, config)
}

/// The models folders `dirs` (else SEEDLING_MODELS_DIR's), hashing through the hash cache and
/// saying on stderr what it cannot cache and which file it reads in full (a 7 GB checkpoint
/// takes a while, once).
pub fn open_library(dirs: &[PathBuf]) -> seedling::Result<ModelsLibrary> {
    let library = ModelsLibrary::from_env_or(dirs)?.on_hash(Box::new(|path, bytes| {
        eprintln!(
            "hashing {} ({}) once, to find files by hash",
            path.display(),
            seedling::models::cache::human_size(bytes)
        )
    }));
    for note in library.notes() {
        eprintln!("note: {note}");
    }
    Ok(library)
}

/// A `--model` value (or a job file's `model`): a preset, a path or a repo as
/// `ModelSpec::parse` reads them; failing those, the one checkpoint of that name (A1111's stem,
/// or its name below the checkpoint folder) in the models folders (`dirs`, else
/// SEEDLING_MODELS_DIR's), as a single file. The folders are opened only then.
pub fn parse_model_in(
    value: &str,
    dirs: &[PathBuf],
) -> seedling::Result<seedling::models::ModelSpec> {
    parse_in(FileKind::Checkpoint, "--model", value, dirs)
}

/// A `--vae` value: as `--model` takes one, or the one file of that name in the models folders'
/// VAE folders.
pub fn parse_vae_in(
    value: &str,
    dirs: &[PathBuf],
) -> seedling::Result<seedling::models::ModelSpec> {
    parse_in(FileKind::Vae, "--vae", value, dirs)
}

/// `value` as `ModelSpec::parse` reads it, else the one safetensors file of `kind` called so
/// in the models folders.
fn parse_in(
    kind: FileKind,
    flag: &str,
    value: &str,
    dirs: &[PathBuf],
) -> seedling::Result<seedling::models::ModelSpec> {
    let not_found = match seedling::models::ModelSpec::parse(value) {
        Ok(spec) => return Ok(spec),
        Err(e) => e,
    };
    // A wrong --models-dir is said; a stale SEEDLING_MODELS_DIR leaves the model's own error.
    let library = match open_library(dirs) {
        Ok(l) => l,
        Err(e) if !dirs.is_empty() => return Err(e),
        Err(_) => return Err(not_found),
    };
    let noun = match kind {
        FileKind::Vae => "VAE",
        other => other.name(),
    };
    let found = library.by_name(kind, value);
    match found.as_slice() {
        [one] if one.safetensors => {
            eprintln!("note: {flag} {value} is the {noun} {}", one.path.display());
            Ok(seedling::models::ModelSpec::File {
                path: one.path.clone(),
                config: None,
                reference: None,
            })
        }
        [] | [_] => Err(not_found),
        several => {
            let paths: Vec<String> = several
                .iter()
                .map(|f| f.path.display().to_string())
                .collect();
            Err(seedling::Error::Invalid(format!(
                "the name {value} matches {} {noun} files in the models folders: {}; give the \
                 one you mean to {flag} by its path",
                several.len(),
                paths.join(", ")
            )))
        }
    }
}

/// `spec` with `--config`'s configs, when given.
pub fn with_config(
    spec: seedling::models::ModelSpec,
    config: Option<&str>,
) -> seedling::Result<seedling::models::ModelSpec> {
    match config {
        Some(c) => spec.with_config(seedling::models::ModelSpec::parse(c)?),
        None => Ok(spec),
    }
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

fn parse_arch(s: &str) -> Result<seedling::nets::arch::Arch, String> {
    s.parse()
        .map_err(|e: seedling::Error| e.render(super::spell::flag))
}

fn parse_dtype(s: &str) -> Result<ModelDType, String> {
    s.parse()
        .map_err(|e: seedling::Error| e.render(super::spell::flag))
}
