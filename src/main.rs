//! The `seedling` command: parse, run, print the error chain once, exit code.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::allocator::keep_freed_memory();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            // The whole chain on one line, as `{:#}` prints it ("error: a: b: c"), with the
            // library's messages naming settings as flags.
            eprintln!("error: {}", cli::spell::chain(&err));
            ExitCode::FAILURE
        }
    }
}
