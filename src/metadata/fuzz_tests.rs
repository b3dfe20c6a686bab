//! A seeded fuzz run over the PNG reader and every metadata reader behind it (issue 22, "a
//! fuzzing pass of your own … that runs in CI in bounded time").
//!
//! Real PNGs (seedling images, a contact sheet, AUTOMATIC1111, ComfyUI and InvokeAI metadata,
//! other colour types) are mutated as bytes (bit flips, truncations, length fields, garbage
//! after IEND) and as chunks (duplicated, dropped, moved, bodies edited with their CRC fixed so
//! the decoder gets past its checks, header fields, text chunks inserted or rewritten with
//! mutated metadata texts, small compression bombs), then read by `decode_png`, `decode_any`,
//! `decode_sheet` and, for some, from a file. The property: no panic; `Ok`, or an
//! `Error::Metadata` naming the file in words (no Rust structures); the text kept within its
//! budget; the same answer from bytes and from a file.
//!
//! A fixed seed (ChaCha8) makes every run the same cases, so a failure names a case that can be
//! rerun; a seeded loop over purpose-made mutators needs no new dependency (proptest's
//! shrinking would not shorten these structured cases much).

use super::foreign_tests::fake_lookup;
use super::tests::{chunk, meta, pixels};
use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CASES: usize = 5000;
const NAME: &str = "fuzz.png";
/// Longest mutated text (bytes): long enough for long-line and many-field cases, short enough
/// that every case takes milliseconds.
const MAX_TEXT: usize = 64 << 10;

/// AUTOMATIC1111 infotexts (what seedling writes for A1111, checked against A1111's own code).
const A1111_EXPECTED: &str = include_str!("testdata/a1111_expected.json");
/// ComfyUI's `prompt` and `workflow` chunks from real ComfyUI files.
const COMFY_WILD: &str = include_str!("testdata/comfyui_wild.json");

/// InvokeAI 5.x `invokeai_metadata` and the 3.x form of its model.
const INVOKE: &str = r#"{"generation_mode": "txt2img", "positive_prompt": "a red fox in the snow",
 "negative_prompt": "", "width": 512, "height": 768, "seed": 3043525093, "rand_device": "cpu",
 "cfg_scale": 7.5, "steps": 30, "scheduler": "euler", "clip_skip": 0,
 "model": {"key": "7a1b2c3d", "hash": "blake3:44c1c5b2ee0a", "name": "stable-diffusion-v1-5",
 "base": "sd-1", "type": "main"}, "loras": [], "app_version": "5.0.0"}"#;
const INVOKE_3: &str = r#"{"positive_prompt": "a cabin", "negative_prompt": "", "seed": 7,
 "width": 512, "height": 512, "steps": 20, "cfg_scale": 7, "scheduler": "dpmpp_2m_k",
 "model": {"model_name": "stable-diffusion-v1-5", "base_model": "sd-1", "model_type": "main"}}"#;

/// Keywords the mutated text chunks get (written as Latin-1).
const KEYWORDS: [&str; 9] = [
    SEEDLING_KEYWORD,
    SHEET_KEYWORD,
    PARAMETERS_KEYWORD,
    foreign::COMFYUI_KEYWORD,
    foreign::INVOKEAI_KEYWORD,
    "workflow",
    "Comment",
    "seedlinG",
    "Beschreibung \u{e9}\u{ff}",
];

/// Characters and words that break parsers.
const NASTY: [&str; 24] = [
    "\0",
    "\n",
    "\r\n",
    ",",
    ":",
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    "é",
    "\u{1b}[2K",
    "\u{202e}",
    "\u{ffff}",
    "🌅",
    "-1",
    "1e999",
    "NaN",
    "18446744073709551616",
    "null",
    "[]",
    "{}",
    ": ,",
];

