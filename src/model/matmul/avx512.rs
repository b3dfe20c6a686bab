//! An f32 matrix multiply with AVX-512 kernels, for the CPUs that have them.
//!
//! Why local: candle's CPU matmul (and seedling's conv and attention before this) is the gemm
//! crate, which uses its AVX-512 kernels only with its `nightly` feature; on stable Rust it runs
//! its AVX2 kernels. Profiling `seedling bench` on SD 1.5 put ~80 % of the UNet's time in them,
//! at ~152 GFLOP/s on two Zen 4 cores where PyTorch's oneDNN reaches ~212 on the same conv.
//!
//! The scheme follows BLIS's micro-kernel design (Van Zee & van de Geijn, "BLIS: A Framework
//! for Rapidly Instantiating BLAS Functionality", 2015), with `a` read in place as in BLIS's
//! small/unpacked ("sup") kernels:
//! - `b` arrives packed (`PackedB`): column panels of `NR` = 32 (two 16-lane vectors), each a
//!   contiguous [k][NR] block streamed front to back;
//! - the rows are cut into tiles of `MR` = 12; the micro-kernel keeps the 12×32 tile of `y` in
//!   24 of the 32 vector registers and, per k, broadcasts 12 values of `a` (read where they lie:
//!   packing `a`, a weight matrix of up to 59 MB, would cost as much as the product for the
//!   small late-UNet images) against two vectors of the panel: 24 FMAs per 2 loads;
//! - no blocking of the inner dimension: each tile runs the whole of k, so `y` is read and
//!   written once. Measured on Zen 4 (2 cores), blocking k by 128/256/512/1024 was 3–45 %
//!   slower than none on the UNet's shapes: the panel streams from L2 fast enough for 24 FMAs
//!   per 128 bytes, and every block costs a pass over the tile of `y`;
//! - each row tile of `a` is multiplied with a block of panels (up to `PANEL_BLOCK_BYTES`) in
//!   turn, so `a` streams from memory once per block, not once per panel (BLIS's reuse of a
//!   packed block of `a` from L2, without the packing). On 2 Intel cores with 2 MiB L2s a
//!   Linear's [8192, 320] · [320, 320] went from 254 to 306 GFLOP/s.
//!
//! Every element is summed in one order fixed by the inner dimension alone (its `Start`: zero,
//! what `y` held, or a bias or offset value; then k ascending, one fused multiply-add each): its
//! value does not depend on the matrix sizes, the tile it falls in or the thread, so an image
//! computes the same alone or in a batch. `gemm_gated` runs the same tiles for GEGLU's
//! projection and gates each pair of them from L1 instead of storing the projection.

use super::{Gate, MatMut, MatRef, PackedB, Start};
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::ops::Range;

/// Rows of a micro-tile.
const MR: usize = 12;
/// Columns of a micro-tile (two 16-lane vectors): the width of `PackedB`'s panels.
pub const NR: usize = 32;

/// Panel rows between a row being multiplied and the one prefetched (16 × 128 bytes ahead).
const PREFETCH: usize = 16;

/// Whether this CPU can run these kernels.
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// `y = start + a · b` on up to `tasks` rayon tasks; `b` in panels of `NR` columns. Panics if
/// the CPU lacks AVX-512 (callers check `available()`); a row or column start has one value per
/// row or column of `y` (checked by `gemm_packed`).
pub fn gemm(a: MatRef, b: &PackedB, y: MatMut, start: Start, tasks: usize) {
    assert!(available(), "avx512 gemm on a CPU without AVX-512");
    assert!(
        b.width == NR && b.k == a.cols,
        "avx512 gemm: b packed for another kernel"
    );
    let (m, n) = (y.rows, y.cols);
    let parts = split(n.div_ceil(NR), m.div_ceil(MR), tasks);
    let out = SharedOut::new(y);
    for_each_tile(parts, panels_per_block(b.k), |p, t| {
        multiply_tile(&a, b, &out, p, t, start)
    });
}

/// `tile(p, t)` for every (column panel, row tile) pair of `parts`, one rayon task per part.
/// Each row tile of `a` meets a block of `block` panels in turn while it is in cache: a product
/// with many panels (a Linear's 320 to 10240 output columns) then reads `a` from memory once
/// per block instead of once per panel. Every tile still runs the whole inner dimension, so the
/// order of the tiles changes no value.
fn for_each_tile(
    parts: Vec<(Range<usize>, Range<usize>)>,
    block: usize,
    tile: impl Fn(usize, usize) + Sync,
) {
    let run = |(panels, tiles): (Range<usize>, Range<usize>)| {
        for first in panels.clone().step_by(block) {
            let last = (first + block).min(panels.end);
            for t in tiles.clone() {
                for p in first..last {
                    tile(p, t);
                }
            }
        }
    };
    if parts.len() == 1 {
        parts.into_iter().for_each(run);
    } else {
        parts.into_par_iter().for_each(run);
    }
}

