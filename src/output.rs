//! STUB — being written.
use crate::Result;
use std::path::{Path, PathBuf};
pub fn write_new(_p: &Path, _b: &[u8], _o: bool) -> Result<()> {
    unimplemented!()
}
pub fn write_auto(_d: &Path, _s: u64, _p: &str, _b: &[u8]) -> Result<PathBuf> {
    unimplemented!()
}
