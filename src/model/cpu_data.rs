//! The f32 values a local CPU kernel (`conv`, `norm`, `sdpa`, `geglu`) reads from candle's
//! storage inside a `CustomOp` (or writes in an `InplaceOp`): one place that checks the dtype
//! and the contiguity.

use candle_core::{CpuStorage, Layout, Result};
use std::ops::Range;

/// The values of a contiguous f32 tensor's layout, or an error naming the op.
pub fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        candle_core::bail!("{op}: f32 input expected");
    };
    Ok(&values[contiguous_range(layout, op)?])
}

/// `contiguous_f32` for a storage an in-place op writes.
pub fn contiguous_f32_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(values) = storage else {
        candle_core::bail!("{op}: f32 input expected");
    };
    Ok(&mut values[contiguous_range(layout, op)?])
}

fn contiguous_range(layout: &Layout, op: &str) -> Result<Range<usize>> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(start..end),
        None => candle_core::bail!("{op}: contiguous input expected"),
    }
}
