//! What a replay's verification weighs: the pixel difference from the source image, and, for
//! seedling's own images, whether a difference is a failure and what caused it.

use crate::provenance::sha256_hex;
use crate::{Error, Result};
use image::RgbImage;
use std::fmt;
use std::path::Path;

/// Two images compared pixel by pixel.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    Identical,
    /// Largest per-channel difference and PSNR in dB.
    Differs {
        max: u8,
        psnr: f64,
    },
    /// Nothing to compare pixel by pixel (a changed size); why.
    NotCompared(String),
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Comparison::Identical => f.write_str("identical"),
            Comparison::Differs { max, psnr } => {
                write!(f, "max pixel difference {max}, PSNR {psnr:.2} dB")
            }
            Comparison::NotCompared(why) => write!(f, "not compared: {why}"),
        }
    }
}

/// Largest per-channel difference and PSNR of two images of the same size.
pub fn compare(a: &RgbImage, b: &RgbImage) -> Comparison {
    if a.dimensions() != b.dimensions() {
        return Comparison::NotCompared(format!(
            "the images differ in size: {}x{} vs {}x{}",
            a.width(),
            a.height(),
            b.width(),
            b.height()
        ));
    }
    let mut max = 0u8;
    let mut sq = 0f64;
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sq += f64::from(d) * f64::from(d);
    }
    if max == 0 {
        return Comparison::Identical;
    }
    let mse = sq / a.as_raw().len() as f64;
    Comparison::Differs {
        max,
        psnr: 10.0 * (255.0f64 * 255.0 / mse).log10(),
    }
}

/// What the verification of seedling's own image weighs.
pub struct OwnVerify<'a> {
    pub image: &'a Path,
    /// The recipe was changed (fields, or other weights asked for): the difference is
    /// reported, never a failure.
    pub changed: bool,
    /// Weight files whose hash differs from the recorded ones (empty: the same weights).
    pub weights_differ: &'a [String],
    /// The recorded pixels_sha256, when the file's pixels no longer match it.
    pub edited: Option<&'a str>,
}

impl OwnVerify<'_> {
    /// An unchanged replay must be identical; when it is not, the error names the cause: an
    /// edited file, other weights, or else the build, device or dtype.
    pub fn verdict(&self, comparison: &Comparison, generated: &RgbImage) -> Result<()> {
        if *comparison == Comparison::Identical || self.changed {
            return Ok(());
        }
        let image = self.image.display();
        if let Some(recorded) = self.edited {
            let reproduces = sha256_hex(generated.as_raw()) == recorded;
            if reproduces {
                return Err(Error::Verify(format!(
                    "{image} was edited after it was written: its pixels no longer match the \
                     pixels_sha256 it records, and the replay does (the recipe reproduces \
                     exactly; compare with the original file)"
                )));
            }
            return Err(Error::Verify(format!(
                "{image} was edited after it was written (its pixels no longer match the \
                 pixels_sha256 it records), and the replay does not match that record either; \
                 exact regeneration needs the same build, device and dtype (see the README)"
            )));
        }
        if !self.weights_differ.is_empty() {
            return Err(Error::Verify(format!(
                "the replay is not identical to {image}: the weights differ from the ones it was \
                 made with: {}; replay with those weights (seedling inspect lists their hashes)",
                self.weights_differ.join(", ")
            )));
        }
        Err(Error::Verify(format!(
            "the replay is not identical to {image}; exact regeneration needs the same build, \
             device and dtype (see the README)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(pixels: &[u8]) -> RgbImage {
        RgbImage::from_raw(pixels.len() as u32 / 3, 1, pixels.to_vec()).unwrap()
    }

    #[test]
    fn comparison_reports_max_difference_and_psnr() {
        let a = image(&[10, 20, 30, 40, 50, 60]);
        assert_eq!(compare(&a, &a), Comparison::Identical);
        // One channel off by 3 of six: mse 1.5.
        let b = image(&[10, 20, 33, 40, 50, 60]);
        let want = 10.0 * (255.0f64 * 255.0 / 1.5).log10();
        assert_eq!(compare(&a, &b), Comparison::Differs { max: 3, psnr: want });
        assert_eq!(
            compare(&a, &image(&[0, 0, 0])).to_string(),
            "not compared: the images differ in size: 2x1 vs 1x1"
        );
    }

    #[test]
    fn an_unchanged_replay_that_differs_fails_and_names_the_cause() {
        let a = image(&[1, 2, 3]);
        let differs = compare(&a, &image(&[1, 2, 4]));
        let weights = ["unet".to_string()];
        let mut v = OwnVerify {
            image: Path::new("x.png"),
            changed: false,
            weights_differ: &[],
            edited: None,
        };
        assert!(v.verdict(&Comparison::Identical, &a).is_ok());
        let e = v.verdict(&differs, &a).unwrap_err().to_string();
        assert!(e.contains("same build, device and dtype"), "{e}");
        v.weights_differ = &weights;
        let e = v.verdict(&differs, &a).unwrap_err().to_string();
        assert!(
            e.contains("the weights differ from the ones it was made with: unet"),
            "{e}"
        );
        let hash = sha256_hex(a.as_raw());
        v.edited = Some(&hash);
        let e = v.verdict(&differs, &a).unwrap_err().to_string();
        assert!(
            e.contains("and the replay does (the recipe reproduces"),
            "{e}"
        );
        v.changed = true;
        assert!(v.verdict(&differs, &a).is_ok());
    }
}
