//! Weights memory-mapped from safetensors files: the one place the library maps a file, so that
//! the `unsafe` candle asks for it stays in this crate.

use candle_core::{DType, Device, Result};
use candle_nn::VarBuilder;
use std::path::Path;

/// A `VarBuilder` over the tensors of the safetensors file at `path`, memory-mapped rather than
/// read: a model's gigabytes are paged in as the networks are built, and shared with the page
/// cache. Tensors are converted to `dtype` on `device` as they are fetched.
///
/// A mapped file must not change while it is mapped: the values would change under the
/// networks, and a truncated file faults. Model files are not written in place: the Hugging
/// Face cache and seedling write new files and rename them into place; one edited by hand
/// while seedling runs is outside what this guards.
pub fn var_builder(path: &Path, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
    // SAFETY: candle's only condition is that the file is not modified while mapped, which the
    // model files this is used for are not (see above).
    unsafe { VarBuilder::from_mmaped_safetensors(&[path], dtype, device) }
}

/// The safetensors file at `path`, memory-mapped, for a caller that serves its tensors under
/// other names (a single-file checkpoint read through a renaming `VarBuilder` backend).
/// Same contract as [`var_builder`].
pub fn safetensors(path: &Path) -> Result<candle_core::safetensors::MmapedSafetensors> {
    // SAFETY: as in `var_builder`: the file is not modified while mapped.
    unsafe { candle_core::safetensors::MmapedSafetensors::new(path) }
}
