//! A safetensors file's header (names, dtypes, shapes), read without reading the tensors, and
//! checked against the file's length, so that a truncated or foreign file is refused before
//! anything is loaded (the layout: 8-byte little-endian header length, JSON header, data;
//! https://github.com/huggingface/safetensors#format).

use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Headers larger than this are not safetensors headers (the format caps them at 100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// One tensor's entry in the header.
#[derive(Debug, Clone, Deserialize)]
pub struct TensorInfo {
    pub dtype: String,
    pub shape: Vec<usize>,
    pub data_offsets: [u64; 2],
}

/// Every tensor of a file, by name (the `__metadata__` entry is left out).
#[derive(Debug, Clone)]
pub struct Header {
    pub tensors: BTreeMap<String, TensorInfo>,
}

impl Header {
    pub fn read(path: &Path) -> Result<Header> {
        let mut file = std::fs::File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("cannot read", path, e))?
            .len();
        let mut size = [0u8; 8];
        file.read_exact(&mut size)
            .map_err(|_| not_safetensors(path, "it is shorter than a header"))?;
        let size = u64::from_le_bytes(size);
        if size > MAX_HEADER || size + 8 > len {
            return Err(not_safetensors(
                path,
                "its first 8 bytes are no header length",
            ));
        }
        let mut json = vec![0u8; size as usize];
        file.read_exact(&mut json)
            .map_err(|e| Error::io("cannot read", path, e))?;
        let mut entries: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&json)
            .map_err(|e| not_safetensors(path, &format!("its header is not valid JSON ({e})")))?;
        entries.remove("__metadata__");
        let tensors: BTreeMap<String, TensorInfo> = entries
            .into_iter()
            .map(|(k, v)| serde_json::from_value(v).map(|t| (k, t)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| {
                not_safetensors(path, &format!("its header is not a tensor list ({e})"))
            })?;
        let data = tensors
            .values()
            .map(|t| t.data_offsets[1])
            .max()
            .unwrap_or(0);
        if 8 + size + data != len {
            return Err(Error::Model(format!(
                "{} is truncated or damaged: its header describes {} bytes, the file holds {len}; \
                 download or copy it again",
                path.display(),
                8 + size + data
            )));
        }
        Ok(Header { tensors })
    }
}

fn not_safetensors(path: &Path, why: &str) -> Error {
    Error::Model(format!(
        "{} is not a safetensors file ({why}); seedling reads single-file checkpoints in \
         safetensors format",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        f
    }

    fn file_with(header: &str, data: usize) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.resize(bytes.len() + data, 0);
        bytes
    }

    const ONE: &str =
        r#"{"__metadata__":{"a":"b"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;

    #[test]
    fn reads_names_and_shapes() {
        let f = write(&file_with(ONE, 8));
        let h = Header::read(f.path()).unwrap();
        assert_eq!(h.tensors.len(), 1);
        assert_eq!(h.tensors["x"].shape, vec![2]);
    }

    #[test]
    fn a_truncated_file_is_named() {
        let f = write(&file_with(ONE, 5));
        let err = Header::read(f.path()).unwrap_err().to_string();
        assert!(
            err.contains("is truncated or damaged: its header describes"),
            "{err}"
        );
    }

    #[test]
    fn a_pickle_is_not_a_safetensors_file() {
        let f = write(b"\x80\x02}q\x00(X\x05\x00\x00\x00state_dictq\x01");
        let err = Header::read(f.path()).unwrap_err().to_string();
        assert!(err.contains("is not a safetensors file"), "{err}");
    }
}
