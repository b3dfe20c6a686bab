//! Round trips through real files, foreign PNGs and broken files.

use super::foreign_tests::fake_lookup;
use super::*;
use crate::noise::RngKind;
use crate::provenance::{Parent, CANDLE_VERSION, TOOL};
use crate::recipe::{ModelDType, ModelRef, ModelSource};
use crate::sampler::SamplerKind;
use png::text_metadata::ITXtChunk;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;

pub(super) fn recipe(prompt: &str, negative: &str) -> Recipe {
    let mut files = BTreeMap::new();
    files.insert(
        "unet/diffusion_pytorch_model.safetensors".to_string(),
        "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa".to_string(),
    );
    Recipe {
        schema: SCHEMA_VERSION,
        model: ModelRef {
            source: ModelSource::Hub {
                repo: "stable-diffusion-v1-5/stable-diffusion-v1-5".into(),
                revision: "451f4fe16113bff5a5d2269ed5ad43b0592e9a14".into(),
            },
            family: "sd1".into(),
            preset: Some("sd15".into()),
            files,
            vae: None,
            loras: Vec::new(),
            embeddings: Vec::new(),
        },
        prompt: prompt.into(),
        negative_prompt: negative.into(),
        seed: 721,
        rng: RngKind::Chacha,
        variation_seed: None,
        variation_strength: 0.0,
        width: 7,
        height: 5,
        sampler: SamplerKind::Ddim,
        schedule: crate::sampler::ScheduleKind::Default,
        steps: 30,
        cfg: 6.5,
        eta: 0.25,
        dtype: ModelDType::F16,
        truncate_prompt: true,
    }
}

/// A 7x5 image where every byte differs from its neighbours.
pub(super) fn pixels() -> RgbImage {
    RgbImage::from_fn(7, 5, |x, y| {
        image::Rgb([
            (x * 37 + y) as u8,
            (y * 51 + 3) as u8,
            (x * y * 13 + 200) as u8,
        ])
    })
}

pub(super) fn meta(prompt: &str, negative: &str) -> ImageMeta {
    let px = pixels();
    ImageMeta {
        recipe: recipe(prompt, negative),
        provenance: Provenance {
            tool: TOOL.into(),
            candle: CANDLE_VERSION.into(),
            device: "cpu".into(),
            noise_sha256: sha256_hex(b"noise"),
            pixels_sha256: sha256_hex(px.as_raw()),
            parent: Some(Parent {
                pixels_sha256: sha256_hex(b"parent"),
                overrides: vec!["seed=722".into(), "prompt=\"a, b\"".into()],
                made_by: None,
                unmapped: Vec::new(),
            }),
        },
    }
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

fn metadata_error(r: Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::Metadata(msg)) => msg,
        other => panic!("expected Error::Metadata, got {other:?}"),
    }
}

/// The raw text chunks of a PNG, as (chunk type, keyword), read with the png crate's decoder.
fn text_chunk_kinds(bytes: &[u8]) -> Vec<(&'static str, String)> {
    let mut reader = png::Decoder::new(Cursor::new(bytes))
        .read_info()
        .expect("valid PNG");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut buf).unwrap();
    reader.finish().unwrap();
    let info = reader.info();
    let mut out = Vec::new();
    out.extend(
        info.uncompressed_latin1_text
            .iter()
            .map(|t| ("tEXt", t.keyword.clone())),
    );
    out.extend(
        info.compressed_latin1_text
            .iter()
            .map(|t| ("zTXt", t.keyword.clone())),
    );
    out.extend(info.utf8_text.iter().map(|t| ("iTXt", t.keyword.clone())));
    out
}

/// A foreign PNG made with the png crate directly.
fn foreign_png(
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    build: impl FnOnce(&mut png::Encoder<&mut Vec<u8>>),
    after_idat: impl FnOnce(&mut png::Writer<&mut Vec<u8>>),
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        build(&mut enc);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        after_idat(&mut writer);
        writer.finish().unwrap();
    }
    out
}

#[test]
fn round_trip_through_a_file() {
    let dir = dir();
    let m = meta("a lighthouse at dawn", "blurry");
    let bytes = encode_png(&pixels(), &m).unwrap();
    let path = dir.path().join("out.png");
    write_png(&path, &pixels(), &m, false).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    let read = read_png(&path).unwrap();
    assert_eq!(read.meta.as_ref(), Some(&m));
    assert_eq!(read.pixels, pixels());
    assert_eq!(read.pixels.dimensions(), (7, 5));
    assert_eq!(read.parameters, Some(format_parameters(&m.recipe)));
    assert_eq!(read.pixels_match_provenance(), Some(true));

    let (meta2, px2) = read_recipe(&path).unwrap();
    assert_eq!(meta2, m);
    assert_eq!(px2, pixels());
}

