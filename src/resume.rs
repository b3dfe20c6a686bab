//! Resuming a run (`batch --skip-existing`): whether the file already under an image's final
//! name is that image — a complete PNG, its pixels as seedling wrote them, made from the same
//! recipe — and may be kept instead of rendered. Anything else under the name is reported to
//! the user, never overwritten and never kept silently: a truncated file, an edited image or
//! the image of an edited job would otherwise pass for the job's result.

use crate::metadata;
use crate::recipe::Recipe;
use serde_json::Value;
use std::path::Path;

/// What is under an image's final name.
#[derive(Debug, Clone, PartialEq)]
pub enum Existing {
    /// A complete image of the recipe, pixels as written: keep it.
    Same,
    /// Something else: a sentence naming the file and what is wrong with it.
    Other(String),
}

/// How much of the recipe's model to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// The wanted recipe records the weights' sha256 (after loading): compare them too.
    Hashed,
    /// Before the weights are fetched and hashed (hashing gigabytes to decide whether to skip
    /// would cost what skipping saves): compare the model's source, revision, family, preset
    /// and VAE, not the weight hashes.
    NotHashed,
}

/// Whether the file at `path` is the image `wanted` makes (see the module doc).
pub fn check(path: &Path, wanted: &Recipe, weights: Weights) -> Existing {
    let read = match metadata::read_png(path) {
        Ok(read) => read,
        Err(e) => return Existing::Other(e.to_string()),
    };
    let name = path.display();
    let Some(meta) = &read.meta else {
        return Existing::Other(format!(
            "{name} carries no seedling recipe, so it is not an image of this job"
        ));
    };
    if read.pixels_match_provenance() != Some(true) {
        return Existing::Other(format!(
            "{name} was changed after seedling wrote it: its pixels no longer match the sha256 \
             it records"
        ));
    }
    let differences = differences(&meta.recipe, wanted, weights);
    if differences.is_empty() {
        Existing::Same
    } else {
        Existing::Other(format!(
            "{name} was made from another recipe: {}",
            differences.join(", ")
        ))
    }
}

/// Each recipe field (dotted path for nested ones) whose value differs, as
/// `steps is 4 in the file, 2 now`. `schema` is the format's version, not part of the recipe.
fn differences(found: &Recipe, wanted: &Recipe, weights: Weights) -> Vec<String> {
    let as_value = |r: &Recipe| {
        let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.remove("schema");
            if weights == Weights::NotHashed {
                if let Some(Value::Object(model)) = map.get_mut("model") {
                    model.remove("files");
                }
            }
        }
        v
    };
    let mut out = Vec::new();
    diff_values("", &as_value(found), &as_value(wanted), &mut out);
    out
}

fn diff_values(at: &str, found: &Value, wanted: &Value, out: &mut Vec<String>) {
    if found == wanted {
        return;
    }
    if let (Value::Object(f), Value::Object(w)) = (found, wanted) {
        let mut keys: Vec<&String> = w.keys().chain(f.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let path = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            let null = Value::Null;
            diff_values(
                &path,
                f.get(key).unwrap_or(&null),
                w.get(key).unwrap_or(&null),
                out,
            );
        }
        return;
    }
    out.push(format!(
        "{at} is {} in the file, {} now",
        shown(found),
        shown(wanted)
    ));
}

