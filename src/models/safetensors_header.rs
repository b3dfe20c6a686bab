//! Reading a safetensors file's header only: the tensors' names, dtypes and shapes and the
//! `__metadata__` strings, without reading (or mapping) any tensor data. The format
//! (huggingface/safetensors, `docs/`/README "Format"): 8 bytes little-endian `N`, then `N` bytes
//! of JSON `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}`,
//! then the data; offsets count from the end of the header.
//!
//! For listing a models folder (family, dtype, LoRA and embedding shapes) and for whoever needs
//! a file's key layout before loading it.

use crate::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The largest header read. The safetensors crate refuses headers over 100 MB
/// (`MAX_HEADER_SIZE` in its `tensor.rs`); real checkpoints' headers are well under 1 MB.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One tensor as the header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// As the file spells it: "F32", "F16", "BF16", "I64", "F8_E4M3", …
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Begin and end of its bytes, counted from [`Header::data_offset`].
    pub data_offsets: [u64; 2],
}

/// A safetensors file's header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// In name order (serde_json's map is sorted), so the order is stable.
    pub tensors: Vec<TensorInfo>,
    /// `__metadata__`; a value that is not a string (against the format, but seen) is kept as
    /// its JSON text.
    pub metadata: BTreeMap<String, String>,
    /// Where the tensor data starts: 8 + the header's length.
    pub data_offset: u64,
}

impl Header {
    /// The floating dtype holding the most elements ("F16" for a half-precision checkpoint that
    /// keeps a few f32 buffers), or `None` when no tensor is floating.
    pub fn main_float_dtype(&self) -> Option<&str> {
        let mut elements: BTreeMap<&str, u64> = BTreeMap::new();
        for t in self.tensors.iter().filter(|t| is_float(&t.dtype)) {
            *elements.entry(t.dtype.as_str()).or_default() += t.shape.iter().product::<u64>();
        }
        // Ties (only in toy files) go to the first name, so the answer does not depend on order.
        elements
            .into_iter()
            .fold(None, |best: Option<(&str, u64)>, (d, n)| match best {
                Some((_, m)) if m >= n => best,
                _ => Some((d, n)),
            })
            .map(|(d, _)| d)
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The file length the header describes: the header, then every tensor's bytes.
    pub fn described_len(&self) -> u64 {
        let end = self.tensors.iter().map(|t| t.data_offsets[1]).max();
        self.data_offset.saturating_add(end.unwrap_or(0))
    }

    /// Whether any tensor's name starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.tensors.iter().any(|t| t.name.starts_with(prefix))
    }
}

fn is_float(dtype: &str) -> bool {
    dtype.starts_with('F') || dtype == "BF16"
}

/// Reads the header of the safetensors file at `path`, and checks that the file is long enough
/// to hold every tensor it lists (a cut-off download is refused here, not at load time).
pub fn read_header(path: &Path) -> Result<Header> {
    let unreadable = |why: &str| {
        Error::Model(format!(
            "{} is not a readable safetensors file: {why}",
            path.display()
        ))
    };
    let (header, file_len) = read_unchecked(path, unreadable)?;
    check_extent(&header, file_len).map_err(|why| unreadable(&why))?;
    Ok(header)
}

/// The header of the file at `path` and the file's length, without [`read_header`]'s check
/// that the file holds the tensors, for a caller that checks and words that itself (a
/// single-file checkpoint compares [`Header::described_len`] exactly); `unreadable` words a
/// header that cannot be parsed.
pub fn read_unchecked(
    path: &Path,
    unreadable: impl FnOnce(&str) -> Error,
) -> Result<(Header, u64)> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let file_len = file
        .metadata()
        .map_err(|e| Error::io("cannot read", path, e))?
        .len();
    let header = parse_unchecked(&mut file, file_len).map_err(|why| unreadable(&why))?;
    Ok((header, file_len))
}

/// The header from `reader`, positioned at the file's start; `file_len` is the whole file's
/// length, which must hold every tensor the header lists. The error says what is wrong, for
/// `read_header` to prefix with the path.
pub fn parse(reader: &mut impl Read, file_len: u64) -> std::result::Result<Header, String> {
    let header = parse_unchecked(reader, file_len)?;
    check_extent(&header, file_len)?;
    Ok(header)
}

/// [`parse`] without the check that the file holds the tensors, for a caller that words that
/// failure itself (a single-file checkpoint compares [`Header::described_len`] exactly).
pub fn parse_unchecked(
    reader: &mut impl Read,
    file_len: u64,
) -> std::result::Result<Header, String> {
    let mut len = [0u8; 8];
    reader.read_exact(&mut len).map_err(|_| {
        format!("it is {file_len} bytes long, shorter than the 8-byte header length")
    })?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES {
        return Err(format!(
            "its header claims {n} bytes, more than the {MAX_HEADER_BYTES} any safetensors \
             reader accepts (is it a safetensors file?)"
        ));
    }
    if 8 + n > file_len {
        return Err(format!(
            "its header claims {n} bytes but the file has only {} after the length (truncated?)",
            file_len.saturating_sub(8)
        ));
    }
    let mut json = vec![0u8; n as usize];
    reader
        .read_exact(&mut json)
        .map_err(|e| format!("cannot read its {n}-byte header: {e}"))?;
    let value: Value =
        serde_json::from_slice(&json).map_err(|e| format!("its header is not JSON ({e})"))?;
    from_json(value, 8 + n)
}