#[test]
fn chunk_holds_exactly_the_serde_json_of_image_meta() {
    let m = meta("x", "");
    let bytes = encode_png(&pixels(), &m).unwrap();
    let mut reader = png::Decoder::new(Cursor::new(&bytes[..]))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut buf).unwrap();
    let chunk = reader
        .info()
        .utf8_text
        .iter()
        .find(|t| t.keyword == "seedling")
        .expect("seedling iTXt chunk");
    assert!(!chunk.compressed);
    assert_eq!(
        chunk.get_text().unwrap(),
        serde_json::to_string(&m).unwrap()
    );
    // And it is the documented shape: {"recipe": {...}, "provenance": {...}}.
    let v: serde_json::Value = serde_json::from_str(&chunk.get_text().unwrap()).unwrap();
    assert_eq!(v["recipe"]["seed"], 721);
    assert_eq!(v["provenance"]["device"], "cpu");
}

#[test]
fn parameters_chunk_is_text_when_latin1_else_itxt() {
    // Latin-1 (é is U+00E9): tEXt, as PIL/A1111 write it.
    let bytes = encode_png(&pixels(), &meta("café, golden hour", "")).unwrap();
    assert_eq!(
        text_chunk_kinds(&bytes),
        vec![
            ("tEXt", "parameters".to_string()),
            ("iTXt", "seedling".to_string())
        ]
    );
    // Not Latin-1: iTXt.
    let bytes = encode_png(&pixels(), &meta("灯台 at dawn", "")).unwrap();
    assert_eq!(
        text_chunk_kinds(&bytes),
        vec![
            ("iTXt", "parameters".to_string()),
            ("iTXt", "seedling".to_string())
        ]
    );
    // Either way the text reads back unchanged.
    let read = decode_png(&bytes, "t.png").unwrap();
    assert!(read.parameters.unwrap().starts_with("灯台 at dawn\n"));
}

#[test]
fn unicode_quotes_and_newlines_round_trip() {
    let dir = dir();
    let prompt = "🌅 灯台、夜明け \"quoted\" and 'single'\nsecond line\r\n\ttab \\ backslash: a, b";
    let negative = "ぼやけ, \u{0}nul \u{7f} é ß ∑ 👩‍👩‍👧";
    let m = meta(prompt, negative);
    let path = dir.path().join("u.png");
    write_png(&path, &pixels(), &m, false).unwrap();
    let (back, px) = read_recipe(&path).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.recipe.prompt, prompt);
    assert_eq!(back.recipe.negative_prompt, negative);
    assert_eq!(px, pixels());
}

#[test]
fn foreign_png_without_text() {
    let dir = dir();
    let data: Vec<u8> = pixels().into_raw();
    let bytes = foreign_png(
        7,
        5,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &data,
        |_| {},
        |_| {},
    );
    let path = write(&dir, "plain.png", &bytes);
    let read = read_png(&path).unwrap();
    assert_eq!(read.meta, None);
    assert_eq!(read.parameters, None);
    assert_eq!(read.pixels, pixels());
    assert_eq!(read.pixels_match_provenance(), None);

    let msg = metadata_error(read_recipe(&path));
    assert!(msg.contains("plain.png"), "{msg}");
    assert!(msg.contains("carries no seedling recipe"), "{msg}");
    assert!(msg.contains("no generation metadata"), "{msg}");
    assert!(!msg.contains("it has AUTOMATIC1111"), "{msg}");
    let any = read_any(&path, &fake_lookup)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert_eq!(
        any, msg,
        "read_any refuses a file without metadata the same way"
    );
}

#[test]
fn foreign_png_with_only_a1111_parameters() {
    let dir = dir();
    let text = "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, \
                Size: 7x5, Model hash: 45dee52b";
    let bytes = foreign_png(
        7,
        5,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        pixels().as_raw(),
        |e| e.add_text_chunk("parameters".into(), text.into()).unwrap(),
        |_| {},
    );
    let path = write(&dir, "a1111.png", &bytes);
    let read = read_png(&path).unwrap();
    assert_eq!(read.meta, None);
    assert_eq!(read.parameters.as_deref(), Some(text));

    let msg = metadata_error(read_recipe(&path));
    assert!(
        msg.contains("a1111.png carries no seedling recipe"),
        "{msg}"
    );
    assert!(msg.contains("AUTOMATIC1111-style 'parameters'"), "{msg}");
    assert!(msg.contains("seedling replay"), "{msg}");
    // read_any maps it instead.
    match read_any(&path, &fake_lookup).unwrap().0 {
        AnyRecipe::Foreign(f) => {
            assert_eq!(f.recipe.prompt, "a cat");
            assert_eq!(f.recipe.negative_prompt, "dog");
            assert_eq!((f.recipe.seed, f.recipe.steps), (1, 20));
            // 7x5 is no size seedling can make: listed, and the default used.
            assert!(f
                .unmapped
                .iter()
                .any(|u| u.field == "size" && u.value == "7x5"));
            assert_eq!((f.recipe.width, f.recipe.height), (512, 512));
        }
        other => panic!("expected a foreign recipe, got {other:?}"),
    }
}

