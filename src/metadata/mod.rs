//! PNG text chunks: our JSON recipe (iTXt `seedling`) and AUTOMATIC1111's `parameters` text,
//! written into every image; and reading them back (DESIGN.md, "Metadata written into every PNG").
//!
//! One serializer and one parser: the `seedling` chunk holds exactly
//! `serde_json::to_string(&ImageMeta)` and is read with exactly
//! `serde_json::from_str::<ImageMeta>`.

pub mod a1111;
pub mod foreign;
mod png_errors;
mod printable;
pub mod sheet;
mod text_chunks;

pub use a1111::{format_parameters, PARAMETERS_KEYWORD};
pub use printable::printable;
pub use sheet::{
    decode_sheet, encode_sheet_png, read_sheet, write_sheet_png, SheetEntry, SheetMeta,
    SHEET_KEYWORD,
};

use crate::provenance::{sha256_hex, Provenance};
use crate::recipe::{Recipe, MAX_SIDE, MIN_SCHEMA_VERSION, SCHEMA_VERSION};
use crate::{Error, ErrorKind, Message, Result, Setting};
use foreign::{ForeignRecipe, ForeignSettings, ModelLookup};
use image::RgbImage;
use png_errors::{cannot_read, png_error, DecodeFailure};
use serde::{Deserialize, Serialize};
use std::io::{BufReader, Read};
use std::path::Path;
use text_chunks::{RawTexts, TextTap};

/// Keyword of our own chunk (iTXt, UTF-8 JSON).
pub const SEEDLING_KEYWORD: &str = "seedling";

/// The PNG file signature (PNG spec, section 5.2).
const PNG_SIGNATURE: [u8; 8] = [137, 80, 78, 71, 13, 10, 26, 10];

/// Largest decoded pixel buffer accepted: the largest image seedling makes, at 16-bit RGBA.
const MAX_DECODED_BYTES: usize = (MAX_SIDE as usize) * (MAX_SIDE as usize) * 8;

/// What the png decoder may allocate for itself besides the pixels we hand it: a row buffer
/// (an 8192-pixel RGBA16 row is 64 KiB) and the ancillary chunks it keeps (eXIf). Text chunks
/// are read by [`text_chunks`] within their own budget, colour profiles are skipped.
const DECODER_BYTES: usize = 64 << 20;

/// Everything seedling writes into its `seedling` chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageMeta {
    pub recipe: Recipe,
    pub provenance: Provenance,
}

/// What a PNG holds, as far as seedling cares.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPng {
    /// The pixels as 8-bit RGB, whatever the file's colour type and bit depth (palette and
    /// grey are expanded, 16-bit samples rounded to 8 bits, alpha dropped).
    pub pixels: RgbImage,
    /// Our recipe and provenance, when the file has a `seedling` chunk.
    pub meta: Option<ImageMeta>,
    /// The raw AUTOMATIC1111 `parameters` text, when present (ours or another tool's).
    pub parameters: Option<String>,
}

impl ReadPng {
    /// sha256 of the 8-bit RGB pixels, row-major (what `Provenance::pixels_sha256` records).
    pub fn pixels_sha256(&self) -> String {
        sha256_hex(self.pixels.as_raw())
    }

    /// Whether the pixels are still the ones the recipe made (`None` without a recipe). `false`
    /// means the image was edited after seedling wrote it.
    pub fn pixels_match_provenance(&self) -> Option<bool> {
        let meta = self.meta.as_ref()?;
        Some(meta.provenance.pixels_match(&self.pixels))
    }
}

/// Encodes an 8-bit RGB PNG carrying `meta` as iTXt `seedling` and A1111's `parameters` text.
pub fn encode_png(pixels: &RgbImage, meta: &ImageMeta) -> Result<Vec<u8>> {
    let json = serde_json::to_string(meta)
        .map_err(|e| Error::Metadata(format!("could not serialize the recipe to JSON: {e}")))?;
    encode_rgb_png(
        pixels,
        &format_parameters(&meta.recipe),
        &[(SEEDLING_KEYWORD, json)],
    )
}

