//! PNG text chunks (tEXt, zTXt, iTXt), read by seedling itself while the png crate decodes the
//! pixels (it is told to skip text chunks), for two reasons:
//!
//! - Memory: every text chunk together, compressed bodies and decompressed texts, fits one
//!   budget, [`TEXT_BUDGET`], checked before each allocation; decompression stops at the budget.
//!   (The png crate keeps every compressed body, and bounds decompression per chunk only, so 96
//!   zTXt bombs of 16 MiB each in a 1.5 MB file held 1.5 GB.)
//! - Honesty: the png crate silently drops a text chunk it cannot decode (text that is not
//!   UTF-8 in an iTXt chunk, a bad keyword, a failed CRC). A dropped `seedling` chunk made a
//!   damaged seedling image read as AUTOMATIC1111's. Here a text chunk whose CRC fails, or a
//!   chunk of a keyword seedling reads that cannot be decoded, is an error that says so.
//!
//! [`TextTap`] sits between the file and the png decoder: every byte the decoder reads passes
//! through it once, in order, so the text chunks are collected in the same single pass that
//! decodes the pixels. It also stops a chunk the png decoder would panic on.

use super::foreign::{COMFYUI_KEYWORD, INVOKEAI_KEYWORD};
use super::{PARAMETERS_KEYWORD, SEEDLING_KEYWORD, SHEET_KEYWORD};
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

/// Most bytes of text chunks held at once, compressed or decompressed. A recipe is a few KiB;
/// a contact sheet's holds every cell's recipe (10 000 cells of 6 KiB fit); another tool's
/// workflow JSON is rarely above a few MiB.
pub const TEXT_BUDGET: usize = 64 << 20;

/// What each text chunk costs besides its bytes (its entry and allocations), so that millions
/// of empty chunks are bounded too.
const CHUNK_OVERHEAD: usize = 64;

/// The keywords whose text seedling reads: a damaged chunk of one of these is an error, while
/// another tool's undecodable chunk of any other keyword is skipped, as the png crate does.
const READ_KEYWORDS: [&str; 5] = [
    SEEDLING_KEYWORD,
    SHEET_KEYWORD,
    PARAMETERS_KEYWORD,
    COMFYUI_KEYWORD,
    INVOKEAI_KEYWORD,
];

/// Which kind of text chunk; the order is the precedence among chunks of the same keyword
/// (iTXt, the kind seedling writes, first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TextKind {
    ITxt,
    TExt,
    ZTxt,
}

impl TextKind {
    fn of(chunk_type: [u8; 4]) -> Option<TextKind> {
        match &chunk_type {
            b"iTXt" => Some(TextKind::ITxt),
            b"tEXt" => Some(TextKind::TExt),
            b"zTXt" => Some(TextKind::ZTxt),
            _ => None,
        }
    }
}

impl fmt::Display for TextKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TextKind::ITxt => "iTXt",
            TextKind::TExt => "tEXt",
            TextKind::ZTxt => "zTXt",
        })
    }
}

/// Why the tap stopped the stream (the text chunks could not be read, or a chunk the png
/// decoder cannot take safely), before it is worded for the user (with the file's name) by
/// `metadata::png_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TapFailure {
    /// More than [`TEXT_BUDGET`] bytes of text.
    TooLarge,
    /// A PLTE chunk whose length is not a whole number of RGB entries: the png crate (0.18.1)
    /// accepts it and then panics expanding the palette (image-rs/image-png#694), so it never
    /// gets there.
    BadPalette { len: u32 },
    /// A chunk that cannot be trusted or decoded: its keyword (when it has a readable one), its
    /// kind and why.
    Damaged {
        keyword: Option<String>,
        kind: TextKind,
        why: &'static str,
    },
}

impl fmt::Display for TapFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapFailure::TooLarge => write!(f, "text chunks larger than {TEXT_BUDGET} bytes"),
            TapFailure::BadPalette { len } => write!(f, "a PLTE chunk of {len} bytes"),
            TapFailure::Damaged { keyword, kind, why } => {
                write!(f, "damaged {kind} chunk {keyword:?}: {why}")
            }
        }
    }
}

impl std::error::Error for TapFailure {}

impl TapFailure {
    /// The failure a [`TextTap`] handed to the png decoder as an I/O error, if `e` is one.
    pub(super) fn from_io(e: &io::Error) -> Option<&TapFailure> {
        e.get_ref()?.downcast_ref::<TapFailure>()
    }
}

