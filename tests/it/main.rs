//! seedling's integration tests, one binary: every file of tests/it/ is a module of it (cargo
//! finds tests/it/main.rs by itself; only `tests/*.rs` and `tests/*/main.rs` become binaries).
//! A test is named `module::test`: `cargo test --test it cli::` runs one file's tests,
//! `cargo test --test it parity::sd1_ddim` one test. One binary links once instead of once a
//! file and holds the dependencies' code once (eleven binaries took ~200 MB of disk).
//!
//! The tests run as threads of one process, so none may change what the process shares: its
//! environment, current folder or signal handlers. The binary under test runs as a child
//! (`common::seedling`) with its own environment and folder, and in-process checks get their
//! paths and model lookups passed in.

mod common;

mod api;
mod batch;
mod bench;
mod cli;
mod components;
mod embedding;
mod foreign;
mod grid_and_batch;
mod hub_cache;
mod lora;
mod lora_library;
mod models_folder;
mod parity;
mod parity_sdxl;
mod real_models;
mod sampler_golden;
mod single_file;
