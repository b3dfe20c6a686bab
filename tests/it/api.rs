//! The library API alone (`seedling::session`), as a server or binding uses it, makes the
//! CLI's image: the same pixels and the same PNG, byte for byte.

use crate::common::*;
use seedling::models::ModelSpec;
use seedling::recipe::Overrides;
use seedling::session::{DeviceSpec, Event, RenderOptions, Session, StopFlag};
use seedling::{Error, ErrorKind};

fn tiny_session() -> Session {
    let spec = ModelSpec::parse(&tiny_sd()).unwrap();
    Session::open(&spec, None, DeviceSpec::Cpu).unwrap()
}

fn patch(prompt: &str, seed: u64) -> Overrides {
    Overrides {
        prompt: Some(prompt.into()),
        seed: Some(seed),
        steps: Some(4),
        ..Overrides::default()
    }
}

#[test]
fn the_api_renders_the_clis_png_byte_for_byte() {
    let home = tempfile::tempdir().unwrap();
    let cli_png = home.path().join("cli.png");
    ok(&mut tiny_generate(home.path(), "a red fox", 7, &cli_png));

    let session = tiny_session();
    let recipe = session.recipe(&patch("a red fox", 7));
    assert!(session.check(&recipe).unwrap().is_empty());
    let (mut pngs, mut steps) = (Vec::new(), 0);
    session
        .render(&mut [recipe], &RenderOptions::default(), |event| {
            match event {
                Event::Progress(_, tally) => steps = tally.position(),
                Event::Image(image, _) => pngs.push(image.png()?),
                _ => {}
            }
            Ok::<_, Error>(())
        })
        .unwrap();
    assert_eq!(steps, 4);
    assert_eq!(pngs.len(), 1);
    assert!(
        pngs[0] == std::fs::read(&cli_png).unwrap(),
        "the PNGs differ"
    );
}

#[test]
fn errors_have_kinds_a_server_can_answer_by() {
    let session = tiny_session();
    let mut recipe = session.recipe(&patch("x", 1));
    recipe.width = 501;
    let e = session.check(&recipe).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput, "{e}");
    let missing = ModelSpec::parse("/nonexistent/model-folder");
    let e = missing
        .and_then(|spec| Session::open(&spec, None, DeviceSpec::Cpu).map(|_| ()))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Model, "{e}");
}

#[test]
fn a_set_stop_flag_ends_the_run_with_interrupted_and_no_image() {
    let session = tiny_session();
    let stop = StopFlag::new();
    stop.stop();
    let options = RenderOptions {
        batch_size: 1,
        stop,
    };
    let mut images = 0;
    let mut recipes = [
        session.recipe(&patch("x", 1)),
        session.recipe(&patch("y", 2)),
    ];
    let result = session.render(&mut recipes, &options, |event| {
        if let Event::Image(..) = event {
            images += 1;
        }
        Ok::<_, Error>(())
    });
    assert!(
        matches!(result, Err(Error::Interrupted)),
        "{:?}",
        result.err()
    );
    assert_eq!(images, 0);
}