/// The one PNG writer behind [`encode_png`] and [`encode_sheet_png`]: 8-bit RGB pixels, A1111's
/// `parameters` text, then each `(keyword, text)` of `chunks` as an uncompressed iTXt chunk.
fn encode_rgb_png(
    pixels: &RgbImage,
    parameters: &str,
    chunks: &[(&str, String)],
) -> Result<Vec<u8>> {
    let encode_err = |e: png::EncodingError| {
        Error::Metadata(format!(
            "could not encode a {}x{} PNG: {e}",
            pixels.width(),
            pixels.height()
        ))
    };

    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, pixels.width(), pixels.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // As PIL's `PngInfo.add_text` (which A1111 uses): tEXt when the text is Latin-1, else an
    // uncompressed iTXt with empty language tag and translated keyword. tEXt is written before
    // iTXt by the encoder, so `parameters` (what other tools look for) comes first either way.
    if is_latin1(parameters) {
        encoder.add_text_chunk(PARAMETERS_KEYWORD.into(), parameters.into())
    } else {
        encoder.add_itxt_chunk(PARAMETERS_KEYWORD.into(), parameters.into())
    }
    .map_err(encode_err)?;
    // Uncompressed, so `exiftool`, `strings` or a text editor show the recipe as is.
    for (keyword, text) in chunks {
        encoder
            .add_itxt_chunk((*keyword).into(), text.clone())
            .map_err(encode_err)?;
    }
    let mut writer = encoder.write_header().map_err(encode_err)?;
    writer
        .write_image_data(pixels.as_raw())
        .map_err(encode_err)?;
    writer.finish().map_err(encode_err)?;
    Ok(out)
}

/// Encodes the PNG and writes it to `path` safely (temporary file, then a no-clobber move; see
/// [`crate::output::write_new`]).
pub fn write_png(path: &Path, pixels: &RgbImage, meta: &ImageMeta, overwrite: bool) -> Result<()> {
    crate::output::write_new(path, &encode_png(pixels, meta)?, overwrite)
}

fn is_latin1(text: &str) -> bool {
    text.chars().all(|c| (c as u32) <= 0xFF)
}

/// Reads a PNG file: its pixels as RGB8, our recipe if present and A1111 text if present.
pub fn read_png(path: &Path) -> Result<ReadPng> {
    read_with_texts(path).map(|(read, _)| read)
}

/// Reads a PNG file that seedling wrote: its recipe (and provenance) and its pixels. Refuses a
/// file without a `seedling` chunk, saying what it has instead.
pub fn read_recipe(path: &Path) -> Result<(ImageMeta, RgbImage)> {
    let (read, texts) = read_with_texts(path)?;
    match read.meta {
        Some(meta) => Ok((meta, read.pixels)),
        None => Err(no_recipe_error(
            &path.display().to_string(),
            &texts,
            find_text(&texts, SHEET_KEYWORD).is_some(),
        )),
    }
}

/// The recipe of any image seedling can read: its own, or one mapped from another tool's
/// metadata (see [`foreign`]).
// One is read per command: boxing the larger variant would save nothing that matters.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum AnyRecipe {
    Seedling(ImageMeta),
    Foreign(foreign::ForeignRecipe),
}

/// Reads a PNG's recipe: our `seedling` chunk when present (it always wins), else what another
/// tool wrote (InvokeAI, ComfyUI, AUTOMATIC1111-style `parameters`), mapped with its unmapped
/// fields listed and the model it names looked up with `lookup`. Refuses contact sheets and
/// files with no generation metadata.
pub fn read_any(path: &Path, lookup: &dyn ModelLookup) -> Result<(AnyRecipe, RgbImage)> {
    let (read, texts) = read_with_texts(path)?;
    any_recipe(read, &texts, &path.display().to_string(), lookup)
}