#[test]
fn reads_ztxt_and_compressed_itxt_and_text_after_image_data() {
    let m = meta("compressed", "");
    let json = serde_json::to_string(&m).unwrap();
    // Compressed iTXt, written after IDAT.
    let itxt = {
        let json = json.clone();
        foreign_png(
            7,
            5,
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            pixels().as_raw(),
            |_| {},
            move |w| {
                let mut c = ITXtChunk::new("seedling", json);
                c.compressed = true;
                w.write_text_chunk(&c).unwrap();
            },
        )
    };
    let mut reader = png::Decoder::new(Cursor::new(&itxt[..]))
        .read_info()
        .unwrap();
    assert!(
        reader.info().utf8_text.is_empty(),
        "chunk must come after IDAT"
    );
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut buf).unwrap();
    reader.finish().unwrap();
    assert!(reader.info().utf8_text[0].compressed);
    assert_eq!(
        decode_png(&itxt, "itxt.png").unwrap().meta.as_ref(),
        Some(&m)
    );

    // zTXt (Latin-1 by the spec) holding the UTF-8 JSON of a non-ASCII prompt, plus a zTXt
    // `parameters`: both decompress; the seedling text is recovered as UTF-8.
    let m2 = meta("灯台 é", "");
    let json2 = serde_json::to_string(&m2).unwrap();
    let raw_as_latin1: String = json2.bytes().map(char::from).collect();
    let ztxt = foreign_png(
        7,
        5,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        pixels().as_raw(),
        |e| {
            e.add_ztxt_chunk("seedling".into(), raw_as_latin1).unwrap();
            e.add_ztxt_chunk("parameters".into(), "café\nSteps: 1".into())
                .unwrap();
        },
        |_| {},
    );
    assert!(text_chunk_kinds(&ztxt).iter().all(|(k, _)| *k == "zTXt"));
    let read = decode_png(&ztxt, "ztxt.png").unwrap();
    assert_eq!(read.meta.as_ref(), Some(&m2));
    assert_eq!(read.parameters.as_deref(), Some("café\nSteps: 1"));
}

#[test]
fn other_colour_types_become_rgb8() {
    // 16-bit grey + alpha: v / 257 rounded, grey copied to R, G and B, alpha dropped.
    let grey16: [u16; 4] = [0, 65535, 25700, 32896];
    let mut data = Vec::new();
    for v in grey16 {
        data.extend_from_slice(&v.to_be_bytes());
        data.extend_from_slice(&1234u16.to_be_bytes()); // alpha
    }
    let bytes = foreign_png(
        2,
        2,
        png::ColorType::GrayscaleAlpha,
        png::BitDepth::Sixteen,
        &data,
        |_| {},
        |_| {},
    );
    let read = decode_png(&bytes, "g16.png").unwrap();
    assert_eq!(
        read.pixels.as_raw(),
        &[0, 0, 0, 255, 255, 255, 100, 100, 100, 128, 128, 128]
    );
    // The image crate's own conversion (an independent implementation) agrees.
    let by_image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8();
    assert_eq!(read.pixels, by_image);

    // 2-bit palette with tRNS.
    let bytes = foreign_png(
        4,
        1,
        png::ColorType::Indexed,
        png::BitDepth::Two,
        &[0b00_01_10_11],
        |e| {
            e.set_palette(vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 255, 0, 1]);
            e.set_trns(vec![0, 128]);
        },
        |_| {},
    );
    let read = decode_png(&bytes, "pal.png").unwrap();
    assert_eq!(
        read.pixels.as_raw(),
        &[10, 20, 30, 40, 50, 60, 70, 80, 90, 255, 0, 1]
    );
    let by_image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8();
    assert_eq!(read.pixels, by_image);
}

#[test]
fn missing_file_names_the_path() {
    let dir = dir();
    let path = dir.path().join("nope.png");
    let msg = metadata_error(read_png(&path));
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("cannot read image"), "{msg}");
    let msg = metadata_error(read_recipe(&path));
    assert!(msg.contains("check the path"), "{msg}");
}

