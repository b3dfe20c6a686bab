//! An f32 matrix multiply with AVX-512 kernels, for the CPUs that have them.
//!
//! Why local: candle's CPU matmul (and seedling's conv and attention before this) is the gemm
//! crate, which uses its AVX-512 kernels only with its `nightly` feature; on stable Rust it runs
//! its AVX2 kernels. Profiling `seedling bench` on SD 1.5 put ~80 % of the UNet's time in them,
//! at ~152 GFLOP/s on two Zen 4 cores where PyTorch's oneDNN reaches ~212 on the same conv.
//!
//! The tiling (what a tile is, how tasks share them out, the summation order) is `tiles`'s,
//! shared with the AVX2 kernel: this file is the 12×32 micro-kernel, which keeps the tile of
//! `y` in 24 of the 32 vector registers and, per k, broadcasts 12 values of `a` against two
//! 16-lane vectors of the panel: 24 FMAs per 2 loads.

use crate::matmul::tiles::{Kernel, Tile, TileStart};
use std::arch::x86_64::*;

/// The kernel's type, for `tiles`.
pub struct Avx512;

/// Columns of a micro-tile (two 16-lane vectors): `PackedB`'s panel width on these CPUs.
pub const NR: usize = 32;

/// Panel rows between a row being multiplied and the one prefetched (16 × 128 bytes ahead).
const PREFETCH: usize = 16;

impl Kernel for Avx512 {
    const MR: usize = 12;
    const NR: usize = NR;

    /// One vector wide when the tile's valid columns fit in one (a product's last column tile,
    /// where its columns are not whole tiles).
    ///
    /// # Safety
    /// As for `Kernel::run`; the CPU has AVX-512F.
    unsafe fn run(rows: usize, t: &Tile) {
        if t.cols <= 16 {
            // SAFETY: the caller's promise, passed on.
            return unsafe { run_rows::<1>(rows, t) };
        }
        // SAFETY: as above.
        unsafe { run_rows::<2>(rows, t) }
    }
}

/// `kernel` for `rows` rows.
///
/// # Safety
/// As for `Kernel::run`; the CPU has AVX-512F.
unsafe fn run_rows<const V: usize>(rows: usize, t: &Tile) {
    // SAFETY: the caller's promise, for R = `rows` rows.
    unsafe {
        match rows {
            1 => kernel::<1, V>(t),
            2 => kernel::<2, V>(t),
            3 => kernel::<3, V>(t),
            4 => kernel::<4, V>(t),
            5 => kernel::<5, V>(t),
            6 => kernel::<6, V>(t),
            7 => kernel::<7, V>(t),
            8 => kernel::<8, V>(t),
            9 => kernel::<9, V>(t),
            10 => kernel::<10, V>(t),
            11 => kernel::<11, V>(t),
            12 => kernel::<12, V>(t),
            _ => unreachable!("tile of {rows} rows"),
        }
    }
}

/// `y[0..R, 0..cols] (+)= a[0..R, 0..depth] · b[0..depth, 0..cols]`, with `V` 16-lane vectors
/// per row (`V · 16 ≥ cols`).
///
/// # Safety
/// As for `Kernel::run` with `rows` = R; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const R: usize, const V: usize>(t: &Tile) {
    let masks: [__mmask16; V] = std::array::from_fn(|v| lane_mask(t.cols.saturating_sub(16 * v)));
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    // Lanes past `cols` are masked off: not read (no fault) nor written, but the pointer may
    // lie past `y` or the start row, hence `wrapping_add`.
    // SAFETY: `y` has R rows of `cols` values `ldy` apart, a start row `cols` values and a start
    // column R (the caller's promise); `masks[v]` selects only columns below `cols`.
    unsafe {
        match t.start {
            TileStart::Zero => {}
            TileStart::Output => {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let row = t.y.add(r * t.ldy);
                    for v in 0..V {
                        acc[v] = _mm512_maskz_loadu_ps(masks[v], row.wrapping_add(16 * v));
                    }
                }
            }
            TileStart::Columns(row) => {
                let start: [__m512; V] = std::array::from_fn(|v| {
                    _mm512_maskz_loadu_ps(masks[v], row.wrapping_add(16 * v))
                });
                acc = [start; R];
            }
            TileStart::Rows(column) => {
                for (r, acc) in acc.iter_mut().enumerate() {
                    *acc = [_mm512_set1_ps(*column.add(r)); V];
                }
            }
        }
    }
    let (rs, cs) = t.a_strides;
    for k in 0..t.depth {
        // The panel row PREFETCH steps ahead, into L1 (its two cache lines): the panel streams
        // from L2 for every tile, beside a dozen rows of `a` for the hardware prefetchers to
        // follow. Measured on 2 Intel cores, interleaved (no hardware counters there to show
        // the misses): Linear and im2col shapes 256–289 → 271–323 GFLOP/s; UNet step batch 2
        // 5.82 / 6.43 → 5.67 / 5.84 s. A hint only: past the panel's end it touches nothing.
        _mm_prefetch::<_MM_HINT_T0>(t.b.wrapping_add((k + PREFETCH) * t.ldb) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(t.b.wrapping_add((k + PREFETCH) * t.ldb + 16) as *const i8);
        // SAFETY: row k < depth of the panel has NR ≥ 16·V readable values (the caller's
        // promise).
        let b: [__m512; V] =
            std::array::from_fn(|v| unsafe { _mm512_loadu_ps(t.b.add(k * t.ldb + 16 * v)) });
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: (r, k) with r < R and k < depth lies in `a` (the caller's promise).
            let a = _mm512_set1_ps(unsafe { *t.a.add(r * rs + k * cs) });
            for v in 0..V {
                acc[v] = _mm512_fmadd_ps(a, b[v], acc[v]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row r < R of `y` has `cols` writable values and `masks[v]` selects only
        // columns below `cols` (the caller's promise; the masked-off lanes are not touched).
        unsafe {
            let row = t.y.add(r * t.ldy);
            for v in 0..V {
                _mm512_mask_storeu_ps(row.wrapping_add(16 * v), masks[v], acc[v]);
            }
        }
    }
}

/// The first `n` of 16 lanes (all for n ≥ 16).
fn lane_mask(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}