/// Bytes of `b`'s panels one row tile of `a` is multiplied with while it stays in cache: half
/// of Zen 4's 1 MiB L2 (Intel's server cores have 2 MiB), leaving room for the tile of `a`.
const PANEL_BLOCK_BYTES: usize = 512 * 1024;

/// Panels per block: as many as fit in `PANEL_BLOCK_BYTES`, at least one.
fn panels_per_block(depth: usize) -> usize {
    (PANEL_BLOCK_BYTES / (depth * NR * 4).max(1)).max(1)
}

/// `y`'s storage, shared by tasks that write disjoint tiles of it.
struct SharedOut {
    ptr: *mut f32,
    row_stride: usize,
}

// Safety: tasks write disjoint (row tile, column panel) rectangles of `y` (`split` hands each
// (panel, tile) pair to exactly one task), and `y` is borrowed mutably for the whole call.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    fn new(y: MatMut) -> Self {
        Self {
            ptr: y.data.as_mut_ptr(),
            row_stride: y.row_stride,
        }
    }

    /// Element (i, j).
    ///
    /// # Safety
    /// (i, j) lies in `y`.
    unsafe fn at(&self, i: usize, j: usize) -> *mut f32 {
        self.ptr.add(i * self.row_stride + j)
    }
}

/// Row tile `t`, column panel `p` of `y`, summed over the whole inner dimension.
fn multiply_tile(a: &MatRef, b: &PackedB, out: &SharedOut, p: usize, t: usize, start: Start) {
    // Safety: rows t·MR.. and columns p·NR.. of `y` lie in its slice (checked when it was
    // made, and `gemm` only hands out tiles of it); no other task writes this tile.
    unsafe {
        tile_into(a, b, p, t, start, out.at(t * MR, p * NR), out.row_stride);
    }
}

/// The product's tile (row tile `t`, column panel `p`) written at `y`, rows `ldy` apart.
///
/// # Safety
/// `y` has the tile's rows (up to MR) of its columns (up to NR) writable, `ldy` apart, and
/// nothing else accesses them during the call; a row or column start has one value per column
/// of `b` or row of `a`.
unsafe fn tile_into(
    a: &MatRef,
    b: &PackedB,
    p: usize,
    t: usize,
    start: Start,
    y: *mut f32,
    ldy: usize,
) {
    let m = a.rows;
    let j0 = p * NR;
    let cols = NR.min(b.n - j0);
    let i0 = t * MR;
    let rows = MR.min(m - i0);
    // Safety: rows i0..i0 + rows < m of `a` (all k columns) lie in its slice (checked when it
    // was made); the panel holds k × NR values; the start and `y` as the caller promises; the
    // CPU has AVX-512 (checked by `gemm` and `gemm_gated`).
    let tile = Tile {
        a: a.data.as_ptr().add(i0 * a.row_stride),
        a_strides: (a.row_stride, a.col_stride),
        b: b.panel(p).as_ptr(),
        y,
        ldy,
        depth: a.cols,
        cols,
        start: match start {
            Start::Zero => TileStart::Zero,
            Start::Output => TileStart::Output,
            Start::Columns(row) => TileStart::Columns(row.as_ptr().add(j0)),
            Start::Rows(column) => TileStart::Rows(column.as_ptr().add(i0)),
        },
    };
    run_tile(rows, &tile);
}

