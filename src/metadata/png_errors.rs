//! Why a PNG could not be read, worded for people: what is wrong with the file, in words (not
//! the png crate's Rust structures), and what to do.

use super::text_chunks::{TapFailure, TextKind, TEXT_BUDGET};
use super::{printable, DECODER_BYTES, SEEDLING_KEYWORD, SHEET_KEYWORD};
use crate::recipe::MAX_SIDE;
use crate::Error;

/// The file could not be opened or read (not a fault of its contents).
pub(super) fn cannot_read(name: &str, e: &std::io::Error) -> Error {
    Error::Metadata(format!(
        "cannot read image {name}: {e}; check the path and that the file is readable"
    ))
}

/// Why decoding failed, before it is worded for the user.
#[derive(Debug)]
pub(super) enum DecodeFailure {
    Png(png::DecodingError),
    TooLarge,
    Unsupported(&'static str),
    /// What the text chunk reader refused: text too large, a damaged chunk, or a chunk the png
    /// decoder would panic on.
    Text(TapFailure),
}

impl From<png::DecodingError> for DecodeFailure {
    fn from(e: png::DecodingError) -> Self {
        // The tap stops the png decoder with an I/O error that carries its own failure.
        if let png::DecodingError::IoError(io) = &e {
            if let Some(failure) = TapFailure::from_io(io) {
                return DecodeFailure::Text(failure.clone());
            }
        }
        DecodeFailure::Png(e)
    }
}

pub(super) fn png_error(name: &str, failure: DecodeFailure) -> Error {
    use png::DecodingError as D;
    let msg = match failure {
        DecodeFailure::Png(D::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!(
                "{name} is a truncated PNG (the data ends early); the file was probably cut off \
                 while being written or copied — use a complete copy"
            )
        }
        DecodeFailure::Png(D::IoError(e)) => return cannot_read(name, &e),
        DecodeFailure::Png(D::LimitsExceeded) | DecodeFailure::TooLarge => format!(
            "{name} is too large to read (more than {MAX_SIDE}x{MAX_SIDE} pixels, or more than \
             {} MiB of other chunks); seedling reads images it can generate",
            DECODER_BYTES >> 20
        ),
        DecodeFailure::Png(e) => format!(
            "{name} is a damaged PNG ({}); the file is corrupt or truncated — use an intact copy",
            png_reason(&e)
        ),
        DecodeFailure::Unsupported(what) => format!(
            "{name} is a PNG seedling cannot decode ({what}); convert it to 8-bit RGB first"
        ),
        DecodeFailure::Text(TapFailure::TooLarge) => format!(
            "{name} has metadata larger than {} MiB in its text chunks, more than seedling \
             reads from one PNG (a recipe is a few KiB); remove the extra text chunks (save a \
             copy without metadata) and give the prompt and settings on the command line",
            TEXT_BUDGET >> 20
        ),
        DecodeFailure::Text(TapFailure::BadPalette { len }) => format!(
            "{name} is a damaged PNG (its PLTE chunk is {len} bytes, not a whole number of \
             3-byte colours); the file is corrupt — use an intact copy"
        ),
        DecodeFailure::Text(TapFailure::Damaged { keyword, kind, why }) => {
            damaged_chunk_message(name, keyword.as_deref(), kind, why)
        }
    };
    Error::Metadata(msg)
}

/// "x.png has a damaged seedling chunk: …", saying what is lost with it.
fn damaged_chunk_message(name: &str, keyword: Option<&str>, kind: TextKind, why: &str) -> String {
    let (what, lost) = match keyword {
        Some(SEEDLING_KEYWORD) => (
            "seedling chunk".to_string(),
            "the recipe cannot be recovered from this file",
        ),
        Some(SHEET_KEYWORD) => (
            "seedling-sheet chunk".to_string(),
            "the cells' recipes cannot be read from the sheet, but each cell's own PNG still \
             carries its recipe",
        ),
        Some(k) => (
            format!("{kind} chunk '{}'", printable(k)),
            "its metadata cannot be read",
        ),
        None => (format!("{kind} chunk"), "its metadata cannot be read"),
    };
    format!("{name} has a damaged {what}: {why}; {lost} — use an intact copy")
}

/// The png crate's message, worded for people: chunk types as their four letters ('IHDR'),
/// not the Rust structure `ChunkType { type: IHDR, critical: true, … }`, and deflate errors in
/// words ("corrupt deflate stream: invalid distance code", not "… InvalidDistanceCode").
fn png_reason(e: &png::DecodingError) -> String {
    const CHUNK: &str = "ChunkType { type: ";
    let message = e.to_string();
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while let Some(at) = rest.find(CHUNK) {
        out.push_str(&rest[..at]);
        let after = &rest[at + CHUNK.len()..];
        // The four letters run up to the first ", critical: "; the structure ends at " }".
        let span = after.find(", critical: ").and_then(|end| {
            let close = after[end..].find(" }")?;
            Some((end, end + close + 2))
        });
        match span {
            Some((end, next)) => {
                out.push('\'');
                out.push_str(&after[..end]);
                out.push('\'');
                rest = &after[next..];
            }
            None => {
                out.push_str(CHUNK);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    match out.strip_prefix("Corrupt deflate stream. ") {
        Some(kind) => format!("corrupt deflate stream: {}", words(kind)),
        None => out,
    }
}

/// `InvalidDistanceCode` -> "invalid distance code".
fn words(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}
