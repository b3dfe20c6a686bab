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
            // `{:#}` prints the whole chain on one line: "error: a: b: c".
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