/// The tensors and metadata of the header's JSON.
fn from_json(value: Value, data_offset: u64) -> std::result::Result<Header, String> {
    let Value::Object(map) = value else {
        return Err("its header is JSON but not an object".into());
    };
    let mut header = Header {
        data_offset,
        ..Header::default()
    };
    for (name, entry) in map {
        if name == "__metadata__" {
            header.metadata = metadata(entry)?;
            continue;
        }
        header.tensors.push(tensor(name, &entry)?);
    }
    Ok(header)
}

fn metadata(entry: Value) -> std::result::Result<BTreeMap<String, String>, String> {
    let Value::Object(map) = entry else {
        return Err("its __metadata__ is not an object".into());
    };
    Ok(map
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}

fn tensor(name: String, entry: &Value) -> std::result::Result<TensorInfo, String> {
    let bad = || format!("its entry for tensor {name:?} lacks a dtype, shape or data_offsets");
    let numbers = |v: &Value| -> std::result::Result<Vec<u64>, String> {
        let items = v.as_array().ok_or_else(bad)?;
        items.iter().map(|d| d.as_u64().ok_or_else(bad)).collect()
    };
    let dtype = entry["dtype"].as_str().ok_or_else(bad)?.to_string();
    let shape = numbers(&entry["shape"])?;
    let data_offsets = match numbers(&entry["data_offsets"])?[..] {
        [begin, end] if begin <= end => [begin, end],
        _ => return Err(bad()),
    };
    Ok(TensorInfo {
        name,
        dtype,
        shape,
        data_offsets,
    })
}

/// Refuses a file shorter than its last tensor's end.
fn check_extent(header: &Header, file_len: u64) -> std::result::Result<(), String> {
    let needed = header.described_len();
    if needed > file_len {
        return Err(format!(
            "its tensors need {needed} bytes but the file has {file_len} (truncated?)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, data));
        bytes
    }

    fn parse_bytes(bytes: &[u8]) -> std::result::Result<Header, String> {
        parse(&mut &bytes[..], bytes.len() as u64)
    }

    const TWO: &str = r#"{"__metadata__":{"format":"pt","n":4},
        "b":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},
        "a":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#;

    #[test]
    fn reads_tensors_metadata_and_the_data_offset() {
        let h = parse_bytes(&file(TWO, 20)).unwrap();
        assert_eq!(h.tensors.len(), 2);
        assert_eq!(
            h.tensors[0],
            TensorInfo {
                name: "a".into(),
                dtype: "F32".into(),
                shape: vec![2],
                data_offsets: [12, 20],
            }
        );
        assert_eq!(h.tensor("b").unwrap().shape, [2, 3]);
        assert_eq!(h.metadata["format"], "pt");
        assert_eq!(h.metadata["n"], "4", "a number is kept as its JSON text");
        assert_eq!(h.data_offset, 8 + TWO.len() as u64);
        // 6 F16 elements outweigh 2 F32 ones.
        assert_eq!(h.main_float_dtype(), Some("F16"));
    }

    #[test]
    fn refuses_broken_files_clearly() {
        let short = parse_bytes(&[1, 2, 3]).unwrap_err();
        assert_eq!(
            short,
            "it is 3 bytes long, shorter than the 8-byte header length"
        );
        let huge = parse_bytes(&u64::MAX.to_le_bytes()).unwrap_err();
        assert!(huge.contains("more than the 100000000"), "{huge}");
        let mut cut = file(TWO, 20);
        cut.truncate(30);
        let cut = parse_bytes(&cut).unwrap_err();
        assert!(
            cut.contains("(truncated?)") && cut.contains("has only 22"),
            "{cut}"
        );
        let data_cut = parse_bytes(&file(TWO, 19)).unwrap_err();
        assert!(
            data_cut.contains("need") && data_cut.contains("(truncated?)"),
            "{data_cut}"
        );
        let not_json = parse_bytes(&file("{not json", 0)).unwrap_err();
        assert!(not_json.starts_with("its header is not JSON"), "{not_json}");
        let array = parse_bytes(&file("[1]", 0)).unwrap_err();
        assert_eq!(array, "its header is JSON but not an object");
        let no_shape = parse_bytes(&file(r#"{"a":{"dtype":"F32"}}"#, 0)).unwrap_err();
        assert!(
            no_shape.contains("\"a\" lacks a dtype, shape"),
            "{no_shape}"
        );
    }

    #[test]
    fn read_header_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        std::fs::write(&path, b"PK\x03\x04 a zip, not safetensors").unwrap();
        let e = read_header(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{} is not a readable safetensors file: ",
                path.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn reads_the_wild_checkpoints_headers() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/wild/checkpoints");
        let h = read_header(&dir.join("tiny-sd1-fp16.safetensors")).unwrap();
        assert_eq!(h.tensors.len(), 541);
        assert_eq!(h.main_float_dtype(), Some("F16"));
        let h = read_header(&dir.join("tiny-sdxl.safetensors")).unwrap();
        assert_eq!(h.tensors.len(), 794);
        assert_eq!(h.main_float_dtype(), Some("F32"));
    }
}
