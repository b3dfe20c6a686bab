//! Model presets: a short name for a Hugging Face repo plus the settings that family runs best
//! with. The TOML files live in `models/` and are compiled into the binary, so a preset works
//! from any folder.

use crate::sampler::SamplerKind;
use crate::Error;
use serde::Deserialize;

/// The preset used when no `--model` is given.
pub const DEFAULT_PRESET: &str = "sd-turbo";

const PRESET_FILES: [(&str, &str); 5] = [
    ("sd-turbo", include_str!("../../models/sd-turbo.toml")),
    ("sdxl-turbo", include_str!("../../models/sdxl-turbo.toml")),
    ("sd15", include_str!("../../models/sd15.toml")),
    ("sd21", include_str!("../../models/sd21.toml")),
    ("sdxl", include_str!("../../models/sdxl.toml")),
];

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub name: String,
    pub repo: String,
    pub revision: String,
    pub family: String,
    pub description: String,
    pub defaults: Defaults,
}

/// Settings a recipe takes when the user gives none.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub steps: u32,
    pub cfg: f64,
    pub sampler: SamplerKind,
    pub width: u32,
    pub height: u32,
}

/// Every preset, in a stable order.
pub fn all() -> Vec<Preset> {
    PRESET_FILES
        .iter()
        .map(|(file, text)| {
            // The files are compiled in and covered by a test, so a parse failure is a build bug.
            toml::from_str(text).unwrap_or_else(|e| panic!("models/{file}.toml is invalid: {e}"))
        })
        .collect()
}

/// The preset called `name`, if any.
pub fn find(name: &str) -> Option<Preset> {
    all().into_iter().find(|p| p.name == name)
}

/// The preset whose repo is `repo`, if any (so `--model stabilityai/sd-turbo` gets its defaults).
pub(crate) fn for_repo(repo: &str) -> Option<Preset> {
    all().into_iter().find(|p| p.repo == repo)
}

pub(crate) fn unknown_preset_error(name: &str) -> Error {
    let names: Vec<String> = all().into_iter().map(|p| p.name).collect();
    Error::Invalid(format!(
        "'{name}' is not a model preset, a folder, or a Hugging Face repo id (owner/name); \
         presets: {}",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_is_named_after_its_file() {
        for (file, text) in PRESET_FILES {
            let preset: Preset = toml::from_str(text).expect(file);
            assert_eq!(preset.name, file);
            assert!(preset.repo.contains('/'), "{file}: repo must be owner/name");
            assert!(preset.defaults.steps >= 1);
            assert!(
                ["sd1", "sd2", "sdxl"].contains(&preset.family.as_str()),
                "{file}: family {}",
                preset.family
            );
        }
        assert!(find(DEFAULT_PRESET).is_some());
    }

    #[test]
    fn default_preset_is_sd_turbo_as_its_model_card_runs_it() {
        let p = find(DEFAULT_PRESET).unwrap();
        assert_eq!(p.repo, "stabilityai/sd-turbo");
        assert_eq!(p.defaults.steps, 1);
        assert_eq!(p.defaults.cfg, 0.0);
    }
}
