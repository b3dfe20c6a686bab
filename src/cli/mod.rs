//! Command-line interface: clap definitions and the commands. Builds Recipes and hands them to
//! the library; never touches tensors.

pub mod allocator;
mod args;
mod batch;
mod bench;
mod generate;
mod grid;
mod inspect;
mod models;
mod progress;
mod render;
mod replay;
mod session;
pub mod spell;

pub use args::Cli;

use args::Command;
use std::process::ExitCode;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Generate(a) => generate::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Grid(a) => grid::run(a),
        Command::Batch(a) => batch::run(a),
        Command::Models(a) => models::run(a),
        Command::Bench(a) => bench::run(a),
    }
}