/// A value for a message: compact JSON, long text cut short.
fn shown(v: &Value) -> String {
    const MAX: usize = 40;
    let text = match v {
        Value::Null => return "absent".into(),
        other => other.to_string(),
    };
    if text.chars().count() <= MAX {
        text
    } else {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{encode_png, ImageMeta};
    use crate::provenance::{sha256_hex, Provenance};
    use crate::recipe::ModelSource;
    use crate::sampler::SamplerKind;
    use image::RgbImage;
    use std::collections::BTreeMap;

    fn recipe() -> Recipe {
        let mut r = Recipe {
            prompt: "a red apple".into(),
            seed: 7,
            width: 8,
            height: 8,
            sampler: SamplerKind::Euler,
            steps: 2,
            ..Recipe::default()
        };
        r.model.source = ModelSource::Local {
            path: "/models/tiny".into(),
        };
        r.model.family = "sd1".into();
        r.model.files = BTreeMap::from([("unet/w.safetensors".into(), "ab".repeat(32))]);
        r
    }

    /// A PNG as seedling writes it: `recipe`, and provenance recording the sha256 of
    /// `recorded`; its pixels are `actual` (other pixels than recorded = an edited image).
    fn png_of(recipe: &Recipe, recorded: &RgbImage, actual: &RgbImage) -> Vec<u8> {
        let meta = ImageMeta {
            recipe: recipe.clone(),
            provenance: Provenance {
                tool: "seedling test".into(),
                candle: "0".into(),
                device: "cpu".into(),
                noise_sha256: String::new(),
                pixels_sha256: sha256_hex(recorded.as_raw()),
                parent: None,
            },
        };
        encode_png(actual, &meta).unwrap()
    }

    fn png(recipe: &Recipe, pixels: &RgbImage) -> Vec<u8> {
        png_of(recipe, pixels, pixels)
    }

    fn check_bytes(bytes: &[u8], wanted: &Recipe, weights: Weights) -> (Existing, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job-7.png");
        std::fs::write(&path, bytes).unwrap();
        (check(&path, wanted, weights), path.display().to_string())
    }

    #[test]
    fn a_complete_image_of_the_recipe_is_kept() {
        let r = recipe();
        let bytes = png(&r, &RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3])));
        assert_eq!(check_bytes(&bytes, &r, Weights::Hashed).0, Existing::Same);
        // Before hashing, the weight hashes are not compared (the job's recipe has none yet).
        let mut unhashed = r.clone();
        unhashed.model.files.clear();
        assert_eq!(
            check_bytes(&bytes, &unhashed, Weights::NotHashed).0,
            Existing::Same
        );
        assert_ne!(
            check_bytes(&bytes, &unhashed, Weights::Hashed).0,
            Existing::Same
        );
    }

    #[test]
    fn a_truncated_file_is_not_kept() {
        let r = recipe();
        let bytes = png(&r, &RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3])));
        let (got, name) = check_bytes(&bytes[..bytes.len() - 20], &r, Weights::Hashed);
        let Existing::Other(why) = got else {
            panic!("a truncated PNG was kept")
        };
        assert!(why.starts_with(&name), "{why}");
    }

    #[test]
    fn an_edited_image_is_not_kept() {
        let r = recipe();
        let original = RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]));
        let mut edited = original.clone();
        edited.put_pixel(0, 0, image::Rgb([9, 9, 9]));
        // What an editor that keeps the text chunks writes: the recipe and provenance of the
        // original over other pixels.
        let (got, name) = check_bytes(&png_of(&r, &original, &edited), &r, Weights::Hashed);
        assert_eq!(
            got,
            Existing::Other(format!(
                "{name} was changed after seedling wrote it: its pixels no longer match the \
                 sha256 it records"
            ))
        );
    }

    #[test]
    fn the_image_of_an_edited_job_is_not_kept_and_the_change_is_named() {
        let r = recipe();
        let bytes = png(&r, &RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3])));
        let mut wanted = r.clone();
        wanted.steps = 4;
        wanted.prompt = "a green apple".into();
        wanted.model.source = ModelSource::Local {
            path: "/models/other".into(),
        };
        let (got, name) = check_bytes(&bytes, &wanted, Weights::Hashed);
        assert_eq!(
            got,
            Existing::Other(format!(
                "{name} was made from another recipe: model.source.path is \"/models/tiny\" in \
                 the file, \"/models/other\" now, prompt is \"a red apple\" in the file, \"a \
                 green apple\" now, steps is 2 in the file, 4 now"
            ))
        );
    }

    #[test]
    fn a_file_without_a_recipe_or_not_a_png_is_not_kept() {
        let r = recipe();
        let (got, name) = check_bytes(b"not a png", &r, Weights::Hashed);
        let Existing::Other(why) = got else {
            panic!("kept")
        };
        assert!(why.starts_with(&format!("{name} is not a PNG")), "{why}");

        let mut plain = Vec::new();
        RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]))
            .write_to(
                &mut std::io::Cursor::new(&mut plain),
                image::ImageFormat::Png,
            )
            .unwrap();
        let (got, name) = check_bytes(&plain, &r, Weights::Hashed);
        assert_eq!(
            got,
            Existing::Other(format!(
                "{name} carries no seedling recipe, so it is not an image of this job"
            ))
        );
    }
}