/// Like [`read_any`] for bytes already in memory; `name` names the source in error messages.
pub fn decode_any(
    bytes: &[u8],
    name: &str,
    lookup: &dyn ModelLookup,
) -> Result<(AnyRecipe, RgbImage)> {
    let (read, texts) = decode_with_texts(bytes, name)?;
    any_recipe(read, &texts, name, lookup)
}

fn any_recipe(
    read: ReadPng,
    texts: &Texts,
    name: &str,
    lookup: &dyn ModelLookup,
) -> Result<(AnyRecipe, RgbImage)> {
    if let Some(meta) = read.meta {
        return Ok((AnyRecipe::Seedling(meta), read.pixels));
    }
    if find_text(texts, SHEET_KEYWORD).is_some() {
        return Err(no_recipe_error(name, texts, true));
    }
    match read_foreign(texts, name, lookup) {
        Some(Ok(recipe)) => Ok((AnyRecipe::Foreign(recipe), read.pixels)),
        Some(Err(e)) => Err(e),
        None => Err(no_recipe_error(name, texts, false)),
    }
}

/// Reads a foreign recipe from a PNG's text chunks, trying InvokeAI's chunk, then ComfyUI's
/// graph, then `parameters` text (A1111's layout, or Fooocus's JSON); the model it names is
/// looked up with `lookup`. `None` when none of them is present. When a chunk is present but
/// unusable, the next one is tried; if none works, the first failure is returned (worded for
/// `name`).
pub fn read_foreign(
    texts: &[(String, String)],
    name: &str,
    lookup: &dyn ModelLookup,
) -> Option<Result<ForeignRecipe>> {
    let find = |keyword: &str| {
        texts
            .iter()
            .find(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
    };
    type Parser = fn(&str) -> std::result::Result<ForeignSettings, String>;
    let candidates: [(&str, Parser, &str); 3] = [
        (
            foreign::INVOKEAI_KEYWORD,
            foreign::invokeai::parse,
            "InvokeAI metadata",
        ),
        (
            foreign::COMFYUI_KEYWORD,
            foreign::comfyui::parse,
            "a ComfyUI prompt graph",
        ),
        (
            PARAMETERS_KEYWORD,
            a1111::parse,
            "AUTOMATIC1111-style 'parameters' text",
        ),
    ];
    let mut first_error = None;
    for (keyword, parse, what) in candidates {
        let Some(text) = find(keyword) else { continue };
        match parse(text) {
            Ok(settings) => return Some(Ok(foreign::to_recipe(settings, lookup))),
            Err(why) => {
                first_error.get_or_insert_with(|| {
                    let message = Message::text(format!(
                        "{name} carries {what}, but seedling cannot map it to a recipe: {why}. \
                         Give the prompt and settings "
                    ))
                    .mention(Setting::Generate);
                    Error::hint(ErrorKind::BadInput, message)
                });
            }
        }
    }
    first_error.map(Err)
}

/// [`read_png`], plus every text chunk (for the readers of other chunks, such as sheets). The
/// file is streamed: its signature is checked before anything else is read, and no more of it
/// is held than the pixels and the text chunks' budget.
fn read_with_texts(path: &Path) -> Result<(ReadPng, Texts)> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| cannot_read(&name, &e))?;
    decode_stream(file, &name)
}

fn no_recipe_error(name: &str, texts: &Texts, is_sheet: bool) -> Error {
    if is_sheet {
        // A sheet whose own metadata is damaged says so, rather than pointing to its cells.
        if let Some(Err(damaged)) =
            find_text(texts, SHEET_KEYWORD).map(|json| sheet::parse_sheet(json, name))
        {
            return damaged;
        }
        return Error::Metadata(format!(
            "{name} is a seedling contact sheet, which holds the recipes of many cells, not one \
             image; use one of the cell PNGs it was made from (the sheet records their file names)"
        ));
    }
    let has = |k: &str| find_text(texts, k).is_some();
    let what = if has(foreign::INVOKEAI_KEYWORD) {
        "it has InvokeAI metadata"
    } else if has(foreign::COMFYUI_KEYWORD) {
        "it has a ComfyUI prompt graph"
    } else if has(PARAMETERS_KEYWORD) {
        "it has AUTOMATIC1111-style 'parameters' text"
    } else {
        return Error::Metadata(format!(
            "{name} carries no seedling recipe; it has no generation metadata seedling knows. \
             Use a PNG written by seedling or by AUTOMATIC1111, Forge, stable-diffusion.cpp, \
             ComfyUI or InvokeAI, or give the prompt and settings on the command line"
        ));
    };
    Error::Metadata(format!(
        "{name} carries no seedling recipe; {what}, which `seedling replay` and `seedling \
         inspect` map into a recipe (listing what they cannot map)"
    ))
}