#[test]
fn not_a_png() {
    let dir = dir();
    for (name, bytes) in [
        ("notes.txt", &b"hello, this is text"[..]),
        ("empty.png", &b""[..]),
        (
            "jpeg.png",
            &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F'][..],
        ),
        ("short.png", &PNG_SIGNATURE[..5]),
    ] {
        let path = write(&dir, name, bytes);
        let msg = metadata_error(read_recipe(&path));
        assert!(
            msg.contains(&format!(
                "{name} is not a PNG file; seedling reads recipes from PNG images it wrote"
            )),
            "{msg}"
        );
    }
}

#[test]
fn truncated_png_is_an_error_at_every_cut() {
    let bytes = encode_png(&pixels(), &meta("cut", "")).unwrap();
    // Every length from just past the signature to one byte short of the end.
    for len in PNG_SIGNATURE.len()..bytes.len() {
        let msg = metadata_error(decode_png(&bytes[..len], "cut.png"));
        assert!(msg.starts_with("cut.png is a"), "len {len}: {msg}");
        assert!(
            msg.contains("truncated") || msg.contains("damaged"),
            "len {len}: {msg}"
        );
    }
    // A cut in the middle of the image data reads as truncated.
    let msg = metadata_error(decode_png(&bytes[..bytes.len() - 40], "cut.png"));
    assert!(msg.contains("truncated PNG"), "{msg}");
}

#[test]
fn corrupt_png_is_an_error() {
    let mut bytes = encode_png(&pixels(), &meta("crc", "")).unwrap();
    // Flip a byte inside the IHDR data: its CRC no longer matches.
    bytes[20] ^= 0x55;
    let msg = metadata_error(decode_png(&bytes, "crc.png"));
    assert!(msg.contains("crc.png is a damaged PNG"), "{msg}");
}

/// A PNG whose `seedling` iTXt chunk holds `text`.
fn with_seedling_text(text: &str) -> Vec<u8> {
    foreign_png(
        7,
        5,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        pixels().as_raw(),
        |e| e.add_itxt_chunk("seedling".into(), text.into()).unwrap(),
        |_| {},
    )
}

#[test]
fn seedling_chunk_with_bad_json() {
    let bytes = with_seedling_text("{\"recipe\": {\"schema\": 1, ");
    let msg = metadata_error(decode_png(&bytes, "bad.png"));
    assert!(
        msg.contains("bad.png has a damaged seedling chunk: it is not valid JSON"),
        "{msg}"
    );
}

#[test]
fn seedling_chunk_of_another_schema() {
    let mut v = serde_json::to_value(meta("x", "")).unwrap();
    v["recipe"]["schema"] = 9.into();
    v["recipe"]["new_field"] = "something".into();
    let msg = metadata_error(decode_png(&with_seedling_text(&v.to_string()), "s9.png"));
    assert!(msg.contains("schema 9"), "{msg}");
    assert!(msg.contains("reads schemas 1 to 4"), "{msg}");
    assert!(msg.contains("newer seedling"), "{msg}");

    // A future schema whose fields no longer parse as ours still names its schema.
    let v = serde_json::json!({"recipe": {"schema": 5, "prompt": 5}, "provenance": {}});
    let msg = metadata_error(decode_png(&with_seedling_text(&v.to_string()), "s5.png"));
    assert!(msg.contains("schema 5"), "{msg}");

    // Schema 0 parses as ours field by field, but is still refused.
    let mut v = serde_json::to_value(meta("x", "")).unwrap();
    v["recipe"]["schema"] = 0.into();
    let msg = metadata_error(decode_png(&with_seedling_text(&v.to_string()), "s0.png"));
    assert!(msg.contains("schema 0"), "{msg}");
    assert!(msg.contains("older seedling"), "{msg}");
}

#[test]
fn schema_1_recipes_read_as_current_with_no_variation() {
    let mut v = serde_json::to_value(meta("x", "")).unwrap();
    v["recipe"]["schema"] = 1.into();
    v["recipe"]
        .as_object_mut()
        .unwrap()
        .remove("variation_seed");
    v["recipe"]
        .as_object_mut()
        .unwrap()
        .remove("variation_strength");
    let read = decode_png(&with_seedling_text(&v.to_string()), "s1.png").unwrap();
    let recipe = read.meta.unwrap().recipe;
    assert_eq!(recipe.schema, SCHEMA_VERSION);
    assert_eq!(recipe.variation_seed, None);
    assert_eq!(recipe.variation_strength, 0.0);
}

