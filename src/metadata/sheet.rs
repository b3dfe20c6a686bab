//! A contact sheet's own metadata: iTXt `seedling-sheet` with the serde JSON of [`SheetMeta`]
//! (every cell's file name, place and full recipe), plus the first cell's A1111 `parameters`
//! text, as AUTOMATIC1111 writes for its grids.
//!
//! A sheet carries no `seedling` chunk on purpose: it is not one image that regenerates from one
//! recipe, so `read_recipe` refuses it (naming it a contact sheet) and `read_png` gives its
//! pixels with `meta: None`. Each cell's own PNG remains the thing to replay.

use super::{
    decode_with_texts, encode_rgb_png, find_text, format_parameters, parse_meta, printable,
    read_with_texts, ImageMeta, SEEDLING_KEYWORD,
};
use crate::{Error, Result};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Keyword of the sheet chunk (iTXt, UTF-8 JSON of [`SheetMeta`]).
pub const SHEET_KEYWORD: &str = "seedling-sheet";

/// Everything a contact sheet records about its cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SheetMeta {
    /// One entry per cell drawn, in the order drawn (row-major).
    pub cells: Vec<SheetEntry>,
    /// What varies along the columns of an X/Y plot (e.g. `cfg`), if any.
    pub x_axis: Option<String>,
    /// What varies along the rows of an X/Y plot, if any.
    pub y_axis: Option<String>,
}

/// One cell of a sheet: where its PNG is, where it sits, and its full recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SheetEntry {
    /// The cell PNG's file name (it sits next to the sheet).
    pub file: String,
    pub col: usize,
    pub row: usize,
    pub meta: ImageMeta,
}

/// The same entry with its recipe still as raw JSON, so each recipe goes through the one recipe
/// parser ([`parse_meta`]) and its schema checks and messages.
#[derive(Deserialize)]
struct RawSheetMeta {
    cells: Vec<RawSheetEntry>,
    x_axis: Option<String>,
    y_axis: Option<String>,
}

#[derive(Deserialize)]
struct RawSheetEntry {
    file: String,
    col: usize,
    row: usize,
    meta: serde_json::Value,
}

/// Encodes an 8-bit RGB PNG of the sheet carrying `meta` as iTXt `seedling-sheet`, and the first
/// cell's A1111 `parameters` text (as A1111 does for grids, so other tools show something).
pub fn encode_sheet_png(sheet: &RgbImage, meta: &SheetMeta) -> Result<Vec<u8>> {
    let first = meta.cells.first().ok_or_else(|| {
        Error::Invalid(
            "a contact sheet needs at least one cell; render at least one image first".into(),
        )
    })?;
    let json = serde_json::to_string(meta).map_err(|e| {
        Error::Metadata(format!(
            "could not serialize the contact sheet's recipes to JSON: {e}"
        ))
    })?;
    encode_rgb_png(
        sheet,
        &format_parameters(&first.meta.recipe),
        &[(SHEET_KEYWORD, json)],
    )
}

/// Encodes the sheet and writes it to `path` safely (temporary file, then a no-clobber move; see
/// [`crate::output::write_new`]).
pub fn write_sheet_png(
    path: &Path,
    sheet: &RgbImage,
    meta: &SheetMeta,
    overwrite: bool,
) -> Result<()> {
    crate::output::write_new(path, &encode_sheet_png(sheet, meta)?, overwrite)
}

/// Reads a contact sheet seedling wrote: its cells' recipes and its pixels. Refuses any other
/// PNG, saying what it is instead.
pub fn read_sheet(path: &Path) -> Result<(SheetMeta, RgbImage)> {
    let name = path.display().to_string();
    let (read, texts) = read_with_texts(path)?;
    let json = find_text(&texts, SHEET_KEYWORD).ok_or_else(|| not_a_sheet(&name, &texts))?;
    Ok((parse_sheet(json, &name)?, read.pixels))
}

/// Like [`read_sheet`] for bytes already in memory; `name` names the source in error messages.
pub fn decode_sheet(bytes: &[u8], name: &str) -> Result<(SheetMeta, RgbImage)> {
    let (read, texts) = decode_with_texts(bytes, name)?;
    let json = find_text(&texts, SHEET_KEYWORD).ok_or_else(|| not_a_sheet(name, &texts))?;
    Ok((parse_sheet(json, name)?, read.pixels))
}