/// The bytes of every text chunk seen, still undecoded, and what they cost.
#[derive(Debug, Default)]
pub(super) struct RawTexts {
    chunks: Vec<(TextKind, Vec<u8>)>,
    /// Bytes held or promised: the bodies' lengths (reserved when a chunk's header is read)
    /// plus [`CHUNK_OVERHEAD`] each.
    held: usize,
}

impl RawTexts {
    fn charge(&mut self, bytes: usize) -> Result<(), TapFailure> {
        match self.held.checked_add(bytes) {
            Some(held) if held <= TEXT_BUDGET => {
                self.held = held;
                Ok(())
            }
            _ => Err(TapFailure::TooLarge),
        }
    }

    /// Decodes every chunk, within what is left of the budget: (keyword, text) in precedence
    /// order (iTXt first, then tEXt, then zTXt, each kind in file order). A damaged chunk of a
    /// keyword seedling reads is an error; one of another keyword is skipped.
    pub(super) fn decode(self) -> Result<Vec<(String, String)>, TapFailure> {
        let RawTexts { mut chunks, held } = self;
        chunks.sort_by_key(|(kind, _)| *kind);
        let mut budget = Budget { held };
        let mut texts = Vec::with_capacity(chunks.len());
        for (kind, body) in chunks {
            if let Some(text) = decode_chunk(kind, body, &mut budget)? {
                texts.push(text);
            }
        }
        Ok(texts)
    }
}

/// Bytes held while decoding: a decoded text is charged before it is made, the body it came
/// from is released once dropped.
struct Budget {
    held: usize,
}

impl Budget {
    fn left(&self) -> usize {
        TEXT_BUDGET.saturating_sub(self.held)
    }

    fn charge(&mut self, bytes: usize) -> Result<(), TapFailure> {
        if bytes > self.left() {
            return Err(TapFailure::TooLarge);
        }
        self.held += bytes;
        Ok(())
    }

    fn release(&mut self, bytes: usize) {
        self.held = self.held.saturating_sub(bytes);
    }
}

/// One chunk's (keyword, text); `None` for an undecodable chunk of a keyword seedling does not
/// read.
fn decode_chunk(
    kind: TextKind,
    mut body: Vec<u8>,
    budget: &mut Budget,
) -> Result<Option<(String, String)>, TapFailure> {
    let body_len = body.len();
    let Some(keyword) = keyword_of(&body) else {
        // Without a keyword nobody can read the chunk: skipped, as the png crate does.
        return Ok(None);
    };
    // In the file: its Latin-1 bytes (one per character) and a NUL.
    let keyword_bytes = keyword.chars().count() + 1;
    let read = READ_KEYWORDS.contains(&keyword.as_str());
    let damaged = |keyword: String, why: &'static str| {
        if read {
            Err(TapFailure::Damaged {
                keyword: Some(keyword),
                kind,
                why,
            })
        } else {
            Ok(None)
        }
    };
    // Drop the keyword and its NUL in place: the rest is the text's own bytes.
    body.drain(..keyword_bytes);
    let (compressed, text_at) = match kind {
        TextKind::TExt => (false, 0),
        TextKind::ZTxt => match body.first() {
            Some(0) => (true, 1),
            Some(_) => return damaged(keyword, "unknown compression method"),
            None => return damaged(keyword, "no compression method"),
        },
        TextKind::ITxt => {
            let compressed = match body.first() {
                Some(0) => false,
                Some(1) => true,
                _ => return damaged(keyword, "bad compression flag"),
            };
            if compressed && body.get(1) != Some(&0) {
                return damaged(keyword, "unknown compression method");
            }
            // Language tag and translated keyword: two NUL-terminated fields seedling ignores.
            let nul = |from: usize| body.get(from..)?.iter().position(|&b| b == 0);
            let Some(lang_len) = nul(2) else {
                return damaged(keyword, "no end to its language tag");
            };
            let Some(translated_len) = nul(2 + lang_len + 1) else {
                return damaged(keyword, "no end to its translated keyword");
            };
            (compressed, 2 + lang_len + 1 + translated_len + 1)
        }
    };
    let bytes = if compressed {
        let out = match fdeflate::decompress_to_vec_bounded(&body[text_at..], budget.left()) {
            Ok(out) => out,
            Err(fdeflate::BoundedDecompressionError::OutputTooLarge { .. }) => {
                return Err(TapFailure::TooLarge)
            }
            Err(_) => return damaged(keyword, "its compressed text does not decompress"),
        };
        budget.charge(out.len())?;
        drop(body);
        budget.release(body_len);
        out
    } else {
        body.drain(..text_at);
        body
    };
    let text = match kind {
        TextKind::ITxt => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => return damaged(keyword, "its text is not valid UTF-8"),
        },
        TextKind::TExt | TextKind::ZTxt => {
            let ours = keyword == SEEDLING_KEYWORD || keyword == SHEET_KEYWORD;
            match latin1_text(bytes, ours, budget)? {
                Some(text) => text,
                None => return damaged(keyword, "its text is UTF-8 with bytes changed"),
            }
        }
    };
    Ok(Some((keyword, text)))
}

