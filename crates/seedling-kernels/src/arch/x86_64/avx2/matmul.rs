//! The AVX2 + FMA micro-kernel, for x86-64 CPUs without AVX-512 (AMD's Zen 1–3; Intel's
//! cores from Haswell on, most of whose client parts lack AVX-512).
//!
//! Why local: with it these CPUs get what `avx512` gives the others — sums that start from a
//! bias or offset, GEGLU's gated projection, `b` packed once rather than repacked by the gemm
//! crate on every call, and the same bits as the AVX-512 kernel (see `tiles`). The tile is
//! 6×16, BLIS's Haswell/Zen sgemm shape (Van Zee & van de Geijn 2015): of the 16 vector
//! registers, 12 hold the tile (six rows of two 8-lane vectors), two the panel's row and one
//! the broadcast value of `a`: 12 FMAs per 2 panel loads and 6 broadcasts, enough independent
//! sums to cover the FMA latency on two pipes. On 2 Zen 3 cores (`cargo run --release
//! --example gemm_shapes`, the UNet's shapes at 512²) it ran at 171–192 GFLOP/s where the gemm
//! crate ran at 160–185; a loop of register-only FMAs peaks at 197–201 there.

use crate::matmul::tiles::{Kernel, Tile, TileStart};
use std::arch::x86_64::*;

/// The kernel's type, for `tiles`.
pub struct Avx2;

/// Columns of a micro-tile (two 8-lane vectors); `PackedB`'s panel width on these CPUs.
pub const NR: usize = 16;

/// Panel rows between a row being multiplied and the one prefetched.
const PREFETCH: usize = 16;

impl Kernel for Avx2 {
    const MR: usize = 6;
    const NR: usize = NR;

    /// One vector wide when the tile's valid columns fit in one (a product's last column tile,
    /// where its columns are not whole tiles).
    ///
    /// # Safety
    /// As for `Kernel::run`; the CPU has AVX2 and FMA.
    unsafe fn run(rows: usize, t: &Tile) {
        if t.cols <= 8 {
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
/// As for `Kernel::run`; the CPU has AVX2 and FMA.
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
            _ => unreachable!("tile of {rows} rows"),
        }
    }
}

/// `y[0..R, 0..cols] = start + a[0..R, 0..depth] · b[0..depth, 0..cols]`, with `V` 8-lane
/// vectors per row (`V · 8 ≥ cols`).
///
/// # Safety
/// As for `Kernel::run` with `rows` = R; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel<const R: usize, const V: usize>(t: &Tile) {
    // Lanes of each vector that are columns of `y` (8, or fewer in the last vector of a
    // partial tile: those go through a buffer, since AMD allows a masked load or store to fault
    // on the lanes it leaves alone).
    let lanes: [usize; V] = std::array::from_fn(|v| t.cols.saturating_sub(8 * v).min(8));
    let mut acc = [[_mm256_setzero_ps(); V]; R];
    // SAFETY: `y` has R rows of `cols` values `ldy` apart, a start row `cols` values and a start
    // column R (the caller's promise); `lanes[v]` counts only columns below `cols`.
    unsafe {
        match t.start {
            TileStart::Zero => {}
            TileStart::Output => {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let row = t.y.add(r * t.ldy);
                    for v in 0..V {
                        acc[v] = load(row.add(8 * v), lanes[v]);
                    }
                }
            }
            TileStart::Columns(row) => {
                let start: [__m256; V] = std::array::from_fn(|v| load(row.add(8 * v), lanes[v]));
                acc = [start; R];
            }
            TileStart::Rows(column) => {
                for (r, acc) in acc.iter_mut().enumerate() {
                    *acc = [_mm256_set1_ps(*column.add(r)); V];
                }
            }
        }
    }
    let (rs, cs) = t.a_strides;
    for k in 0..t.depth {
        // The panel row PREFETCH steps ahead, into L1 (a hint: past the panel's end it
        // touches nothing). The panel streams from L2 for every row tile. Measured on 2 Zen 3
        // cores (`examples/gemm_shapes.rs`, two interleaved runs each way): the larger shapes
        // 180–192 GFLOP/s with it, 180–188 without; the small ones move with noise either way.
        _mm_prefetch::<_MM_HINT_T0>(t.b.wrapping_add((k + PREFETCH) * t.ldb) as *const i8);
        // The panel's row holds whole vectors past `cols` (its padding): read, never stored.
        // SAFETY: row k < depth of the panel has NR ≥ 8·V readable values (the caller's promise).
        let b: [__m256; V] =
            std::array::from_fn(|v| unsafe { _mm256_loadu_ps(t.b.add(k * t.ldb + 8 * v)) });
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: (r, k) with r < R and k < depth lies in `a` (the caller's promise).
            let a = _mm256_broadcast_ss(unsafe { &*t.a.add(r * rs + k * cs) });
            for v in 0..V {
                acc[v] = _mm256_fmadd_ps(a, b[v], acc[v]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row r < R of `y` has `cols` writable values, and `lanes[v]` counts only
        // columns below `cols` (the caller's promise).
        unsafe {
            let row = t.y.add(r * t.ldy);
            for v in 0..V {
                store(row.add(8 * v), lanes[v], acc[v]);
            }
        }
    }
}

/// The first `lanes` values at `p` (the rest zero).
///
/// # Safety
/// `p` has `lanes` (≤ 8) readable values; the CPU has AVX.
#[target_feature(enable = "avx2,fma")]
unsafe fn load(p: *const f32, lanes: usize) -> __m256 {
    if lanes == 8 {
        // SAFETY: `p` has 8 readable values (the caller's promise).
        return unsafe { _mm256_loadu_ps(p) };
    }
    let mut buf = [0f32; 8];
    // SAFETY: `p` has `lanes` ≤ 8 readable values, `buf` room for 8; the buffer is read whole.
    unsafe {
        std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), lanes);
        _mm256_loadu_ps(buf.as_ptr())
    }
}

/// The first `lanes` values of `x` written at `p`.
///
/// # Safety
/// `p` has `lanes` (≤ 8) writable values; the CPU has AVX.
#[target_feature(enable = "avx2,fma")]
unsafe fn store(p: *mut f32, lanes: usize, x: __m256) {
    if lanes == 8 {
        // SAFETY: `p` has 8 writable values (the caller's promise).
        return unsafe { _mm256_storeu_ps(p, x) };
    }
    let mut buf = [0f32; 8];
    // SAFETY: `buf` has room for 8 values, `p` for `lanes` ≤ 8 (the caller's promise).
    unsafe {
        _mm256_storeu_ps(buf.as_mut_ptr(), x);
        std::ptr::copy_nonoverlapping(buf.as_ptr(), p, lanes);
    }
}
