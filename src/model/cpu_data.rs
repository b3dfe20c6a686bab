//! The f32 values a local CPU kernel (`conv`, `norm`, `sdpa`, `geglu`) reads from candle's
//! storage inside a `CustomOp`: one place that checks the dtype and the contiguity.

use candle_core::{CpuStorage, Layout, Result};

/// The values of a contiguous f32 tensor's layout, or an error naming the op.
pub fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        candle_core::bail!("{op}: f32 input expected");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => candle_core::bail!("{op}: contiguous input expected"),
    }
}
