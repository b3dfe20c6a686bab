//! A1111's names for what seedling records, one table for both directions: the writer takes
//! each name from here, and the reader maps the same names back (plus the spellings A1111
//! itself accepts, such as a scheduler's lower-case name). A name changed here changes both.

use crate::metadata::foreign::declared;
use crate::noise::RngKind;
use crate::recipe::Field;
use crate::sampler::{SamplerKind, ScheduleKind};

/// The settings line's keys, as A1111's `create_infotext` writes them (the `generation_params`
/// dict of modules/processing.py, and the samplers' `extra_generation_params`).
pub mod key {
    pub const STEPS: &str = "Steps";
    pub const SAMPLER: &str = "Sampler";
    pub const SCHEDULE_TYPE: &str = "Schedule type";
    pub const CFG_SCALE: &str = "CFG scale";
    pub const SEED: &str = "Seed";
    pub const SIZE: &str = "Size";
    pub const MODEL_HASH: &str = "Model hash";
    pub const MODEL: &str = "Model";
    pub const VAE_HASH: &str = "VAE hash";
    pub const VAE: &str = "VAE";
    pub const VARIATION_SEED: &str = "Variation seed";
    pub const VARIATION_SEED_STRENGTH: &str = "Variation seed strength";
    pub const RNG: &str = "RNG";
    /// The LoRAs used, `name: hash, …` (extensions-builtin/Lora/extra_networks_lora.py).
    pub const LORA_HASHES: &str = "Lora hashes";
    /// The textual inversions the prompts used, `name: hash, …` (modules/sd_hijack_clip.py
    /// `forward`; the hash is `Embedding.shorthash`, 12 hex digits of the file's sha256).
    pub const TI_HASHES: &str = "TI hashes";
    /// DDIM's eta (sd_samplers_timesteps.py).
    pub const ETA_DDIM: &str = "Eta DDIM";
    /// The ancestral samplers' eta (sd_samplers_kdiffusion.py); read only.
    pub const ETA: &str = "Eta";
    pub const UNIPC_VARIANT: &str = "UniPC variant";
    /// Read only: seedling's UniPC order comes from the model's scheduler config.
    pub const UNIPC_ORDER: &str = "UniPC order";
    pub const CLIP_SKIP: &str = "Clip skip";
    pub const ENSD: &str = "ENSD";
    pub const ETA_NOISE_SEED_DELTA: &str = "Eta noise seed delta";
    pub const VERSION: &str = "Version";
}

/// The settings-line keys whose value is a recipe field's, written as is: the writer formats
/// the field's value, the reader parses it with the field's own parser. When each is written
/// (variation only with a strength, `Eta DDIM` only for DDIM) is the writer's and the reader's
/// to say. Size, Sampler, Schedule type and RNG have their own names, below.
pub const AS_IS: [(&str, &Field); 6] = [
    (key::STEPS, declared::STEPS),
    (key::CFG_SCALE, declared::CFG),
    (key::SEED, declared::SEED),
    (key::VARIATION_SEED, declared::VARIATION_SEED),
    (key::VARIATION_SEED_STRENGTH, declared::VARIATION_STRENGTH),
    (key::ETA_DDIM, declared::ETA),
];

/// The recipe field the settings-line key `k` holds as is ([`AS_IS`]).
pub fn field_for(k: &str) -> Option<&'static Field> {
    AS_IS.iter().find(|(key, _)| *key == k).map(|(_, f)| *f)
}

/// What starts the negative prompt's first line.
pub const NEGATIVE_PROMPT: &str = "Negative prompt:";

/// One A1111 sampler that seedling has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    pub kind: SamplerKind,
    /// A1111's display name (modules/sd_samplers_kdiffusion.py, sd_samplers_timesteps.py,
    /// sd_samplers_lcm.py).
    pub name: &'static str,
    /// Whether A1111 runs it on k-diffusion sigmas spaced by "Schedule type" (its
    /// KDiffusionSampler, and LCMSampler, which is one), rather than on its own timesteps
    /// (DDIM, PLMS, UniPC), which ignore that setting.
    pub uses_schedule: bool,
    /// The schedule A1111's "Automatic" runs for it (its sampler options' `scheduler`,
    /// sd_samplers_kdiffusion.py): Karras for "DPM++ 2M", else the uniform spacing of
    /// `get_sigmas`.
    pub automatic: ScheduleKind,
}

/// The A1111 sampler seedling's `kind` is. A match, so that a new sampler cannot be left
/// without its A1111 name.
pub fn sampler_of(kind: SamplerKind) -> Sampler {
    use ScheduleKind::{Default, Karras};
    let (name, uses_schedule, automatic) = match kind {
        SamplerKind::Ddim => ("DDIM", false, Default),
        SamplerKind::Euler => ("Euler", true, Default),
        SamplerKind::EulerAncestral => ("Euler a", true, Default),
        SamplerKind::DpmPp2m => ("DPM++ 2M", true, Karras),
        SamplerKind::UniPc => ("UniPC", false, Default),
        // A1111's PLMS is the LDM PLMS sampler, diffusers' PNDM with skip_prk_steps.
        SamplerKind::Pndm => ("PLMS", false, Default),
        SamplerKind::Lcm => ("LCM", true, Default),
    };
    Sampler {
        kind,
        name,
        uses_schedule,
        automatic,
    }
}