#[test]
fn seedling_chunk_with_wrong_fields() {
    let mut v = serde_json::to_value(meta("x", "")).unwrap();
    v["recipe"]["steps"] = "many".into();
    let msg = metadata_error(decode_png(&with_seedling_text(&v.to_string()), "f.png"));
    assert!(msg.contains("does not match recipe schema 4"), "{msg}");
    assert!(msg.contains("steps") || msg.contains("string"), "{msg}");
}

#[test]
fn edited_pixels_are_detected() {
    let m = meta("x", "");
    let mut px = pixels();
    px.put_pixel(0, 0, image::Rgb([1, 2, 3]));
    let read = decode_png(&encode_png(&px, &m).unwrap(), "e.png").unwrap();
    assert_eq!(read.pixels_match_provenance(), Some(false));
}

/// CRC-32 of the PNG spec (ISO 3309 / ITU-T V.42, reflected, poly 0xEDB88320), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub(super) fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    out
}

#[test]
fn huge_header_is_refused_before_allocating() {
    // The chunk helper agrees with the png crate: it rebuilds our own IHDR byte for byte.
    let ok = encode_png(&pixels(), &meta("x", "")).unwrap();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&7u32.to_be_bytes());
    ihdr.extend_from_slice(&5u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    assert_eq!(&ok[8..33], &chunk(b"IHDR", &ihdr)[..]);

    // 100000 x 100000 pixels of RGBA16 (80 GB), declared in 25 bytes: must fail cleanly, not
    // attempt the allocation. (The decoder's own row buffer, 800 kB, is within its limits.)
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[16, 6, 0, 0, 0]);
    let mut bytes = PNG_SIGNATURE.to_vec();
    bytes.extend(chunk(b"IHDR", &ihdr));
    bytes.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    bytes.extend(chunk(b"IEND", &[]));
    let msg = metadata_error(decode_png(&bytes, "huge.png"));
    assert!(msg.contains("huge.png is too large to read"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Hostile and damaged files (issue 22): text budget, streaming, damaged seedling chunks, messages.

/// `png` with `extra` (whole chunks) inserted before its IEND chunk (its last 12 bytes).
fn with_chunks_before_iend(png: &[u8], extra: &[Vec<u8>]) -> Vec<u8> {
    let (head, iend) = png.split_at(png.len() - 12);
    assert_eq!(&iend[4..8], b"IEND");
    let mut out = head.to_vec();
    for c in extra {
        out.extend_from_slice(c);
    }
    out.extend_from_slice(iend);
    out
}

/// The byte range of the data of the first text chunk whose keyword is `keyword`.
fn text_data_range(png: &[u8], keyword: &str) -> std::ops::Range<usize> {
    let mut at = 8;
    while at + 12 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let data = at + 8..at + 8 + len;
        if png[data.clone()].starts_with(format!("{keyword}\0").as_bytes()) {
            return data;
        }
        at += 12 + len;
    }
    panic!("no {keyword} chunk");
}

/// `png` with the data of its `keyword` text chunk edited by `edit`; its CRC recomputed when
/// `fix_crc`, so that only the edit is wrong.
fn edit_text_chunk(
    png: &[u8],
    keyword: &str,
    fix_crc: bool,
    edit: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let data = text_data_range(png, keyword);
    let kind: [u8; 4] = png[data.start - 4..data.start].try_into().unwrap();
    let mut body = png[data.clone()].to_vec();
    let old_crc = png[data.end..data.end + 4].to_vec();
    edit(&mut body);
    let mut new_chunk = chunk(&kind, &body);
    if !fix_crc {
        let n = new_chunk.len();
        new_chunk[n - 4..].copy_from_slice(&old_crc);
    }
    let mut out = png[..data.start - 8].to_vec();
    out.extend(new_chunk);
    out.extend_from_slice(&png[data.end + 4..]);
    out
}

/// A zTXt chunk `keyword` whose text is `len` bytes of 'a' (a compression bomb when large).
fn ztxt_bomb(keyword: &str, len: usize) -> Vec<u8> {
    use png::text_metadata::{EncodableTextChunk, ZTXtChunk};
    let mut out = Vec::new();
    ZTXtChunk::new(keyword, "a".repeat(len))
        .encode(&mut out)
        .unwrap();
    out
}

#[test]
fn text_chunks_share_one_budget() {
    let plain = encode_png(&pixels(), &meta("x", "")).unwrap();
    // Five 16 MiB bombs: each under the old per-chunk limit, 80 MiB together.
    let bomb = ztxt_bomb("Comment", 16 << 20);
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let five = with_chunks_before_iend(&plain, &vec![bomb.clone(); 5]);
    let msg = metadata_error(decode_png(&five, "bombs.png"));
    assert!(
        msg.starts_with(
            "bombs.png has metadata larger than 64 MiB in its text chunks, more than seedling \
             reads from one PNG"
        ),
        "{msg}"
    );
    assert!(msg.contains("remove the extra text chunks"), "{msg}");
    // Three fit, and the recipe reads as usual.
    let three = with_chunks_before_iend(&plain, &vec![bomb; 3]);
    assert_eq!(
        decode_png(&three, "three.png").unwrap().meta,
        Some(meta("x", ""))
    );

    // One chunk over the whole budget says the same, not the inflater's "Out of decompression
    // space. Try with a larger limit."
    let one = with_chunks_before_iend(&plain, &[ztxt_bomb("parameters", (64 << 20) + 1)]);
    let msg = metadata_error(decode_png(&one, "one.png"));
    assert!(
        msg.starts_with("one.png has metadata larger than 64 MiB"),
        "{msg}"
    );
}

/// A reader that counts what is read from it.
struct Counted<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

fn counted<R>(inner: R) -> (Counted<R>, std::rc::Rc<std::cell::Cell<u64>>) {
    let read = std::rc::Rc::new(std::cell::Cell::new(0));
    (
        Counted {
            inner,
            read: read.clone(),
        },
        read,
    )
}

#[test]
fn the_signature_is_checked_before_the_rest_is_read() {
    // An endless stream of zeros (what `inspect /dev/zero` reads): 8 bytes, then refused.
    let (zeros, read) = counted(std::io::repeat(0));
    let msg = metadata_error(decode_stream(zeros, "zeros"));
    assert!(msg.contains("zeros is not a PNG file"), "{msg}");
    assert_eq!(read.get(), 8);

    #[cfg(unix)]
    {
        let msg = metadata_error(read_png(Path::new("/dev/zero")));
        assert!(msg.contains("/dev/zero is not a PNG file"), "{msg}");
    }
}

#[test]
fn a_huge_text_chunk_is_refused_before_it_is_read() {
    // A real header, then a tEXt chunk declaring 2 GiB - 1 bytes, then endless data.
    let png = encode_png(&pixels(), &meta("x", "")).unwrap();
    let mut head = png[..33].to_vec();
    head.extend_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
    head.extend_from_slice(b"tEXtComment\0");
    let (stream, read) = counted(std::io::Read::chain(&head[..], std::io::repeat(b'a')));
    let msg = metadata_error(decode_stream(stream, "huge.png"));
    assert!(
        msg.starts_with("huge.png has metadata larger than 64 MiB"),
        "{msg}"
    );
    // What the buffered reader had read ahead, no more.
    assert!(read.get() <= 64 << 10, "{} bytes read", read.get());

    // The same as a 1 GiB file on disk (sparse: it costs no disk space).
    let dir = dir();
    let path = dir.path().join("huge.png");
    let mut bytes = head;
    bytes.extend(vec![b'a'; 1000]);
    std::fs::write(&path, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let msg = metadata_error(read_png(&path));
    assert!(
        msg.contains("huge.png has metadata larger than 64 MiB"),
        "{msg}"
    );
}

#[test]
fn files_and_bytes_read_alike() {
    let dir = dir();
    let m = meta("a lighthouse", "fog");
    let bytes = with_chunks_before_iend(
        &encode_png(&pixels(), &m).unwrap(),
        &[ztxt_bomb("Comment", 100_000)],
    );
    let path = write(&dir, "same.png", &bytes);
    assert_eq!(
        read_png(&path).unwrap(),
        decode_png(&bytes, "same.png").unwrap()
    );
    // A directory is not readable as a file: said once, with the path.
    let msg = metadata_error(read_png(dir.path()));
    assert!(
        msg.starts_with(&format!("cannot read image {}", dir.path().display())),
        "{msg}"
    );
}

/// The index of `needle` in the data of `keyword`'s chunk.
fn find_in_chunk(png: &[u8], keyword: &str, needle: &[u8]) -> usize {
    let data = &png[text_data_range(png, keyword)];
    data.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle in chunk")
}

#[test]
fn a_seedling_chunk_that_is_not_utf8_is_an_error() {
    let png = encode_png(&pixels(), &meta("a lighthouse", "")).unwrap();
    let at = find_in_chunk(&png, SEEDLING_KEYWORD, b"lighthouse");
    // One byte of the prompt made invalid UTF-8, the CRC made to match: the png crate dropped
    // such a chunk, and the image read as AUTOMATIC1111's from its `parameters` text.
    let damaged = edit_text_chunk(&png, SEEDLING_KEYWORD, true, |d| d[at] = 0xFF);
    let msg = metadata_error(decode_png(&damaged, "d.png"));
    assert_eq!(
        msg,
        "d.png has a damaged seedling chunk: its text is not valid UTF-8; the recipe cannot be \
         recovered from this file — use an intact copy"
    );
    assert_eq!(
        metadata_error(decode_any(&damaged, "d.png", &fake_lookup)),
        msg
    );
    let dir = dir();
    let path = write(&dir, "d.png", &damaged);
    let msg = metadata_error(read_recipe(&path));
    assert!(msg.contains("has a damaged seedling chunk"), "{msg}");

    // A byte changed without its CRC: the png crate skipped the chunk the same way.
    let changed = edit_text_chunk(&png, SEEDLING_KEYWORD, false, |d| d[at] = b'L');
    let msg = metadata_error(decode_any(&changed, "c.png", &fake_lookup));
    assert_eq!(
        msg,
        "c.png has a damaged seedling chunk: it fails its CRC check, so its bytes changed after \
         it was written; the recipe cannot be recovered from this file — use an intact copy"
    );

    // A compression flag that is neither 0 nor 1: also dropped by the png crate.
    let flag_at = SEEDLING_KEYWORD.len() + 1;
    let bad_flag = edit_text_chunk(&png, SEEDLING_KEYWORD, true, |d| d[flag_at] = 7);
    let msg = metadata_error(decode_any(&bad_flag, "f.png", &fake_lookup));
    assert!(
        msg.contains("f.png has a damaged seedling chunk: bad compression flag"),
        "{msg}"
    );

    // A compressed seedling iTXt that does not inflate.
    let compressed = foreign_png(
        7,
        5,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        pixels().as_raw(),
        |_| {},
        |w| {
            let mut c = ITXtChunk::new("seedling", "{\"recipe\": 1}".repeat(20));
            c.compressed = true;
            w.write_text_chunk(&c).unwrap();
        },
    );
    let broken = edit_text_chunk(&compressed, SEEDLING_KEYWORD, true, |d| {
        let n = d.len();
        d[n - 6] ^= 0xFF;
    });
    let msg = metadata_error(decode_png(&broken, "z.png"));
    assert!(
        msg.contains("z.png has a damaged seedling chunk: its compressed text does not decompress"),
        "{msg}"
    );
}

#[test]
fn a_latin1_seedling_chunk_reads_but_damaged_utf8_does_not() {
    // PIL's `add_text` re-encodes Latin-1 text as Latin-1: é is the one byte 0xE9.
    let m = meta("café at dawn", "");
    let json = serde_json::to_string(&m).unwrap();
    let latin1: Vec<u8> = json.chars().map(|c| c as u32 as u8).collect();
    let mut data = b"seedling\0".to_vec();
    data.extend_from_slice(&latin1);
    let plain = foreign_png(
        7,
        5,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        pixels().as_raw(),
        |_| {},
        |_| {},
    );
    let png = with_chunks_before_iend(&plain, &[chunk(b"tEXt", &data)]);
    assert_eq!(decode_png(&png, "pil.png").unwrap().meta, Some(m));

    // UTF-8 bytes kept in a tEXt chunk, one of them changed: not Latin-1 text, but damage (it
    // used to read as Latin-1, a recipe with a garbled prompt).
    let m = meta("灯台 at dawn", "");
    let mut data = b"seedling\0".to_vec();
    data.extend_from_slice(serde_json::to_string(&m).unwrap().as_bytes());
    let ok = with_chunks_before_iend(&plain, &[chunk(b"tEXt", &data)]);
    assert_eq!(decode_png(&ok, "utf8.png").unwrap().meta, Some(m));
    let at = data.windows(3).position(|w| w == "台".as_bytes()).unwrap();
    data[at + 1] = b'x';
    let damaged = with_chunks_before_iend(&plain, &[chunk(b"tEXt", &data)]);
    let msg = metadata_error(decode_png(&damaged, "d.png"));
    assert!(
        msg.contains("d.png has a damaged seedling chunk: its text is UTF-8 with bytes changed"),
        "{msg}"
    );
}

#[test]
fn png_errors_name_chunks_by_their_four_letters() {
    let mut bytes = encode_png(&pixels(), &meta("crc", "")).unwrap();
    bytes[20] ^= 0x55;
    let msg = metadata_error(decode_png(&bytes, "crc.png"));
    assert!(!msg.contains("ChunkType"), "{msg}");
    assert!(msg.contains("while decoding 'IHDR' chunk"), "{msg}");

    // A chunk before IHDR.
    let plain = encode_png(&pixels(), &meta("x", "")).unwrap();
    let mut early = PNG_SIGNATURE.to_vec();
    early.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    early.extend_from_slice(&plain[8..]);
    let msg = metadata_error(decode_png(&early, "early.png"));
    assert!(
        !msg.contains("ChunkType") && msg.contains("'IDAT'"),
        "{msg}"
    );

    // Damaged image data (its CRC made to match): the deflate error in words.
    let idat = plain.windows(4).position(|w| w == b"IDAT").unwrap() + 4;
    let len = u32::from_be_bytes(plain[idat - 8..idat - 4].try_into().unwrap()) as usize;
    let mut data = plain[idat..idat + len].to_vec();
    data[3] = 0xFF;
    data[4] = 0xFF;
    let mut broken = plain[..idat - 8].to_vec();
    broken.extend(chunk(b"IDAT", &data));
    broken.extend_from_slice(&plain[idat + len + 4..]);
    let msg = metadata_error(decode_png(&broken, "deflate.png"));
    assert!(msg.contains("corrupt deflate stream: "), "{msg}");
    assert!(
        !msg.split("corrupt deflate stream: ")
            .nth(1)
            .unwrap()
            .chars()
            .any(char::is_uppercase),
        "{msg}"
    );
}

#[test]
fn invalid_json_reports_the_syntax_error() {
    // The typed parse fails first at `"recipe": 5`; the file's real fault is at column 31.
    let text = "{\"recipe\": 5, \"provenance\": }";
    let msg = metadata_error(decode_png(&with_seedling_text(text), "j.png"));
    assert!(
        msg.contains(
            "j.png has a damaged seedling chunk: it is not valid JSON (expected value at line 1 \
             column 29)"
        ),
        "{msg}"
    );
    assert!(!msg.contains("invalid type"), "{msg}");
}

#[test]
fn a_palette_of_partial_colours_is_an_error_not_a_panic() {
    // PLTE lengths the png crate accepts (3 to 768 bytes) but that are no whole number of RGB
    // entries: it panicked expanding the palette (found by the fuzz run in fuzz_tests.rs).
    for len in [4, 5, 7, 767] {
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&1u32.to_be_bytes());
        ihdr.extend_from_slice(&1u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 3, 0, 0, 0]);
        let mut bytes = PNG_SIGNATURE.to_vec();
        bytes.extend(chunk(b"IHDR", &ihdr));
        bytes.extend(chunk(b"PLTE", &vec![7; len]));
        bytes.extend(chunk(b"IDAT", &fdeflate::compress_to_vec(&[0, 0])));
        bytes.extend(chunk(b"IEND", &[]));
        let msg = metadata_error(decode_png(&bytes, "pal.png"));
        assert_eq!(
            msg,
            format!(
                "pal.png is a damaged PNG (its PLTE chunk is {len} bytes, not a whole number of \
                 3-byte colours); the file is corrupt — use an intact copy"
            )
        );
    }
}