/// Like [`read_png`] for bytes already in memory; `name` names the source in error messages.
pub fn decode_png(bytes: &[u8], name: &str) -> Result<ReadPng> {
    decode_with_texts(bytes, name).map(|(read, _)| read)
}

/// [`decode_stream`] of bytes already in memory.
fn decode_with_texts(bytes: &[u8], name: &str) -> Result<(ReadPng, Texts)> {
    decode_stream(bytes, name)
}

/// Reads a PNG from `reader` as it streams by: the signature first (so that a large file that is
/// not a PNG costs 8 bytes), then pixels and text chunks in one pass.
fn decode_stream(mut reader: impl Read, name: &str) -> Result<(ReadPng, Texts)> {
    let mut signature = Vec::with_capacity(PNG_SIGNATURE.len());
    (&mut reader)
        .take(PNG_SIGNATURE.len() as u64)
        .read_to_end(&mut signature)
        .map_err(|e| cannot_read(name, &e))?;
    if signature != PNG_SIGNATURE {
        return Err(Error::Metadata(format!(
            "{name} is not a PNG file; seedling reads recipes from PNG images it wrote"
        )));
    }
    let mut raw = RawTexts::default();
    let stream = TextTap::new(Read::chain(&signature[..], reader), &mut raw);
    let pixels = decode_pixels(stream).map_err(|e| png_error(name, e))?;
    let texts = raw
        .decode()
        .map_err(|e| png_error(name, DecodeFailure::Text(e)))?;
    let meta = find_text(&texts, SEEDLING_KEYWORD)
        .map(|json| parse_meta(json, name))
        .transpose()?;
    let parameters = find_text(&texts, PARAMETERS_KEYWORD).map(str::to_string);
    let read = ReadPng {
        pixels,
        meta,
        parameters,
    };
    Ok((read, texts))
}