/// The keyword of a text chunk: 1 to 79 bytes (Latin-1) before a NUL.
fn keyword_of(body: &[u8]) -> Option<String> {
    let len = body.iter().take(80).position(|&b| b == 0)?;
    (1..=79)
        .contains(&len)
        .then(|| body[..len].iter().map(|&b| char::from(b)).collect())
}

/// The text of a tEXt/zTXt chunk: Latin-1, as the PNG spec says. seedling writes its own chunks
/// as iTXt; a tool that rewrites one as tEXt/zTXt either keeps the UTF-8 bytes (common), read
/// back as the UTF-8 they are, or re-encodes the text as Latin-1 (PIL's `add_text` does when it
/// can), read as Latin-1. For `ours`, bytes that are mostly well-formed UTF-8 but not all are
/// neither: a damaged chunk (`None`). A text re-encoded from Latin-1 is charged to `budget`.
fn latin1_text(
    bytes: Vec<u8>,
    ours: bool,
    budget: &mut Budget,
) -> Result<Option<String>, TapFailure> {
    let bytes = match String::from_utf8(bytes) {
        Ok(text) if ours || text.is_ascii() => return Ok(Some(text)),
        Ok(text) => text.into_bytes(),
        Err(e) => e.into_bytes(),
    };
    if ours && has_utf8_sequence(&bytes) {
        return Ok(None);
    }
    // A new string (bytes from 0x80 take two in UTF-8) while the bytes are still held.
    let len = bytes.len() + bytes.iter().filter(|&&b| b >= 0x80).count();
    budget.charge(len)?;
    let text = bytes.iter().map(|&b| char::from(b)).collect();
    budget.release(bytes.len());
    Ok(Some(text))
}

/// Whether `bytes` hold a well-formed multi-byte UTF-8 sequence (a Latin-1 text almost never
/// does: it would need a letter such as 'Ã' followed by a symbol such as '©').
fn has_utf8_sequence(bytes: &[u8]) -> bool {
    bytes.utf8_chunks().any(|chunk| !chunk.valid().is_ascii())
}

/// Where the [`TextTap`] is in the chunk stream.
#[derive(Debug)]
enum Frame {
    /// Skipping the 8-byte signature (checked before the tap is used).
    Signature { left: usize },
    /// Reading a chunk's length and type.
    Header { bytes: [u8; 8], have: usize },
    /// Inside a chunk's data: `left` bytes to go; `text` when it is a text chunk being kept.
    Data { left: u64, text: Option<TextKind> },
    /// Reading the CRC of a text chunk.
    Crc {
        kind: TextKind,
        bytes: [u8; 4],
        have: usize,
    },
    /// Past IEND, or failed: nothing more is looked at.
    Done,
}

/// A reader that passes a PNG stream through unchanged while collecting its text chunks into a
/// [`RawTexts`] (checking their CRCs and the budget as they arrive). A failure is returned as an
/// I/O error wrapping a [`TapFailure`] (see [`TapFailure::from_io`]), which stops the png
/// decoder reading on.
pub(super) struct TextTap<'a, R> {
    inner: R,
    frame: Frame,
    /// The CRC of the text chunk being read, over its type and data.
    crc: crc32fast::Hasher,
    /// The data of the text chunk being read.
    body: Vec<u8>,
    texts: &'a mut RawTexts,
    failed: Option<TapFailure>,
}

impl<'a, R: Read> TextTap<'a, R> {
    /// Reads the stream from its start (the signature included).
    pub(super) fn new(inner: R, texts: &'a mut RawTexts) -> Self {
        TextTap {
            inner,
            frame: Frame::Signature { left: 8 },
            crc: crc32fast::Hasher::new(),
            body: Vec::new(),
            texts,
            failed: None,
        }
    }