#[test]
fn values_quoted_from_the_file_are_printable_in_messages() {
    // serde quotes the value it cannot take; a backspace (or an escape sequence) in it must not
    // reach the terminal raw (found by the fuzz run in fuzz_tests.rs).
    let mut v = serde_json::to_value(meta("x", "")).unwrap();
    v["recipe"]["schedule"] = "karra\u{8}\u{1b}[2J".into();
    let msg = metadata_error(decode_png(&with_seedling_text(&v.to_string()), "b.png"));
    assert!(
        msg.contains(r"unknown variant `karra\u{8}\u{1b}[2J`"),
        "{msg}"
    );
    assert!(!msg.chars().any(char::is_control), "{msg:?}");
}

#[test]
fn latin1_keywords_are_read_by_their_bytes() {
    // A keyword of Latin-1 letters is one byte a letter in the file (two in UTF-8): "Kommentar"
    // spelt with é, then a short text. Read as it is, not cut at the wrong byte.
    let plain = encode_png(&pixels(), &meta("x", "")).unwrap();
    for (kind, data) in [
        (b"tEXt", b"Beschr\xe9\xe9\0ab".to_vec()),
        (b"iTXt", b"\xe9\xe9\xe9\0\0\0\0\0a".to_vec()),
        (
            b"zTXt",
            [&b"\xe9\xe9\xe9\0\0"[..], &fdeflate::compress_to_vec(b"ab")].concat(),
        ),
    ] {
        let png = with_chunks_before_iend(&plain, &[chunk(kind, &data)]);
        let (read, texts) = decode_with_texts(&png, "k.png").unwrap();
        assert_eq!(read.meta, Some(meta("x", "")));
        let found: Vec<_> = texts.iter().filter(|(k, _)| k.contains('é')).collect();
        assert_eq!(found.len(), 1, "{texts:?}");
        assert!(found[0].1 == "ab" || found[0].1 == "a", "{texts:?}");
    }
}