/// The texts the mutations start from: (keyword, text).
fn samples() -> Vec<(&'static str, String)> {
    let mut out = vec![
        (
            SEEDLING_KEYWORD,
            serde_json::to_string(&meta("a lighthouse «at» dawn", "blurry")).unwrap(),
        ),
        (SHEET_KEYWORD, serde_json::to_string(&sheet_meta()).unwrap()),
        (foreign::INVOKEAI_KEYWORD, INVOKE.to_string()),
        (foreign::INVOKEAI_KEYWORD, INVOKE_3.to_string()),
        (
            PARAMETERS_KEYWORD,
            "a cat\nNegative prompt: dog\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, \
             CFG scale: 7, Seed: 1, Size: 512x768, Model hash: 6ce0161689, RNG: NV"
                .to_string(),
        ),
        (
            PARAMETERS_KEYWORD,
            "a cat in a hat\nSteps: 20, CFG scale: 7.000000, Guidance: 3.500000, Eta: 0.000000, \
             Seed: 42, Size: 512x512, Model: v1-5-pruned-emaonly.safetensors, RNG: cuda, \
             Sampler: euler, Version: stable-diffusion.cpp"
                .to_string(),
        ),
    ];
    let a1111: serde_json::Value = serde_json::from_str(A1111_EXPECTED).unwrap();
    for text in a1111
        .as_object()
        .unwrap()
        .values()
        .filter_map(|v| v.as_str())
    {
        out.push((PARAMETERS_KEYWORD, text.to_string()));
    }
    let comfy: serde_json::Value = serde_json::from_str(COMFY_WILD).unwrap();
    for key in ["lora_prompt", "weighted_prompt"] {
        out.push((
            foreign::COMFYUI_KEYWORD,
            comfy[key].as_str().unwrap().into(),
        ));
    }
    out.push(("workflow", comfy["lora_workflow"].as_str().unwrap().into()));
    out
}

fn sheet_meta() -> SheetMeta {
    let cell = |i: usize| SheetEntry {
        file: format!("0000{i}-721-a-lighthouse.png"),
        col: i,
        row: 0,
        meta: meta("a lighthouse", ""),
    };
    SheetMeta {
        cells: vec![cell(0), cell(1)],
        x_axis: Some("seed".into()),
        y_axis: None,
    }
}

/// A PNG of `pixels()` with text chunks (chunk type, keyword, text), made by the png crate.
fn png_with(texts: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 7, 5);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    for (kind, keyword, text) in texts {
        let (k, t) = (keyword.to_string(), text.to_string());
        match *kind {
            "tEXt" => enc.add_text_chunk(k, t),
            "zTXt" => enc.add_ztxt_chunk(k, t),
            _ => enc.add_itxt_chunk(k, t),
        }
        .unwrap();
    }
    let mut w = enc.write_header().unwrap();
    w.write_image_data(pixels().as_raw()).unwrap();
    w.finish().unwrap();
    out
}

/// The PNGs the mutations start from.
fn base_pngs(samples: &[(&'static str, String)]) -> Vec<Vec<u8>> {
    let text = |keyword: &str| {
        samples
            .iter()
            .find(|(k, _)| *k == keyword)
            .map(|(_, t)| t.as_str())
            .unwrap()
    };
    let mut out = vec![
        encode_png(&pixels(), &meta("a lighthouse «at» dawn", "blurry")).unwrap(),
        encode_png(&pixels(), &meta("灯台 at dawn", "")).unwrap(),
        encode_sheet_png(&pixels(), &sheet_meta()).unwrap(),
        png_with(&[("tEXt", PARAMETERS_KEYWORD, text(PARAMETERS_KEYWORD))]),
        png_with(&[
            (
                "tEXt",
                foreign::COMFYUI_KEYWORD,
                text(foreign::COMFYUI_KEYWORD),
            ),
            ("tEXt", "workflow", text("workflow")),
        ]),
        png_with(&[("zTXt", foreign::INVOKEAI_KEYWORD, INVOKE)]),
        png_with(&[]),
    ];
    // Other colour types and depths: 2-bit palette with tRNS, 16-bit grey with alpha.
    let mut pal = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut pal, 4, 2);
        enc.set_color(png::ColorType::Indexed);
        enc.set_depth(png::BitDepth::Two);
        enc.set_palette(vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 255, 0, 1]);
        enc.set_trns(vec![0, 128]);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[0b00_01_10_11, 0b11_10_01_00]).unwrap();
        w.finish().unwrap();
    }
    out.push(pal);
    let mut grey = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut grey, 3, 2);
        enc.set_color(png::ColorType::GrayscaleAlpha);
        enc.set_depth(png::BitDepth::Sixteen);
        enc.add_itxt_chunk(PARAMETERS_KEYWORD.into(), "grey\nSteps: 2, Seed: 3".into())
            .unwrap();
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[7u8; 3 * 2 * 4]).unwrap();
        w.finish().unwrap();
    }
    out.push(grey);
    out
}