    /// Follows the chunk stream through `data`, the next bytes of the file.
    fn feed(&mut self, mut data: &[u8]) -> Result<(), TapFailure> {
        while !data.is_empty() {
            match &mut self.frame {
                Frame::Done => return Ok(()),
                Frame::Signature { left } => {
                    let n = (*left).min(data.len());
                    *left -= n;
                    data = &data[n..];
                    if *left == 0 {
                        self.frame = Frame::Header {
                            bytes: [0; 8],
                            have: 0,
                        };
                    }
                }
                Frame::Header { bytes, have } => {
                    let n = (8 - *have).min(data.len());
                    bytes[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    if *have == 8 {
                        let bytes = *bytes;
                        self.start_chunk(bytes)?;
                    }
                }
                Frame::Data { left, text } => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    let (done, text) = (*left == 0, *text);
                    if let Some(kind) = text {
                        self.crc.update(&data[..n]);
                        self.body.extend_from_slice(&data[..n]);
                        if done {
                            self.frame = Frame::Crc {
                                kind,
                                bytes: [0; 4],
                                have: 0,
                            };
                        }
                    } else if done {
                        self.frame = Frame::Header {
                            bytes: [0; 8],
                            have: 0,
                        };
                    }
                    data = &data[n..];
                }
                Frame::Crc { kind, bytes, have } => {
                    let n = (4 - *have).min(data.len());
                    bytes[*have..*have + n].copy_from_slice(&data[..n]);
                    *have += n;
                    data = &data[n..];
                    if *have == 4 {
                        let (kind, stored) = (*kind, u32::from_be_bytes(*bytes));
                        self.end_text_chunk(kind, stored)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// After a chunk's length and type: keep a text chunk (within the budget), skip any other.
    fn start_chunk(&mut self, header: [u8; 8]) -> Result<(), TapFailure> {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let chunk_type = [header[4], header[5], header[6], header[7]];
        if &chunk_type == b"IEND" {
            self.frame = Frame::Done;
            return Ok(());
        }
        if &chunk_type == b"PLTE" && !len.is_multiple_of(3) {
            return Err(TapFailure::BadPalette { len });
        }
        let Some(kind) = TextKind::of(chunk_type) else {
            // Data and CRC of a chunk the tap does not keep (its CRC is the png decoder's
            // business).
            self.frame = Frame::Data {
                left: u64::from(len) + 4,
                text: None,
            };
            return Ok(());
        };
        // The budget is checked against the length the header declares, before any of it is
        // read or allocated.
        self.texts.charge(len as usize + CHUNK_OVERHEAD)?;
        self.crc = crc32fast::Hasher::new();
        self.crc.update(&chunk_type);
        self.body = Vec::with_capacity(len as usize);
        self.frame = if len == 0 {
            Frame::Crc {
                kind,
                bytes: [0; 4],
                have: 0,
            }
        } else {
            Frame::Data {
                left: u64::from(len),
                text: Some(kind),
            }
        };
        Ok(())
    }

    /// After a text chunk's CRC: keep the chunk if the CRC matches, else fail.
    fn end_text_chunk(&mut self, kind: TextKind, stored: u32) -> Result<(), TapFailure> {
        let body = std::mem::take(&mut self.body);
        let computed = std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize();
        if computed != stored {
            return Err(TapFailure::Damaged {
                keyword: keyword_of(&body),
                kind,
                why: "it fails its CRC check, so its bytes changed after it was written",
            });
        }
        self.texts.chunks.push((kind, body));
        self.frame = Frame::Header {
            bytes: [0; 8],
            have: 0,
        };
        Ok(())
    }
}

impl<R: Read> Read for TextTap<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(failure) = &self.failed {
            return Err(io::Error::other(failure.clone()));
        }
        let n = self.inner.read(buf)?;
        if let Err(failure) = self.feed(&buf[..n]) {
            self.frame = Frame::Done;
            self.failed = Some(failure.clone());
            return Err(io::Error::other(failure));
        }
        Ok(n)
    }
}

/// The png decoder's reader must be seekable, but it only reads forward; seeking would bypass
/// the tap, so it is refused.
impl<R> Seek for TextTap<'_, R> {
    fn seek(&mut self, _: SeekFrom) -> io::Result<u64> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the PNG text reader reads forward only",
        ))
    }
}
