//! User-facing text that tells the user to change a setting. The library names the setting
//! structurally ([`Setting`]), never as one front end's spelling of it, so each front end can
//! say it in its own terms: the CLI as a flag (`--steps 20`), a server as a JSON key
//! (`"steps": 20`). [`Message`]'s `Display` is a neutral spelling that names no front end.

use std::fmt;

/// A setting a message asks the user to change or give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Setting {
    /// A recipe field, by its recipe name (a name in [`crate::recipe::FIELDS`]); made with
    /// [`Setting::field`], which checks the name.
    Field(&'static str),
    /// The model: a preset, a Hugging Face repo or a local diffusers folder.
    Model,
    /// A separate VAE to decode with.
    Vae,
    /// A LoRA file applied to the weights, with its strengths.
    Lora,
    /// A textual-inversion embedding file a prompt may name.
    Embedding,
    /// The diffusers folder or repo whose configs describe a single-file model's architecture.
    Config,
    /// The device to compute on (`cpu`, `cuda`, `cuda:N`).
    Device,
    /// The folder images are written to under automatic names.
    OutDir,
    /// The path of one output file.
    OutFile,
    /// Whether an existing output file may be replaced.
    Overwrite,
    /// A grid's seeds around the base seed: this many either side of it.
    Around,
    /// The models folders (A1111's or ComfyUI's layout) checkpoints, LoRAs and embeddings
    /// are found in.
    ModelsDir,
    /// A new generation from a prompt and settings given directly (not read from an image).
    Generate,
}

impl Setting {
    /// The recipe field `name`. A name that is not a field is a bug at the call site: tests
    /// build every message that names one and check it (see `crate::error` tests).
    pub fn field(name: &'static str) -> Setting {
        debug_assert!(crate::recipe::field(name).is_some(), "no field {name}");
        Setting::Field(name)
    }

    /// The neutral name: the recipe key, or the option's name in the same style.
    pub fn name(&self) -> &'static str {
        match self {
            Setting::Field(name) => name,
            Setting::Model => "model",
            Setting::Vae => "vae",
            Setting::Lora => "lora",
            Setting::Embedding => "embedding",
            Setting::Config => "config",
            Setting::Device => "device",
            Setting::OutDir => "out_dir",
            Setting::OutFile => "out_file",
            Setting::Overwrite => "overwrite",
            Setting::Around => "around",
            Setting::ModelsDir => "models_dir",
            Setting::Generate => "generate",
        }
    }

    /// The spelling [`Message`]'s `Display` uses: `name = value`, or the name alone.
    pub fn neutral(&self, value: Option<&str>) -> String {
        match (self, value) {
            // Not a key to set but a way to start over; said as such.
            (Setting::Generate, _) => "as a new generation instead".to_string(),
            (s, Some(v)) => format!("{} = {v}", s.name()),
            (s, None) => s.name().to_string(),
        }
    }
}

/// One piece of a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    Text(String),
    /// A setting, with the value to give it when the message names one (`"20"`, or a
    /// placeholder such as `"N"`; `"true"` for a switch).
    Set(Setting, Option<String>),
}

/// Text with settings named structurally. Built with [`Message::text`] and chained
/// [`then`](Message::then), [`set`](Message::set) and [`mention`](Message::mention)
/// calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    parts: Vec<Part>,
}

impl Message {
    /// A message starting with `s`.
    pub fn text(s: impl Into<String>) -> Message {
        Message::default().then(s)
    }

    /// Appends plain text.
    pub fn then(mut self, s: impl Into<String>) -> Message {
        self.parts.push(Part::Text(s.into()));
        self
    }

    /// Appends a setting with the value to give it.
    pub fn set(mut self, setting: Setting, value: impl fmt::Display) -> Message {
        self.parts.push(Part::Set(setting, Some(value.to_string())));
        self
    }

    /// Appends a setting named without a value.
    pub fn mention(mut self, setting: Setting) -> Message {
        self.parts.push(Part::Set(setting, None));
        self
    }

    /// Appends another message's parts.
    pub fn append(mut self, other: Message) -> Message {
        self.parts.extend(other.parts);
        self
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The settings the message names, in order (a server can point at the offending field).
    pub fn settings(&self) -> Vec<(Setting, Option<&str>)> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Set(s, v) => Some((*s, v.as_deref())),
                Part::Text(_) => None,
            })
            .collect()
    }

    /// The text with each setting spelled by `spell` (a front end's terms).
    pub fn render(&self, spell: impl Fn(&Setting, Option<&str>) -> String) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Set(s, v) => spell(s, v.as_deref()),
            })
            .collect()
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Setting::neutral))
    }
}

impl From<String> for Message {
    fn from(s: String) -> Message {
        Message::text(s)
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Message {
        Message::text(s)
    }
}

/// The neutral text, for places that keep text only (a foreign file's unmapped notes).
impl From<Message> for String {
    fn from(m: Message) -> String {
        m.to_string()
    }
}

/// For the library's tests: settings spelled as the CLI spells them (its speller lives in the
/// binary), so that tests of a message's full text read as the user sees it.
#[cfg(test)]
pub(crate) fn as_flags(setting: &Setting, value: Option<&str>) -> String {
    use crate::recipe::fields::Kind;
    let (flag, switch) = match setting {
        Setting::Field(name) => {
            let f = crate::recipe::field(name).expect("a field");
            (format!("--{}", f.flag), f.kind == Kind::Flag)
        }
        Setting::OutFile => ("-o".to_string(), false),
        Setting::Overwrite => ("--overwrite".to_string(), true),
        Setting::Generate => return "on the command line instead".to_string(),
        other => (format!("--{}", other.name().replace('_', "-")), false),
    };
    match value {
        Some(v) if !switch => format!("{flag} {v}"),
        _ => flag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps() -> Message {
        Message::text("steps must be at least 1; try ")
            .set(Setting::field("steps"), 20)
            .then(" (or 1-4 for turbo models)")
    }

    #[test]
    fn neutral_spelling_names_the_recipe_key() {
        assert_eq!(
            steps().to_string(),
            "steps must be at least 1; try steps = 20 (or 1-4 for turbo models)"
        );
        let m = Message::text("pass ").mention(Setting::OutDir);
        assert_eq!(m.to_string(), "pass out_dir");
    }

    #[test]
    fn a_front_end_spells_settings_its_own_way() {
        let json = |s: &Setting, v: Option<&str>| match v {
            Some(v) => format!("\"{}\": {v}", s.name()),
            None => format!("\"{}\"", s.name()),
        };
        assert_eq!(
            steps().render(json),
            "steps must be at least 1; try \"steps\": 20 (or 1-4 for turbo models)"
        );
        assert_eq!(steps().settings(), [(Setting::Field("steps"), Some("20"))]);
    }

    #[test]
    fn plain_text_stays_plain() {
        let m = Message::from("no settings here");
        assert_eq!(m.to_string(), "no settings here");
        assert!(m.settings().is_empty());
        assert_eq!(String::from(Message::from(String::from("x"))), "x");
    }
}