/// A PNG cut into chunks (type, data); what does not parse as a chunk is kept as a tail.
struct Chunks {
    chunks: Vec<([u8; 4], Vec<u8>)>,
    tail: Vec<u8>,
}

impl Chunks {
    fn parse(png: &[u8]) -> Chunks {
        let mut chunks = Vec::new();
        let mut at = 8;
        while at + 12 <= png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            if at + 12 + len > png.len() {
                break;
            }
            let kind: [u8; 4] = png[at + 4..at + 8].try_into().unwrap();
            chunks.push((kind, png[at + 8..at + 8 + len].to_vec()));
            at += 12 + len;
        }
        Chunks {
            chunks,
            tail: png[at.min(png.len())..].to_vec(),
        }
    }

    /// The PNG again, every CRC correct.
    fn bytes(&self) -> Vec<u8> {
        let mut out = PNG_SIGNATURE.to_vec();
        for (kind, data) in &self.chunks {
            out.extend(chunk(kind, data));
        }
        out.extend_from_slice(&self.tail);
        out
    }
}

fn mutate_text(rng: &mut ChaCha8Rng, text: &str) -> String {
    let mut s = text.to_string();
    for _ in 0..rng.random_range(1..4) {
        let cut = |rng: &mut ChaCha8Rng, s: &str| {
            let mut i = rng.random_range(0..=s.len());
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        match rng.random_range(0..6) {
            0 => {
                let at = cut(rng, &s);
                s.truncate(at);
            }
            1 => {
                let (a, b) = (cut(rng, &s), cut(rng, &s));
                s.replace_range(a.min(b)..a.max(b), "");
            }
            2 => {
                let at = cut(rng, &s);
                s.insert_str(at, NASTY[rng.random_range(0..NASTY.len())]);
            }
            3 => {
                // A run of one piece many times: long fields, many fields (up to MAX_TEXT).
                let (a, b) = (cut(rng, &s), cut(rng, &s));
                let piece = s[a.min(b)..a.max(b)].to_string();
                let times = rng.random_range(2..200).min(MAX_TEXT / piece.len().max(1));
                let at = cut(rng, &s);
                s.insert_str(at, &piece.repeat(times));
            }
            4 => {
                if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&s) {
                    mutate_json(rng, &mut v, 0);
                    s = v.to_string();
                }
            }
            _ => {
                // Replace a value after ": " (A1111 fields) with a nasty one.
                let spots: Vec<usize> = s.match_indices(": ").map(|(i, _)| i + 2).collect();
                if !spots.is_empty() {
                    let at = spots[rng.random_range(0..spots.len())];
                    let end = s[at..].find(',').map_or(s.len(), |e| at + e);
                    s.replace_range(at..end, NASTY[rng.random_range(0..NASTY.len())]);
                }
            }
        }
        if s.len() > MAX_TEXT {
            let mut end = MAX_TEXT;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
        }
    }
    s
}