/// Parses our chunk; on failure says whether the JSON is broken or of another schema.
fn parse_meta(json: &str, name: &str) -> Result<ImageMeta> {
    let schema_error = |schema: u64| {
        let advice = if schema > u64::from(SCHEMA_VERSION) {
            "use a newer seedling to read it"
        } else {
            "use the older seedling version that wrote it"
        };
        Error::Metadata(format!(
            "{name} carries a seedling recipe of schema {schema}, but this seedling reads \
             schemas {MIN_SCHEMA_VERSION} to {SCHEMA_VERSION}; {advice}"
        ))
    };
    let readable =
        |schema: u64| (u64::from(MIN_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&schema);
    match serde_json::from_str::<ImageMeta>(json) {
        Ok(mut meta) if readable(u64::from(meta.recipe.schema)) => {
            // Older schemas lack only fields whose defaults reproduce them; carry the recipe
            // forward so what is written from it is current.
            meta.recipe.schema = SCHEMA_VERSION;
            Ok(meta)
        }
        Ok(meta) => Err(schema_error(u64::from(meta.recipe.schema))),
        Err(err) => {
            // serde quotes the offending value, which comes from the file.
            let err = printable(&err.to_string()).into_owned();
            // Only to explain the failure: is it JSON at all, and of which schema?
            let value = match serde_json::from_str::<serde_json::Value>(json) {
                Ok(v) => v,
                // The syntax error, not the typed parse's reason: that one stops at the first
                // field of the wrong type, before the place where the JSON breaks.
                Err(syntax) => {
                    return Err(Error::Metadata(format!(
                        "{name} has a damaged seedling chunk: it is not valid JSON ({syntax}); \
                         the recipe cannot be recovered from this file"
                    )))
                }
            };
            match value["recipe"]["schema"].as_u64() {
                Some(schema) if !readable(schema) => Err(schema_error(schema)),
                _ => Err(Error::Metadata(format!(
                    "{name} has a seedling chunk that does not match recipe schema \
                     {SCHEMA_VERSION} ({err}); it was not written by a released seedling, or \
                     was edited"
                ))),
            }
        }
    }
}

/// Decoded text chunks as (keyword, text): iTXt first (the kind we write), then tEXt, then zTXt,
/// each kind in file order.
type Texts = Vec<(String, String)>;

/// The pixels (RGB8) of the PNG streaming from `stream`, read up to IEND (so that the tap sees
/// the text chunks after the image data too). The signature is the stream's first 8 bytes.
fn decode_pixels<R: Read>(stream: TextTap<'_, R>) -> std::result::Result<RgbImage, DecodeFailure> {
    let limits = png::Limits {
        bytes: DECODER_BYTES,
    };
    let mut decoder = png::Decoder::new_with_limits(BufReader::new(stream), limits);
    // Read by the tap instead; a colour profile is not used (pixels are taken as they are).
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    // EXPAND: palette -> RGB(A), grey below 8 bits -> 8 bits, tRNS -> alpha.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info()?;
    // The header's size is untrusted: refuse before allocating, not after.
    let size = reader
        .output_buffer_size()
        .filter(|&n| n <= MAX_DECODED_BYTES)
        .ok_or(DecodeFailure::TooLarge)?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf)?;
    buf.truncate(frame.buffer_size());
    // Reads the chunks after the image data (text may follow IDAT) up to IEND.
    reader.finish()?;
    to_rgb8(
        &buf,
        frame.width,
        frame.height,
        frame.color_type,
        frame.bit_depth,
    )
}

/// The first chunk with this keyword.
fn find_text<'a>(texts: &'a Texts, keyword: &str) -> Option<&'a str> {
    texts
        .iter()
        .find(|(k, _)| k == keyword)
        .map(|(_, v)| v.as_str())
}

fn to_rgb8(
    buf: &[u8],
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
) -> std::result::Result<RgbImage, DecodeFailure> {
    let channels = match color {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        // EXPAND turns palette images into RGB(A); anything else is a decoder surprise.
        png::ColorType::Indexed => return Err(DecodeFailure::Unsupported("indexed colour")),
    };
    let sample: fn(&[u8], usize) -> u8 = match depth {
        png::BitDepth::Eight => |b, i| b[i],
        // Round to nearest: v * 255 / 65535 = v / 257.
        png::BitDepth::Sixteen => |b, i| {
            let v = u16::from_be_bytes([b[2 * i], b[2 * i + 1]]) as u32;
            ((v + 128) / 257) as u8
        },
        _ => {
            return Err(DecodeFailure::Unsupported(
                "bit depth below 8 after expansion",
            ))
        }
    };
    let n = width as usize * height as usize;
    let bytes_per_sample = if depth == png::BitDepth::Sixteen {
        2
    } else {
        1
    };
    if buf.len() < n * channels * bytes_per_sample {
        return Err(DecodeFailure::Unsupported("short pixel buffer"));
    }
    let mut rgb = Vec::with_capacity(n * 3);
    for p in 0..n {
        let base = p * channels;
        if channels < 3 {
            let g = sample(buf, base);
            rgb.extend_from_slice(&[g, g, g]);
        } else {
            rgb.extend_from_slice(&[
                sample(buf, base),
                sample(buf, base + 1),
                sample(buf, base + 2),
            ]);
        }
    }
    RgbImage::from_raw(width, height, rgb).ok_or(DecodeFailure::Unsupported("pixel buffer size"))
}

#[cfg(test)]
mod foreign_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;