/// `y[i][j] = gate(h[i][j], h[i][half + j])` for `h = start + a · b` with `half` = b's columns
/// / 2, a multiple of `NR` (GEGLU's projection and gate in one pass): each tile of the two
/// halves is summed into a small buffer in L1 and gated from there, so `h` (SD 1.5's
/// [8192, 2560] at 64×64, 84 MB) is never written out and read back. The sums are `gemm`'s,
/// value for value, and `gate` gets them as a row of the full `h` would give them. `gate(value,
/// gate, out)` takes slices of one length. `y` is [m, half]; a start row has b's n values.
pub fn gemm_gated(a: MatRef, b: &PackedB, y: MatMut, start: Start, gate: Gate, tasks: usize) {
    assert!(available(), "avx512 gemm on a CPU without AVX-512");
    assert!(
        b.width == NR && b.k == a.cols && b.n.is_multiple_of(2 * NR) && y.cols == b.n / 2,
        "avx512 gated gemm: b packed for another kernel or halves not whole panels"
    );
    if y.rows == 0 || y.cols == 0 {
        return;
    }
    let (m, half) = (y.rows, b.n / 2 / NR);
    let parts = split(half, m.div_ceil(MR), tasks);
    let out = SharedOut::new(y);
    // Blocks of value panels whose gate panels come along: the pairs fill `PANEL_BLOCK_BYTES`.
    let block = (panels_per_block(b.k) / 2).max(1);
    for_each_tile(parts, block, |p, t| {
        let mut value = [0f32; MR * NR];
        let mut gated = [0f32; MR * NR];
        // Safety: the buffers hold MR rows of NR; rows t·MR.. and columns p·NR.. (a whole
        // panel: half is whole panels) of `y` lie in its slice, and no other task writes them
        // (`split` hands each pair to one task).
        unsafe {
            tile_into(&a, b, p, t, start, value.as_mut_ptr(), NR);
            tile_into(&a, b, p + half, t, start, gated.as_mut_ptr(), NR);
            for r in 0..MR.min(m - t * MR) {
                gate(
                    &value[r * NR..(r + 1) * NR],
                    &gated[r * NR..(r + 1) * NR],
                    std::slice::from_raw_parts_mut(out.at(t * MR + r, p * NR), NR),
                );
            }
        }
    });
}

/// One micro-tile's operands.
struct Tile {
    /// Row i0 of `a`, element (r, k) at `a[r·rows + k·cols]` for the two strides.
    a: *const f32,
    a_strides: (usize, usize),
    /// The [depth][NR] panel of `b`.
    b: *const f32,
    /// Element (i0, j0) of `y`; rows `ldy` apart.
    y: *mut f32,
    ldy: usize,
    depth: usize,
    /// Valid columns (≤ NR); the rest of the tile is neither read nor written.
    cols: usize,
    start: TileStart,
}

/// `Start` for one tile: where its start values lie.
#[derive(Clone, Copy)]
enum TileStart {
    Zero,
    /// The tile of `y` itself.
    Output,
    /// Column j0's value of the start row: `cols` values.
    Columns(*const f32),
    /// Row i0's value of the start column: `R` values.
    Rows(*const f32),
}

/// The micro-kernel for `rows` (1..=MR) rows, one vector wide when the panel's valid columns
/// fit in one (attention's 40-wide heads leave an 8-column panel).
///
/// # Safety
/// As for `kernel`.
unsafe fn run_tile(rows: usize, t: &Tile) {
    if t.cols <= 16 {
        return run_rows::<1>(rows, t);
    }
    run_rows::<2>(rows, t)
}

