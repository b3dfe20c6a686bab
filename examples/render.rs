//! Renders one image through the library API alone (no CLI code), as a server or a binding
//! would: open a model, build a recipe from a prompt and a patch, check it, render, save.
//!
//! ```text
//! cargo run --release --example render -- MODEL PROMPT SEED OUT.png
//! cargo run --release --example render -- ../shared/fixtures/tiny-sd "a red fox" 7 fox.png
//! ```
//! MODEL is a preset (`sd-turbo`), a Hugging Face repo or a local diffusers folder. The PNG
//! carries its recipe, so `seedling replay --verify OUT.png` regenerates it.

use seedling::{DeviceSpec, Event, ModelSpec, Overrides, RenderOptions, Session};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, prompt, seed, out] = args.as_slice() else {
        eprintln!("usage: render MODEL PROMPT SEED OUT.png");
        return ExitCode::FAILURE;
    };
    match render(model, prompt, seed, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn render(model: &str, prompt: &str, seed: &str, out: &str) -> seedling::Result<()> {
    let seed = seed
        .parse()
        .map_err(|_| seedling::Error::Invalid(format!("seed '{seed}' is not a whole number")))?;
    let session = Session::open(&ModelSpec::parse(model)?, None, DeviceSpec::Cpu)?;
    let patch = Overrides {
        prompt: Some(prompt.into()),
        seed: Some(seed),
        ..Overrides::default()
    };
    let recipe = session.recipe(&patch);
    for warning in session.check(&recipe)? {
        eprintln!("warning: {warning}");
    }
    let mut png = None;
    session.render(&mut [recipe], &RenderOptions::default(), |event| {
        if let Event::Image(image, _) = event {
            png = Some(image.png()?);
        }
        seedling::Result::Ok(())
    })?;
    let png = png.expect("one recipe renders one image");
    // A new file only, written whole (`output::write_new` goes through a temporary name).
    seedling::output::write_new(std::path::Path::new(out), &png, false)
}
