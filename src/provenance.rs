//! Provenance: how and where an image was made. Kept apart from the Recipe so two recipes
//! compare equal by content alone (DESIGN.md).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// e.g. `seedling 0.1.0`
    pub tool: String,
    /// candle-core version the binary was built with.
    pub candle: String,
    /// e.g. `cpu`, `cuda:0`
    pub device: String,
    /// sha256 of the initial noise (f32 little-endian, before `init_noise_sigma`), hex.
    pub noise_sha256: String,
    /// sha256 of the 8-bit RGB pixels, row-major, hex.
    pub pixels_sha256: String,
    /// Set when the image was made by `replay` from another image.
    pub parent: Option<Parent>,
}

impl Provenance {
    /// Whether `pixels` are still the ones this provenance records; `false` means the image
    /// was edited after it was written (a replay can then match only the recorded hash).
    pub fn pixels_match(&self, pixels: &image::RgbImage) -> bool {
        self.pixels_sha256 == sha256_hex(pixels.as_raw())
    }
}

/// The image a replay started from, and what it changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parent {
    /// sha256 of the parent's 8-bit RGB pixels.
    pub pixels_sha256: String,
    /// `field=value` for every field the replay overrode; empty for an exact replay.
    pub overrides: Vec<String>,
    /// Set when the parent was made by another tool, e.g. "AUTOMATIC1111 (parameters text)":
    /// its recipe was mapped from that tool's metadata (absent for seedling parents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_by: Option<String>,
    /// What could not be carried over from a foreign parent's metadata.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmapped: Vec<String>,
}

/// Version strings baked in at build time (see build.rs).
pub const TOOL: &str = concat!("seedling ", env!("CARGO_PKG_VERSION"));
pub const CANDLE_VERSION: &str = env!("SEEDLING_CANDLE_VERSION");

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
