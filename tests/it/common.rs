//! Helpers for tests that run the real `seedling` binary on the tiny fixture models.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(rel)
}

pub fn tiny_sd() -> String {
    shared("fixtures/tiny-sd").display().to_string()
}

/// The binary, isolated from the network, from the user's Hugging Face cache and from their
/// models folders and hash cache.
pub fn seedling(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seedling"));
    cmd.env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", home.join("hf"))
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN")
        // Models folders only where a test names them; model hashes cached in the test's home.
        .env_remove("SEEDLING_MODELS_DIR")
        .env("SEEDLING_HASH_CACHE", home.join("hash-cache.json"))
        .env("RUST_BACKTRACE", "0")
        .current_dir(home);
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the seedling binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and asserts success, showing stderr on failure.
pub fn ok(cmd: &mut Command) -> Output {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "seedling failed: {}\n{}",
        stderr(&o),
        stdout(&o)
    );
    o
}

/// Runs and asserts a failure exit (not a crash), returning stderr.
pub fn fails(cmd: &mut Command) -> String {
    let o = run(cmd);
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "expected a failure, got success: {}",
        stdout(&o)
    );
    assert!(o.status.code().is_some(), "killed by a signal: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    err
}

/// The tiny model with quick settings, writing to `out`.
pub fn tiny_generate(home: &Path, prompt: &str, seed: u64, out: &Path) -> Command {
    let mut cmd = seedling(home);
    cmd.args([
        "generate",
        prompt,
        "--model",
        &tiny_sd(),
        "--steps",
        "4",
        "--seed",
    ])
    .arg(seed.to_string())
    .arg("-o")
    .arg(out);
    cmd
}

pub fn pixels(path: &Path) -> image::RgbImage {
    image::open(path).expect("a readable PNG").to_rgb8()
}

/// PSNR in dB of two 8-bit images (infinite when identical).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64.powi(2) / mse).log10()
    }
}

/// The recipe of a PNG, as `inspect --json` prints it.
pub fn recipe_json(home: &Path, png: &Path) -> serde_json::Value {
    let json = stdout(&ok(seedling(home).args(["inspect", "--json"]).arg(png)));
    serde_json::from_str::<serde_json::Value>(&json).unwrap()["recipe"].clone()
}

/// The sha256 of a file, in hex.
pub fn sha256(path: &Path) -> String {
    seedling::provenance::sha256_hex(&std::fs::read(path).unwrap())
}