/// Other names read as a sampler.
const SAMPLER_ALIASES: [(&str, SamplerKind); 1] = [("PNDM", SamplerKind::Pndm)];

/// The A1111 sampler called `name` (its display name, or an alias), if seedling has it.
pub fn sampler_named(name: &str) -> Option<Sampler> {
    let alias = SAMPLER_ALIASES
        .iter()
        .find(|(a, _)| *a == name)
        .map(|(_, kind)| *kind);
    SamplerKind::ALL
        .into_iter()
        .map(sampler_of)
        .find(|s| Some(s.kind) == alias || s.name == name)
}

/// A1111's "Schedule type" (modules/sd_schedulers.py) of a seedling schedule: its (label,
/// name). A1111 writes the label and reads either (its `schedulers_map`). seedling's default
/// schedule is A1111's "Uniform" (evenly spaced timesteps, no Karras sigmas).
pub fn schedule_names(schedule: ScheduleKind) -> (&'static str, &'static str) {
    match schedule {
        ScheduleKind::Default => ("Uniform", "uniform"),
        ScheduleKind::Karras => ("Karras", "karras"),
    }
}

/// "Automatic" (label, name): the sampler's own default schedule ([`Sampler::automatic`]).
pub const AUTOMATIC: (&str, &str) = ("Automatic", "automatic");

/// The schedules A1111 appended to a sampler's name before 1.9 split off "Schedule type"
/// ("DPM++ 2M Karras"), as suffixes of that name.
pub const OLD_SCHEDULE_SUFFIXES: [&str; 4] = [
    " Karras",
    " Exponential",
    " Polyexponential",
    " SGM Uniform",
];

/// The seedling schedule a "Schedule type" label or name stands for, if seedling has it
/// ("Automatic" is not one: what it runs depends on the sampler).
pub fn schedule_named(name: &str) -> Option<ScheduleKind> {
    ScheduleKind::ALL.into_iter().find(|k| {
        let (label, lower) = schedule_names(*k);
        name == label || name == lower
    })
}

/// A1111's `RNG` field (its `randn_source` option: "GPU", "CPU" or "NV") for a seedling noise
/// stream.
pub fn rng_name(rng: RngKind) -> &'static str {
    match rng {
        // torch.Generator("cpu") + torch.randn is exactly A1111's "CPU" source.
        RngKind::TorchCpu => "CPU",
        // Our philox stream is A1111's "NV" source (modules/rng_philox.py), bit for bit.
        RngKind::Philox => "NV",
        // A1111 has no equivalent of our ChaCha20 stream; the name tells a reader that the
        // seed will not give the same noise in A1111 (and seedling's reader which stream it is).
        RngKind::Chacha => "seedling-chacha-v1",
    }
}

/// The seedling noise stream an `RNG` value names, if any ("GPU", A1111's default, is none:
/// which device made the noise is not recorded).
pub fn rng_named(name: &str) -> Option<RngKind> {
    RngKind::ALL.into_iter().find(|k| rng_name(*k) == name)
}

/// The "UniPC variant" seedling's UniPC is: diffusers' bh2 (the only solver type its config
/// check accepts). A1111 reads this field into its `uni_pc_variant` setting (default bh1).
pub const UNIPC_VARIANT: &str = "bh2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seedling_name_has_one_a1111_name_that_reads_back() {
        for kind in SamplerKind::ALL {
            let s = sampler_of(kind);
            assert_eq!(s.kind, kind);
            assert_eq!(sampler_named(s.name), Some(s));
        }
        for kind in ScheduleKind::ALL {
            let (label, name) = schedule_names(kind);
            assert_eq!(schedule_named(label), Some(kind));
            assert_eq!(schedule_named(name), Some(kind));
        }
        assert_eq!(
            sampler_named("PNDM").map(|s| s.kind),
            Some(SamplerKind::Pndm)
        );
        for kind in RngKind::ALL {
            assert_eq!(rng_named(rng_name(kind)), Some(kind));
        }
    }

    #[test]
    fn each_key_written_as_is_names_one_field() {
        for (k, field) in AS_IS {
            assert_eq!(field_for(k).map(|f| f.name), Some(field.name), "{k}");
        }
        let names: Vec<&str> = AS_IS.iter().map(|(_, f)| f.name).collect();
        assert_eq!(
            names,
            [
                "steps",
                "cfg",
                "seed",
                "variation_seed",
                "variation_strength",
                "eta"
            ]
        );
        assert!(field_for(key::SIZE).is_none());
    }
}