/// Values of the wrong type or range in random places of a JSON document.
fn mutate_json(rng: &mut ChaCha8Rng, value: &mut serde_json::Value, depth: usize) {
    use serde_json::{json, Value};
    let nasty = |rng: &mut ChaCha8Rng| match rng.random_range(0..9) {
        0 => Value::Null,
        1 => json!(-1),
        2 => json!(1e308),
        3 => json!(u64::MAX),
        4 => json!("x"),
        5 => json!([]),
        6 => json!({}),
        7 => json!(["3", 0]),
        _ => json!(0.5),
    };
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                match rng.random_range(0..12) {
                    0 => {
                        map.insert(k, nasty(rng));
                    }
                    1 => {
                        map.remove(&k);
                    }
                    _ if depth < 6 => mutate_json(rng, map.get_mut(&k).unwrap(), depth + 1),
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                if rng.random_range(0..8) == 0 {
                    *item = nasty(rng);
                } else if depth < 6 {
                    mutate_json(rng, item, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// The data of a text chunk of `kind` holding `text`; sometimes compressed, sometimes with a
/// broken field or bytes that are not UTF-8.
fn text_chunk_data(rng: &mut ChaCha8Rng, kind: &[u8; 4], keyword: &str, text: &str) -> Vec<u8> {
    let mut raw = text.as_bytes().to_vec();
    if rng.random_range(0..6) == 0 && !raw.is_empty() {
        let at = rng.random_range(0..raw.len());
        raw[at] = *[0xFF, 0xC3, 0x80, 0xE9]
            .get(rng.random_range(0..4))
            .unwrap();
    }
    let compress = |rng: &mut ChaCha8Rng, raw: &[u8]| {
        let mut z = fdeflate::compress_to_vec(raw);
        if rng.random_range(0..6) == 0 && z.len() > 4 {
            let at = rng.random_range(0..z.len());
            z[at] ^= 1 << rng.random_range(0..8);
        }
        z
    };
    let mut data: Vec<u8> = keyword.chars().map(|c| c as u32 as u8).collect();
    data.push(0);
    match kind {
        b"tEXt" => data.extend(raw),
        b"zTXt" => {
            data.push(if rng.random_range(0..10) == 0 { 1 } else { 0 });
            data.extend(compress(rng, &raw));
        }
        _ => {
            let compressed = rng.random_bool(0.5);
            let flag = match rng.random_range(0..12) {
                0 => 2,
                _ => u8::from(compressed),
            };
            data.extend_from_slice(&[flag, 0]);
            data.extend_from_slice(if rng.random_bool(0.2) {
                b"en-\xff"
            } else {
                b""
            });
            data.push(0);
            if rng.random_range(0..10) != 0 {
                data.push(0);
            }
            if compressed {
                data.extend(compress(rng, &raw));
            } else {
                data.extend(raw);
            }
        }
    }
    data
}

/// One mutated PNG.
fn mutate_png(
    rng: &mut ChaCha8Rng,
    base: &[u8],
    samples: &[(&'static str, String)],
    bomb: &[u8],
) -> Vec<u8> {
    let mut png = Chunks::parse(base);
    for _ in 0..rng.random_range(0..3) {
        let n = png.chunks.len();
        match rng.random_range(0..9) {
            0 if n > 0 => {
                let c = png.chunks[rng.random_range(0..n)].clone();
                png.chunks.insert(rng.random_range(0..=n), c);
            }
            1 if n > 0 => {
                png.chunks.remove(rng.random_range(0..n));
            }
            2 if n > 1 => {
                let c = png.chunks.remove(rng.random_range(0..n));
                png.chunks.insert(rng.random_range(0..n), c);
            }
            3 if n > 0 => {
                // Edit a chunk's data; its CRC is recomputed on the way out.
                let data = &mut png.chunks[rng.random_range(0..n)].1;
                for _ in 0..rng.random_range(1..4) {
                    if data.is_empty() || rng.random_range(0..4) == 0 {
                        let at = rng.random_range(0..=data.len());
                        data.insert(at, rng.random());
                    } else {
                        let at = rng.random_range(0..data.len());
                        if rng.random_bool(0.5) {
                            data[at] = rng.random();
                        } else {
                            data.remove(at);
                        }
                    }
                }
            }
            4 if n > 0 && &png.chunks[0].0 == b"IHDR" && png.chunks[0].1.len() == 13 => {
                let ihdr = &mut png.chunks[0].1;
                match rng.random_range(0..4) {
                    0 => ihdr[..4].copy_from_slice(&rng.random_range(0u32..20).to_be_bytes()),
                    1 => ihdr[4..8].copy_from_slice(&rng.random_range(0u32..20).to_be_bytes()),
                    2 => ihdr[8] = *[1u8, 2, 4, 8, 16, 3].get(rng.random_range(0..6)).unwrap(),
                    _ => ihdr[9 + rng.random_range(0..4)] = rng.random_range(0..8),
                }
            }
            5 | 6 => {
                // A text chunk holding a mutated sample, anywhere.
                let (sample_keyword, text) = &samples[rng.random_range(0..samples.len())];
                let keyword = if rng.random_bool(0.7) {
                    sample_keyword
                } else {
                    KEYWORDS[rng.random_range(0..KEYWORDS.len())]
                };
                let text = if rng.random_range(0..5) == 0 {
                    text.clone()
                } else {
                    mutate_text(rng, text)
                };
                let kind = [b"tEXt", b"zTXt", b"iTXt"][rng.random_range(0..3)];
                let data = text_chunk_data(rng, kind, keyword, &text);
                let at = rng.random_range(1.min(n)..=n);
                // Replace the chunk of the same keyword when there is one, else add.
                let same = png.chunks.iter().position(|(k, d)| {
                    [b"tEXt", b"zTXt", b"iTXt"].contains(&k)
                        && d.starts_with(keyword.as_bytes())
                        && d.get(keyword.len()) == Some(&0)
                });
                match same {
                    Some(i) if rng.random_bool(0.7) => png.chunks[i] = (*kind, data),
                    _ => png.chunks.insert(at, (*kind, data)),
                }
            }
            7 => {
                // A small compression bomb (256 KiB from 1 KiB), several times.
                let keyword = KEYWORDS[rng.random_range(0..KEYWORDS.len())];
                let mut data = keyword.as_bytes().to_vec();
                data.extend_from_slice(&[0, 0]);
                data.extend_from_slice(bomb);
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(1.min(n)..=png.chunks.len());
                    png.chunks.insert(at, (*b"zTXt", data.clone()));
                }
            }
            _ if n > 0 => {
                // Another chunk type: other letters' case (critical, private, reserved bits).
                let kind = &mut png.chunks[rng.random_range(0..n)].0;
                kind[rng.random_range(0..4)] ^= 0x20;
            }
            _ => {}
        }
    }
    let mut bytes = png.bytes();
    match rng.random_range(0..8) {
        0 => {
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
        }
        1 => bytes.truncate(rng.random_range(0..bytes.len())),
        2 => {
            // A length field made wrong (the chunk's bytes unchanged).
            let starts: Vec<usize> = {
                let mut at = 8;
                let mut v = Vec::new();
                for (_, d) in &png.chunks {
                    v.push(at);
                    at += 12 + d.len();
                }
                v
            };
            if !starts.is_empty() {
                let at = starts[rng.random_range(0..starts.len())];
                let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
                let new = match rng.random_range(0..5) {
                    0 => 0,
                    1 => len.wrapping_add(1),
                    2 => len.wrapping_sub(1),
                    3 => 0x7FFF_FFFF,
                    _ => u32::MAX,
                };
                bytes[at..at + 4].copy_from_slice(&new.to_be_bytes());
            }
        }
        3 => bytes.extend((0..rng.random_range(1..300)).map(|_| rng.random::<u8>())),
        _ => {}
    }
    bytes
}

/// The property every error must have: a metadata error naming the file, in words, safe to
/// print (what it quotes from the file has no terminal controls).
fn check_error(case: usize, what: &str, e: &Error) {
    // A file seedling cannot map says which settings to give instead: a hint, not `Metadata`.
    let msg = match e {
        Error::Metadata(msg) => msg.clone(),
        Error::Hint { message, .. } if e.kind() == crate::ErrorKind::BadInput => {
            message.to_string()
        }
        _ => panic!("case {case} ({what}): not a metadata error: {e:?}"),
    };
    assert!(msg.contains(NAME), "case {case} ({what}): {msg}");
    assert!(!msg.contains("ChunkType"), "case {case} ({what}): {msg}");
    assert!(
        !msg.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "case {case} ({what}): {msg:?}"
    );
}

/// A recipe mapped from another tool is one seedling accepts.
fn check_foreign(case: usize, f: &foreign::ForeignRecipe) {
    f.recipe
        .validate(8, 1000)
        .unwrap_or_else(|e| panic!("case {case}: mapped recipe invalid: {e}"));
    let _ = f.to_json();
}

/// The answer of one reader, comparable across readers: the pixels' hash or the message.
fn outcome<T>(r: &Result<T>) -> std::result::Result<(), String> {
    r.as_ref().map(|_| ()).map_err(|e| e.to_string())
}

fn check_png(case: usize, bytes: &[u8], dir: &tempfile::TempDir) {
    let read = decode_with_texts(bytes, NAME);
    match &read {
        Ok((png, texts)) => {
            assert!(
                png.pixels.width() > 0 && png.pixels.height() > 0,
                "case {case}"
            );
            let held: usize = texts.iter().map(|(k, t)| k.len() + t.len()).sum();
            assert!(
                held <= text_chunks::TEXT_BUDGET,
                "case {case}: {held} bytes"
            );
            if let Some(m) = &png.meta {
                serde_json::to_string(m).unwrap();
            }
        }
        Err(e) => check_error(case, "decode_png", e),
    }
    let any = decode_any(bytes, NAME, &fake_lookup);
    match &any {
        Ok((AnyRecipe::Seedling(m), _)) => {
            serde_json::to_string(m).unwrap();
        }
        Ok((AnyRecipe::Foreign(f), _)) => check_foreign(case, f),
        Err(e) => check_error(case, "decode_any", e),
    }
    let sheet = decode_sheet(bytes, NAME);
    if let Err(e) = &sheet {
        check_error(case, "decode_sheet", e);
    }
    // A file that does not decode fails the same way in every reader.
    if let Err(e) = &read {
        assert_eq!(outcome(&any), Err(e.to_string()), "case {case}");
        assert_eq!(outcome(&sheet), Err(e.to_string()), "case {case}");
    }
    // From a file (streamed), the same as from memory.
    if case.is_multiple_of(16) {
        let path = dir.path().join(NAME);
        std::fs::write(&path, bytes).unwrap();
        let name = path.display().to_string();
        assert_eq!(
            read_png(&path).map_err(|e| e.to_string()),
            decode_png(bytes, &name).map_err(|e| e.to_string()),
            "case {case}"
        );
        assert_eq!(
            outcome(&read_any(&path, &fake_lookup)),
            outcome(&decode_any(bytes, &name, &fake_lookup)),
            "case {case}"
        );
        assert_eq!(
            outcome(&read_sheet(&path)),
            outcome(&decode_sheet(bytes, &name)),
            "case {case}"
        );
    }
}

#[test]
fn fuzzed_pngs_and_metadata_read_or_fail_clearly() {
    let samples = samples();
    let bases = base_pngs(&samples);
    let bomb = {
        // zlib at its best ratio (fdeflate's own compressor favours speed).
        use png::text_metadata::{EncodableTextChunk, ZTXtChunk};
        let mut c = Vec::new();
        ZTXtChunk::new("k", "{".repeat(256 << 10))
            .encode(&mut c)
            .unwrap();
        c[8 + 3..c.len() - 4].to_vec()
    };
    let dir = tempfile::tempdir().unwrap();
    // More cases for a deeper run by hand: SEEDLING_FUZZ_CASES=100000 cargo test fuzzed_pngs.
    let cases = std::env::var("SEEDLING_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EED_0022);
    let (mut read, mut seedling, mut foreign_read) = (0, 0, 0);
    for case in 0..cases {
        let base = &bases[rng.random_range(0..bases.len())];
        let bytes = mutate_png(&mut rng, base, &samples, &bomb);
        check_png(case, &bytes, &dir);
        match decode_any(&bytes, NAME, &fake_lookup) {
            Ok((AnyRecipe::Seedling(_), _)) => seedling += 1,
            Ok((AnyRecipe::Foreign(_), _)) => foreign_read += 1,
            Err(_) => {}
        }
        if decode_png(&bytes, NAME).is_ok() {
            read += 1;
        }

        // The text readers on their own, with mutated texts.
        let (keyword, text) = &samples[rng.random_range(0..samples.len())];
        let text = mutate_text(&mut rng, text);
        match *keyword {
            SEEDLING_KEYWORD => {
                if let Err(e) = parse_meta(&text, NAME) {
                    check_error(case, "parse_meta", &e);
                }
            }
            SHEET_KEYWORD => {
                if let Err(e) = sheet::parse_sheet(&text, NAME) {
                    check_error(case, "parse_sheet", &e);
                }
            }
            keyword => match read_foreign(&[(keyword.to_string(), text)], NAME, &fake_lookup) {
                Some(Ok(f)) => check_foreign(case, &f),
                Some(Err(e)) => check_error(case, "read_foreign", &e),
                None => {}
            },
        }
    }
    // A fuzz whose cases all fail early tests little: many must still read.
    assert!(read > cases / 3, "only {read} of {cases} decoded");
    assert!(
        seedling > cases / 20,
        "only {seedling} seedling recipes read"
    );
    assert!(
        foreign_read > cases / 20,
        "only {foreign_read} foreign recipes read"
    );
}
