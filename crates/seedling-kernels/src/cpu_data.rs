//! The f32 values a local CPU kernel (`conv`, `norm`, `sdpa`, `geglu`) reads from candle's
//! storage inside a `CustomOp` (or writes in an `InplaceOp`): one place that checks the dtype
//! and the contiguity; and the output buffers they write, initialised by all threads.

use candle_core::{CpuStorage, Layout, Result};
use rayon::prelude::*;
use std::marker::PhantomData;
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

/// `len` zeros, written by rayon's threads. Why: `vec![0.0; len]` zeroes (or, for fresh memory,
/// first touches and so page-faults) the whole buffer on the calling thread while the other
/// cores wait; profiling a UNet step on 2 cores put ~5 % of its time there (most of it the
/// kernel clearing fresh pages, which costs the same whichever thread faults them in).
pub fn zeros_par(len: usize) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    values.par_extend(rayon::iter::repeat_n(0f32, len));
    values
}

/// A buffer that parallel tasks write in disjoint parts which are not contiguous chunks (so
/// `par_chunks_mut` cannot hand them out): a Winograd group's output pixels, one attention
/// head's columns of a block of rows. The buffer stays mutably borrowed while this lives.
pub struct SharedMut<'a> {
    ptr: *mut f32,
    len: usize,
    _buffer: PhantomData<&'a mut [f32]>,
}

// SAFETY: `slice`'s contract makes every task's writes disjoint from every other access.
unsafe impl Sync for SharedMut<'_> {}

impl<'a> SharedMut<'a> {
    pub fn new(buffer: &'a mut [f32]) -> Self {
        Self {
            ptr: buffer.as_mut_ptr(),
            len: buffer.len(),
            _buffer: PhantomData,
        }
    }

    /// `len` values from `start`. Panics if they lie outside the buffer.
    ///
    /// # Safety
    /// No other reference to those values may be live while the slice is.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(
            start.checked_add(len).is_some_and(|end| end <= self.len),
            "shared buffer: {start}..+{len} outside its {} values",
            self.len
        );
        // SAFETY: `start..start + len` lies in the buffer (just checked), which stays mutably
        // borrowed while `self` lives; no other reference to those values is live (the
        // caller's promise).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_buffers_hold_what_they_say() {
        assert_eq!(zeros_par(0), Vec::<f32>::new());
        assert_eq!(zeros_par(100_003), vec![0.0; 100_003]);
    }
}