fn not_a_sheet(name: &str, texts: &super::Texts) -> Error {
    let what = if find_text(texts, SEEDLING_KEYWORD).is_some() {
        "it is a single seedling image; read it with `seedling inspect` or replay it"
    } else {
        "it has no seedling metadata"
    };
    Error::Metadata(format!(
        "{name} is not a seedling contact sheet ({what}); give the sheet PNG that `seedling grid` \
         wrote"
    ))
}

/// The sheet's recipes; a chunk that is not a sheet's JSON is reported as damaged (with the
/// JSON syntax error when it is not JSON at all, as [`parse_meta`] does).
pub(super) fn parse_sheet(json: &str, name: &str) -> Result<SheetMeta> {
    let raw: RawSheetMeta = serde_json::from_str(json).map_err(|typed| {
        let why = match serde_json::from_str::<serde_json::Value>(json) {
            Err(syntax) => format!("it is not valid JSON ({syntax})"),
            // serde quotes the offending value, which comes from the file.
            Ok(_) => format!(
                "it is not a sheet's JSON ({})",
                printable(&typed.to_string())
            ),
        };
        Error::Metadata(format!(
            "{name} has a damaged seedling-sheet chunk: {why}; the cells' recipes cannot be \
             read from the sheet, but each cell's own PNG still carries its recipe"
        ))
    })?;
    let cells = raw
        .cells
        .into_iter()
        .map(|cell| {
            let cell_name = format!(
                "{name} (cell {} at column {}, row {})",
                printable(&cell.file),
                cell.col,
                cell.row
            );
            Ok(SheetEntry {
                meta: parse_meta(&cell.meta.to_string(), &cell_name)?,
                file: cell.file,
                col: cell.col,
                row: cell.row,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SheetMeta {
        cells,
        x_axis: raw.x_axis,
        y_axis: raw.y_axis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::sheet::{near_square, render_sheet, SheetCell, SheetLayout};
    use crate::metadata::{encode_png, read_png, read_recipe, PARAMETERS_KEYWORD};
    use crate::noise::RngKind;
    use crate::provenance::{sha256_hex, Provenance, CANDLE_VERSION, TOOL};
    use crate::recipe::{ModelDType, ModelRef, ModelSource, Recipe, SCHEMA_VERSION};
    use crate::sampler::SamplerKind;
    use std::collections::BTreeMap;

    /// A full recipe, built field by field as the metadata tests do.
    fn recipe(seed: u64, cfg: f64) -> Recipe {
        let mut files = BTreeMap::new();
        files.insert(
            "unet/diffusion_pytorch_model.safetensors".to_string(),
            "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa".to_string(),
        );
        Recipe {
            schema: SCHEMA_VERSION,
            model: ModelRef {
                source: ModelSource::Hub {
                    repo: "stabilityai/sd-turbo".into(),
                    revision: "b261bac6fd2cf515557d5d0707481eafa0485ec2".into(),
                },
                family: "sd2".into(),
                preset: Some("sd-turbo".into()),
                files,
                vae: None,
                loras: Vec::new(),
                embeddings: Vec::new(),
            },
            prompt: "a lighthouse at dawn, «golden» hour".into(),
            negative_prompt: "blurry".into(),
            seed,
            rng: RngKind::Chacha,
            variation_seed: Some(9),
            variation_strength: 0.25,
            width: 64,
            height: 64,
            sampler: SamplerKind::EulerAncestral,
            schedule: crate::sampler::ScheduleKind::Default,
            steps: 4,
            cfg,
            eta: 0.0,
            dtype: ModelDType::F32,
            truncate_prompt: false,
        }
    }

    fn image_meta(seed: u64, cfg: f64, pixels: &RgbImage) -> ImageMeta {
        ImageMeta {
            recipe: recipe(seed, cfg),
            provenance: Provenance {
                tool: TOOL.into(),
                candle: CANDLE_VERSION.into(),
                device: "cpu".into(),
                noise_sha256: sha256_hex(&seed.to_le_bytes()),
                pixels_sha256: sha256_hex(pixels.as_raw()),
                parent: None,
            },
        }
    }

    /// A 2 x 2 X/Y sheet of four cells (seed along x, cfg along y), drawn for real.
    fn sheet() -> (SheetMeta, RgbImage) {
        let mut cells = Vec::new();
        let mut entries = Vec::new();
        for (i, (seed, cfg)) in [(721, 1.5), (722, 1.5), (721, 7.0), (722, 7.0)]
            .into_iter()
            .enumerate()
        {
            let image = RgbImage::from_fn(64, 64, |x, y| {
                image::Rgb([(x * 4) as u8, (y * 4) as u8, (i * 60) as u8])
            });
            entries.push(SheetEntry {
                file: format!("{i:05}-{seed}-a-lighthouse-at-dawn.png"),
                col: i % 2,
                row: i / 2,
                meta: image_meta(seed, cfg, &image),
            });
            cells.push(SheetCell {
                image,
                label: format!("seed {seed}\ncfg {cfg}"),
            });
        }
        let (cols, rows) = near_square(cells.len());
        let layout = SheetLayout {
            col_labels: Some(vec!["seed 721".into(), "seed 722".into()]),
            row_labels: Some(vec!["cfg 1.5".into(), "cfg 7".into()]),
            ..SheetLayout::new(cols, rows)
        };
        let meta = SheetMeta {
            cells: entries,
            x_axis: Some("seed".into()),
            y_axis: Some("cfg".into()),
        };
        (meta, render_sheet(&cells, &layout).unwrap())
    }

    fn metadata_error<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(Error::Metadata(msg)) => msg,
            other => panic!("expected Error::Metadata, got {other:?}"),
        }
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, pixels) = sheet();
        let path = dir.path().join("grid.png");
        write_sheet_png(&path, &pixels, &meta, false).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            encode_sheet_png(&pixels, &meta).unwrap()
        );

        let (read_meta, read_pixels) = read_sheet(&path).unwrap();
        assert_eq!(read_meta, meta);
        assert_eq!(read_pixels, pixels);
        // Never overwritten unless asked.
        assert!(write_sheet_png(&path, &pixels, &meta, false).is_err());
    }

    #[test]
    fn chunks_are_the_sheet_json_and_the_first_cells_parameters() {
        let (meta, pixels) = sheet();
        let bytes = encode_sheet_png(&pixels, &meta).unwrap();
        let (_, texts) = decode_with_texts(&bytes, "grid.png").unwrap();
        let mut keywords: Vec<&str> = texts.iter().map(|(k, _)| k.as_str()).collect();
        keywords.sort();
        // No `seedling` chunk: a sheet is not one image with one recipe.
        assert_eq!(keywords, [PARAMETERS_KEYWORD, SHEET_KEYWORD]);
        assert_eq!(
            find_text(&texts, SHEET_KEYWORD),
            Some(serde_json::to_string(&meta).unwrap().as_str())
        );
        assert_eq!(
            find_text(&texts, PARAMETERS_KEYWORD),
            Some(format_parameters(&meta.cells[0].meta.recipe).as_str())
        );
    }

    #[test]
    fn a_sheet_reads_as_pixels_but_not_as_one_recipe() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, pixels) = sheet();
        let path = write(&dir, "grid.png", &encode_sheet_png(&pixels, &meta).unwrap());
        let read = read_png(&path).unwrap();
        assert_eq!(read.pixels, pixels);
        assert_eq!(read.meta, None);
        assert_eq!(
            read.parameters,
            Some(format_parameters(&meta.cells[0].meta.recipe))
        );
        let msg = metadata_error(read_recipe(&path));
        assert!(msg.contains("is a seedling contact sheet"), "{msg}");
        assert!(msg.contains("cell PNGs"), "{msg}");
    }

    #[test]
    fn an_image_is_not_a_sheet() {
        let dir = tempfile::tempdir().unwrap();
        let pixels = RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]));
        let m = image_meta(1, 7.0, &pixels);
        let path = write(&dir, "one.png", &encode_png(&pixels, &m).unwrap());
        let msg = metadata_error(read_sheet(&path));
        assert!(
            msg.contains(&format!(
                "{} is not a seedling contact sheet",
                path.display()
            )),
            "{msg}"
        );
        assert!(msg.contains("single seedling image"), "{msg}");

        let plain = encode_rgb_png(&pixels, "Steps: 1", &[]).unwrap();
        let msg = metadata_error(decode_sheet(&plain, "plain.png"));
        assert!(
            msg.contains("plain.png is not a seedling contact sheet (it has no seedling metadata)"),
            "{msg}"
        );
        let msg = metadata_error(decode_sheet(b"GIF89a", "anim.gif"));
        assert!(msg.contains("anim.gif is not a PNG file"), "{msg}");
    }

    #[test]
    fn damaged_sheet_chunks_are_explained() {
        let pixels = RgbImage::from_pixel(4, 4, image::Rgb([9, 9, 9]));
        let with_sheet_text = |text: &str| {
            encode_rgb_png(&pixels, "Steps: 1", &[(SHEET_KEYWORD, text.to_string())]).unwrap()
        };
        let msg = metadata_error(decode_sheet(&with_sheet_text("{\"cells\": [1, "), "g.png"));
        assert!(
            msg.contains("g.png has a damaged seedling-sheet chunk"),
            "{msg}"
        );
        assert!(
            msg.contains("each cell's own PNG still carries its recipe"),
            "{msg}"
        );

        // A cell whose recipe is of a future schema goes through the recipe parser's checks.
        let (meta, _) = sheet();
        let mut value = serde_json::to_value(&meta).unwrap();
        value["cells"][1]["meta"]["recipe"]["schema"] = serde_json::json!(99);
        let msg = metadata_error(decode_sheet(&with_sheet_text(&value.to_string()), "g.png"));
        assert!(
            msg.contains("g.png (cell 00001-722-a-lighthouse-at-dawn.png at column 1, row 0)"),
            "{msg}"
        );
        assert!(
            msg.contains("schema 99") && msg.contains("newer seedling"),
            "{msg}"
        );
    }

    #[test]
    fn a_sheet_with_damaged_json_says_so_wherever_it_is_read() {
        let pixels = RgbImage::from_pixel(4, 4, image::Rgb([9, 9, 9]));
        // Not JSON: the syntax error (line and column), not the typed parse's first complaint.
        let bytes = encode_rgb_png(
            &pixels,
            "Steps: 1",
            &[(SHEET_KEYWORD, "{\"cells\": 5, \"x_axis\": }".to_string())],
        )
        .unwrap();
        let expected = "g.png has a damaged seedling-sheet chunk: it is not valid JSON (expected \
                        value at line 1 column 24); the cells' recipes cannot be read from the \
                        sheet, but each cell's own PNG still carries its recipe";
        assert_eq!(metadata_error(decode_sheet(&bytes, "g.png")), expected);
        // Read as one image (replay, inspect): the same, not "use one of the cell PNGs".
        assert_eq!(
            metadata_error(crate::metadata::decode_any(
                &bytes,
                "g.png",
                &crate::metadata::foreign::NoLookup,
            )),
            expected
        );
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "g.png", &bytes);
        let msg = metadata_error(read_recipe(&path));
        assert!(msg.contains("has a damaged seedling-sheet chunk"), "{msg}");
        assert!(!msg.contains("use one of the cell PNGs"), "{msg}");

        // JSON of another shape: the typed reason.
        let bytes = encode_rgb_png(
            &pixels,
            "Steps: 1",
            &[(SHEET_KEYWORD, "{\"cells\": 5}".to_string())],
        )
        .unwrap();
        let msg = metadata_error(decode_sheet(&bytes, "g.png"));
        assert!(
            msg.contains("damaged seedling-sheet chunk: it is not a sheet's JSON (invalid type"),
            "{msg}"
        );
    }

    #[test]
    fn a_sheet_needs_a_cell() {
        let pixels = RgbImage::from_pixel(4, 4, image::Rgb([9, 9, 9]));
        let empty = SheetMeta {
            cells: vec![],
            x_axis: None,
            y_axis: None,
        };
        match encode_sheet_png(&pixels, &empty) {
            Err(Error::Invalid(msg)) => assert!(msg.contains("at least one cell"), "{msg}"),
            other => panic!("expected Error::Invalid, got {other:?}"),
        }
    }
}
