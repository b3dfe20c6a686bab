//! A checkpoint's tensor list by name, from its safetensors header (read by
//! `models::safetensors_header`, the one header reader), checked against the file's length
//! exactly, so that a truncated or foreign file is refused before anything is loaded.

use crate::models::safetensors_header;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// One tensor's entry in the header.
#[derive(Debug, Clone)]
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
    /// Reads the header of the safetensors file at `path`; a file whose length is not what the
    /// header describes (cut off, or with bytes appended) is refused, as the safetensors crate
    /// refuses it when loading.
    pub fn read(path: &Path) -> Result<Header> {
        let (header, len) =
            safetensors_header::read_unchecked(path, |why| not_safetensors(path, why))?;
        let described = header.described_len();
        if described != len {
            return Err(Error::Model(format!(
                "{} is truncated or damaged: its header describes {described} bytes, the file \
                 holds {len}; download or copy it again",
                path.display()
            )));
        }
        let tensors = header
            .tensors
            .into_iter()
            .map(|t| {
                let info = TensorInfo {
                    dtype: t.dtype,
                    shape: t.shape.iter().map(|&d| d as usize).collect(),
                    data_offsets: t.data_offsets,
                };
                (t.name, info)
            })
            .collect();
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
