//! The command line's spelling of the settings the library's messages name: each as the flag
//! that sets it (`--steps 20`), so a message tells the user what to type.

use seedling::metadata::foreign::ForeignRecipe;
use seedling::recipe::fields::{self, Kind};
use seedling::{Message, Setting};

/// A setting as the flag that sets it, with its value after a space; a switch takes none.
pub fn flag(setting: &Setting, value: Option<&str>) -> String {
    let (flag, switch) = match setting {
        Setting::Field(name) => match fields::field(name) {
            Some(f) => (format!("--{}", f.flag), f.kind == Kind::Flag),
            None => return setting.neutral(value),
        },
        Setting::Model => ("--model".into(), false),
        Setting::Vae => ("--vae".into(), false),
        Setting::Lora => ("--lora".into(), false),
        Setting::Embedding => ("--embedding".into(), false),
        Setting::Config => ("--config".into(), false),
        Setting::Device => ("--device".into(), false),
        Setting::OutDir => ("--out-dir".into(), false),
        Setting::OutFile => ("-o".into(), false),
        Setting::Overwrite => ("--overwrite".into(), true),
        Setting::Around => ("--around".into(), false),
        Setting::ModelsDir => ("--models-dir".into(), false),
        Setting::Generate => {
            return "on the command line instead (seedling generate \"PROMPT\" --seed N …)".into()
        }
        // A setting newer than this spelling: the library's own words still name it.
        _ => return setting.neutral(value),
    };
    match value {
        Some(v) if !switch => format!("{flag} {v}"),
        _ => flag,
    }
}

/// A library message in the command line's terms.
pub fn message(m: &Message) -> String {
    m.render(flag)
}

/// What `{err:#}` prints (each message of the chain, joined by ": "), with the library's
/// errors spelled for the command line.
pub fn chain(err: &anyhow::Error) -> String {
    err.chain()
        .map(|e| match e.downcast_ref::<seedling::Error>() {
            Some(e) => e.render(flag),
            None => e.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// Respells the one unmapped note the library builds from a [`Message`] (why replay needs a
/// model): the unmapped list keeps text, so it holds the neutral spelling, and everything the
/// CLI shows or writes from it (inspect, replay's warnings and provenance) says the flag.
pub fn foreign_notes(f: &mut ForeignRecipe) {
    let Some(why) = f.model.needs_model() else {
        return;
    };
    let neutral = why.to_string();
    for u in &mut f.unmapped {
        if u.field == "model" && u.note == neutral {
            u.note = message(&why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_spelled_as_their_flags() {
        let steps = Setting::field("steps");
        assert_eq!(flag(&steps, Some("20")), "--steps 20");
        assert_eq!(flag(&steps, None), "--steps");
        let truncate = Setting::field("truncate_prompt");
        assert_eq!(flag(&truncate, Some("true")), "--truncate");
        let negative = Setting::field("negative_prompt");
        assert_eq!(flag(&negative, Some("x")), "--negative x");
        assert_eq!(flag(&Setting::Overwrite, Some("true")), "--overwrite");
        assert_eq!(flag(&Setting::OutFile, None), "-o");
        assert_eq!(flag(&Setting::Model, Some("DIR")), "--model DIR");
        assert_eq!(flag(&Setting::ModelsDir, None), "--models-dir");
    }

    #[test]
    fn the_chain_is_printed_as_anyhow_prints_it_with_flags() {
        let inner = seedling::Error::hint(
            seedling::ErrorKind::BadInput,
            Message::text("try ").set(Setting::field("steps"), 20),
        );
        let err = anyhow::Error::from(inner).context("job 1");
        assert_eq!(format!("{err:#}"), "job 1: try steps = 20");
        assert_eq!(chain(&err), "job 1: try --steps 20");
        let plain = anyhow::anyhow!("plain").context("outer");
        assert_eq!(chain(&plain), format!("{plain:#}"));
    }
}