/// # Safety
/// As for `kernel`.
unsafe fn run_rows<const V: usize>(rows: usize, t: &Tile) {
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

/// `y[0..R, 0..cols] (+)= a[0..R, 0..depth] · b[0..depth, 0..cols]`, with `V` 16-lane vectors
/// per row (`V · 16 ≥ cols`).
///
/// # Safety
/// The CPU has AVX-512F; `t.a` has `R` × `t.depth` readable values at its strides; `t.b` has
/// `t.depth` rows of NR readable values; `t.y` has `R` rows of `t.cols` writable values `t.ldy`
/// apart that nothing else accesses during the call; a start row has `t.cols` readable values
/// and a start column `R`.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const R: usize, const V: usize>(t: &Tile) {
    let masks: [__mmask16; V] = std::array::from_fn(|v| lane_mask(t.cols.saturating_sub(16 * v)));
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    // Lanes past `cols` are masked off: not read (no fault) nor written, but the pointer may
    // lie past `y` or the start row, hence `wrapping_add`.
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
            let start: [__m512; V] =
                std::array::from_fn(|v| _mm512_maskz_loadu_ps(masks[v], row.wrapping_add(16 * v)));
            acc = [start; R];
        }
        TileStart::Rows(column) => {
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = [_mm512_set1_ps(*column.add(r)); V];
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
        _mm_prefetch::<_MM_HINT_T0>(t.b.wrapping_add((k + PREFETCH) * NR) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(t.b.wrapping_add((k + PREFETCH) * NR + 16) as *const i8);
        let b: [__m512; V] = std::array::from_fn(|v| _mm512_loadu_ps(t.b.add(k * NR + 16 * v)));
        for (r, acc) in acc.iter_mut().enumerate() {
            let a = _mm512_set1_ps(*t.a.add(r * rs + k * cs));
            for v in 0..V {
                acc[v] = _mm512_fmadd_ps(a, b[v], acc[v]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let row = t.y.add(r * t.ldy);
        for v in 0..V {
            _mm512_mask_storeu_ps(row.wrapping_add(16 * v), masks[v], acc[v]);
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

/// (column panels, row tiles) rectangles for up to `tasks` tasks: whole panels when there are
/// enough of them, else each panel's row tiles shared out (a tall, narrow product).
fn split(panels: usize, tiles: usize, tasks: usize) -> Vec<(Range<usize>, Range<usize>)> {
    let tasks = tasks.max(1);
    if panels >= tasks || tiles == 1 {
        return even(panels, tasks)
            .into_iter()
            .map(|p| (p, 0..tiles))
            .collect();
    }
    let per_panel = tasks.div_ceil(panels);
    (0..panels)
        .flat_map(|p| {
            even(tiles, per_panel)
                .into_iter()
                .map(move |t| (p..p + 1, t))
        })
        .collect()
}

/// `0..n` in at most `parts` contiguous, non-empty ranges of near-equal length.
fn even(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts)
        .map(|i| n * i / parts..n * (i + 1) / parts)
        .filter(|r| !r.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// `a` [m, k] · `b` (element (i, j) at b[i·rs + j·cs]) in f64.
    fn reference(
        a: &[f32],
        b: &[f32],
        (m, n, k): (usize, usize, usize),
        (rs, cs): (usize, usize),
    ) -> Vec<f64> {
        let mut y = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] = (0..k)
                    .map(|l| a[i * k + l] as f64 * b[l * rs + j * cs] as f64)
                    .sum();
            }
        }
        y
    }

    /// Against an f64 product on sizes that leave partial row tiles, partial column panels
    /// (including panels of ≤ 16 columns), long sums, several blocks of panels (k = 1000: 7
    /// panels in blocks of 4 and 3), b transposed, accumulation onto a bias, and split into
    /// tasks every way `split` can.
    #[test]
    fn matches_a_reference_product() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        for (m, n, k) in [
            (1, 1, 1),
            (5, 7, 3),
            (13, 33, 257),
            (25, 70, 600),
            (12, 16, 40),
            (40, 5, 513),
            (14, 200, 1000),
        ] {
            for transposed in [false, true] {
                for tasks in [1, 2, 3, 7] {
                    let a = values(m * k, 1);
                    let b = values(k * n, 2);
                    let strides = if transposed { (1, k) } else { (n, 1) };
                    let bias = values(m * n, 3);
                    let mut y = bias.clone();
                    gemm(
                        MatRef::rows(&a, m, k, k),
                        &PackedB::pack(MatRef::new(&b, (k, n), strides)),
                        MatMut::rows(&mut y, m, n, n),
                        Start::Output,
                        tasks,
                    );
                    let want = reference(&a, &b, (m, n, k), strides);
                    for ((got, want), bias) in y.iter().zip(&want).zip(&bias) {
                        let want = want + *bias as f64;
                        assert!(
                            (*got as f64 - want).abs() <= 1e-5 * (k as f64).sqrt().max(1.0),
                            "{m}x{n}x{k} transposed {transposed} tasks {tasks}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// A row or column start gives what an output filled with it and summed onto gives, bit
    /// for bit (the Linear's bias and the convolution's offsets moved into the kernel changed
    /// no value), on partial tiles and panels, split into tasks.
    #[test]
    fn row_and_column_starts_equal_a_filled_output() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        for (m, n, k, tasks) in [
            (1, 1, 1, 1),
            (13, 33, 257, 2),
            (25, 70, 600, 3),
            (40, 5, 9, 7),
        ] {
            let a = values(m * k, 6);
            let b = PackedB::pack(MatRef::rows(&values(k * n, 7), k, n, n));
            let row = values(n, 8);
            let column = values(m, 9);
            let product = |start: Start, y: &mut Vec<f32>| {
                gemm(
                    MatRef::rows(&a, m, k, k),
                    &b,
                    MatMut::rows(y, m, n, n),
                    start,
                    tasks,
                )
            };
            let mut filled: Vec<f32> = (0..m).flat_map(|_| row.iter().copied()).collect();
            product(Start::Output, &mut filled);
            let mut started = vec![f32::NAN; m * n];
            product(Start::Columns(&row), &mut started);
            assert_eq!(started, filled, "{m}x{n}x{k} columns");
            let mut filled: Vec<f32> = column.iter().flat_map(|&v| vec![v; n]).collect();
            product(Start::Output, &mut filled);
            let mut started = vec![f32::NAN; m * n];
            product(Start::Rows(&column), &mut started);
            assert_eq!(started, filled, "{m}x{n}x{k} rows");
        }
    }

    /// The gated product gives the full product's halves gated row by row, bit for bit: on
    /// partial row tiles, several panel pairs in several blocks (k = 1500: blocks of 1 pair),
    /// a bias start, split into tasks every way.
    #[test]
    fn the_gated_product_gates_the_full_products_halves() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        fn gate(value: &[f32], gate: &[f32], out: &mut [f32]) {
            for ((o, v), g) in out.iter_mut().zip(value).zip(gate) {
                *o = v * g.max(0.0) - 0.25 * g;
            }
        }
        for (m, n, k) in [(1, 64, 1), (13, 128, 257), (25, 192, 1500), (40, 64, 9)] {
            let a = values(m * k, 10);
            let b = PackedB::pack(MatRef::rows(&values(k * n, 11), k, n, n));
            let bias = values(n, 12);
            let mut full = vec![0.0; m * n];
            gemm(
                MatRef::rows(&a, m, k, k),
                &b,
                MatMut::rows(&mut full, m, n, n),
                Start::Columns(&bias),
                1,
            );
            let half = n / 2;
            let mut want = vec![0.0; m * half];
            for (row, out) in full.chunks_exact(n).zip(want.chunks_exact_mut(half)) {
                gate(&row[..half], &row[half..], out);
            }
            for tasks in [1, 2, 3, 7] {
                let mut got = vec![f32::NAN; m * half];
                gemm_gated(
                    MatRef::rows(&a, m, k, k),
                    &b,
                    MatMut::rows(&mut got, m, half, half),
                    Start::Columns(&bias),
                    gate,
                    tasks,
                );
                assert_eq!(got, want, "{m}x{n}x{k} tasks {tasks}");
            }
        }
    }

    /// A row's values do not depend on the other rows, the columns around it or the tasks:
    /// rows 12..24 and columns 32..64 of a product equal the same rows and columns computed on
    /// their own, bit for bit (what makes an image the same alone or in a batch).
    #[test]
    fn a_sub_product_is_bit_identical() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        let (m, n, k) = (37, 90, 700);
        let a = values(m * k, 4);
        let b = values(k * n, 5);
        let mut full = vec![0.0; m * n];
        gemm(
            MatRef::rows(&a, m, k, k),
            &PackedB::pack(MatRef::rows(&b, k, n, n)),
            MatMut::rows(&mut full, m, n, n),
            Start::Zero,
            3,
        );
        let mut part = vec![0.0; 12 * 32];
        gemm(
            MatRef::rows(&a[12 * k..], 12, k, k),
            &PackedB::pack(MatRef::rows(&b[32..], k, 32, n)),
            MatMut::rows(&mut part, 12, 32, 32),
            Start::Zero,
            1,
        );
        for i in 0..12 {
            assert_eq!(
                part[i * 32..(i + 1) * 32],
                full[(12 + i) * n + 32..(12 + i) * n + 64]
            );
        }
    }

    #[test]
    fn panel_blocks_fit_their_budget() {
        assert_eq!(panels_per_block(1000), 4);
        assert_eq!(panels_per_block(2100), 1);
        assert_eq!(panels_per_block(320), 12);
        assert_eq!(panels_per_block(1 << 20), 1);
        assert!(panels_per_block(0) >= 1);
    }

    #[test]
    fn the_work_is_split_into_disjoint_covering_rectangles() {
        for (panels, tiles, tasks) in [
            (1, 1, 1),
            (10, 3, 2),
            (2, 27, 8),
            (1, 5, 16),
            (3, 1, 8),
            (7, 7, 3),
        ] {
            let mut seen = vec![0; panels * tiles];
            for (ps, ts) in split(panels, tiles, tasks) {
                for p in ps {
                    for t in ts.clone() {
                        seen[p * tiles + t] += 1;
                    }
                }
            }
            assert!(
                seen.iter().all(|&c| c == 1),
                "{panels} {tiles} {tasks}: {seen:?}"
            );
        }
    }
}
