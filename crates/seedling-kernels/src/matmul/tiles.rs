//! How a product is cut into micro-tiles and shared out over tasks, for every micro-kernel
//! (`arch::x86_64::{avx512, avx2}::matmul`): the kernels differ only in their tile's size and
//! the vectors inside it.
//!
//! The scheme follows BLIS's micro-kernel design (Van Zee & van de Geijn, "BLIS: A Framework
//! for Rapidly Instantiating BLAS Functionality", 2015), with `a` read in place as in BLIS's
//! small/unpacked ("sup") kernels:
//! - `b` arrives packed (`PackedB`): column panels, each a contiguous [k][width] block; a
//!   kernel's tile is `NR` columns, `width` a multiple of it (the 32-wide panels of Winograd's
//!   groups and attention's query blocks are two 16-column tiles for the AVX2 kernel);
//! - the rows are cut into tiles of `MR`; the micro-kernel keeps the MR×NR tile of `y` in
//!   vector registers and, per k, broadcasts MR values of `a` (read where they lie: packing
//!   `a`, a weight matrix of up to 59 MB, would cost as much as the product for the small
//!   late-UNet images) against the tile's row of the panel;
//! - no blocking of the inner dimension: each tile runs the whole of k, so `y` is read and
//!   written once. Measured on Zen 4 (2 cores), blocking k by 128/256/512/1024 was 3–45 %
//!   slower than none on the UNet's shapes (on 2 Intel cores slower or equal);
//! - each row tile of `a` is multiplied with a block of column tiles (up to
//!   `PANEL_BLOCK_BYTES` of panel) in turn, so `a` streams from memory once per block, not once
//!   per panel (BLIS's reuse of a packed block of `a` from L2, without the packing). On 2 Intel
//!   cores with 2 MiB L2s a Linear's [8192, 320] · [320, 320] went from 254 to 306 GFLOP/s.
//!
//! Every element is summed in one order fixed by the inner dimension alone (its `Start`: zero,
//! what `y` held, or a bias or offset value; then k ascending, one fused multiply-add each): its
//! value does not depend on the matrix sizes, the tile it falls in, the thread or the kernel,
//! so an image computes the same alone or in a batch, and the AVX2 and AVX-512 kernels give
//! the same bits. `gemm_gated` runs the same tiles for GEGLU's projection and gates each pair
//! of them from L1 instead of storing the projection.

use super::{Gate, MatMut, MatRef, PackedB, Start};
use rayon::prelude::*;
use std::ops::Range;

/// A micro-kernel: the MR×NR tile of `y` for one row tile and one column tile.
pub trait Kernel {
    /// Rows of a micro-tile.
    const MR: usize;
    /// Columns of a micro-tile.
    const NR: usize;

    /// Computes `t`'s tile for `rows` (1..=MR) rows.
    ///
    /// # Safety
    /// The CPU has the kernel's instructions; `t.a` has `rows` × `t.depth` readable values at
    /// its strides; `t.b` has `t.depth` rows of NR readable values `t.ldb` apart; `t.y` has
    /// `rows` rows of `t.cols` (≤ NR) writable values `t.ldy` apart that nothing else accesses
    /// during the call; a start row has `t.cols` readable values and a start column `rows`.
    unsafe fn run(rows: usize, t: &Tile);
}

/// One micro-tile's operands.
pub struct Tile {
    /// Row i0 of `a`, element (r, k) at `a[r·rows + k·cols]` for the two strides.
    pub a: *const f32,
    pub a_strides: (usize, usize),
    /// Column j0 of the panel's first row: the tile's NR columns of each row, rows `ldb` apart.
    pub b: *const f32,
    pub ldb: usize,
    /// Element (i0, j0) of `y`; rows `ldy` apart.
    pub y: *mut f32,
    pub ldy: usize,
    pub depth: usize,
    /// Valid columns (≤ NR); the rest of the tile is neither read nor written.
    pub cols: usize,
    pub start: TileStart,
}

/// `Start` for one tile: where its start values lie.
#[derive(Clone, Copy)]
pub enum TileStart {
    Zero,
    /// The tile of `y` itself.
    Output,
    /// Column j0's value of the start row: `cols` values.
    Columns(*const f32),
    /// Row i0's value of the start column: one value per row.
    Rows(*const f32),
}

/// Whether `K` takes `b`'s panels: whole column tiles per panel.
fn fits_panels<K: Kernel>(b: &PackedB) -> bool {
    b.width.is_multiple_of(K::NR)
}

/// `y = start + a · b` on up to `tasks` rayon tasks with kernel `K`.
///
/// # Safety
/// The CPU has `K`'s instructions. (Shapes are checked: `b`'s panels must be whole column
/// tiles and match `a`; `gemm_packed` checked `y` and the start.)
pub unsafe fn gemm<K: Kernel>(a: MatRef, b: &PackedB, y: MatMut, start: Start, tasks: usize) {
    assert!(
        fits_panels::<K>(b) && b.k == a.cols,
        "gemm: b packed for another kernel"
    );
    let (m, n) = (y.rows, y.cols);
    let parts = split(n.div_ceil(K::NR), m.div_ceil(K::MR), tasks);
    let out = SharedOut::new(y);
    for_each_tile(parts, tiles_per_block(b.k, K::NR), |c, t| {
        // SAFETY: rows t·MR.. and columns c·NR.. of `y` lie in its slice (checked when it was
        // made; `split` only hands out its tiles); no other task writes this tile; the CPU
        // as the caller promises.
        unsafe {
            tile_into::<K>(
                &a,
                b,
                c,
                t,
                start,
                out.at(t * K::MR, c * K::NR),
                out.row_stride,
            );
        }
    });
}

/// The largest tile of any kernel (12 × 32 values), for `gemm_gated`'s buffers.
const MAX_TILE: usize = 12 * 32;

/// `y[i][j] = gate(h[i][j], h[i][half + j])` for `h = start + a · b` with `half` = b's columns
/// / 2, a multiple of b's panel width (GEGLU's projection and gate in one pass): each tile of
/// the two halves is summed into a small buffer in L1 and gated from there, so `h` (SD 1.5's
/// [8192, 2560] at 64×64, 84 MB) is never written out and read back. The sums are `gemm`'s,
/// value for value, and `gate` gets them as a row of the full `h` would give them. `gate(value,
/// gate, out)` takes slices of one length. `y` is [m, half]; a start row has b's n values.
///
/// # Safety
/// The CPU has `K`'s instructions.
pub unsafe fn gemm_gated<K: Kernel>(
    a: MatRef,
    b: &PackedB,
    y: MatMut,
    start: Start,
    gate: Gate,
    tasks: usize,
) {
    const { assert!(K::MR * K::NR <= MAX_TILE) };
    assert!(
        fits_panels::<K>(b)
            && b.k == a.cols
            && b.n.is_multiple_of(2 * b.width)
            && y.cols == b.n / 2,
        "gated gemm: b packed for another kernel or halves not whole panels"
    );
    if y.rows == 0 || y.cols == 0 {
        return;
    }
    let (m, half) = (y.rows, b.n / 2 / K::NR);
    let parts = split(half, m.div_ceil(K::MR), tasks);
    let out = SharedOut::new(y);
    // Blocks of value tiles whose gate tiles come along: the pairs fill `PANEL_BLOCK_BYTES`.
    let block = (tiles_per_block(b.k, K::NR) / 2).max(1);
    for_each_tile(parts, block, |c, t| {
        let mut value = [0f32; MAX_TILE];
        let mut gated = [0f32; MAX_TILE];
        let nr = K::NR;
        // SAFETY: the buffers hold MR rows of NR; rows t·MR.. and columns c·NR.. (a whole
        // column tile: half is whole panels) of `y` lie in its slice, and no other task writes
        // them (`split` hands each pair to one task); the CPU as the caller promises.
        unsafe {
            tile_into::<K>(&a, b, c, t, start, value.as_mut_ptr(), nr);
            tile_into::<K>(&a, b, c + half, t, start, gated.as_mut_ptr(), nr);
            for r in 0..K::MR.min(m - t * K::MR) {
                gate(
                    &value[r * nr..(r + 1) * nr],
                    &gated[r * nr..(r + 1) * nr],
                    std::slice::from_raw_parts_mut(out.at(t * K::MR + r, c * nr), nr),
                );
            }
        }
    });
}

/// The product's tile (row tile `t`, column tile `c`) written at `y`, rows `ldy` apart.
///
/// # Safety
/// `y` has the tile's rows (up to MR) of its columns (up to NR) writable, `ldy` apart, and
/// nothing else accesses them during the call; a row or column start has one value per column
/// of `b` or row of `a`; b's panels are whole column tiles; the CPU has `K`'s instructions.
unsafe fn tile_into<K: Kernel>(
    a: &MatRef,
    b: &PackedB,
    c: usize,
    t: usize,
    start: Start,
    y: *mut f32,
    ldy: usize,
) {
    let j0 = c * K::NR;
    let cols = K::NR.min(b.n - j0);
    let i0 = t * K::MR;
    let rows = K::MR.min(a.rows - i0);
    // SAFETY: rows i0..i0 + rows of `a` (all k columns) lie in its slice (checked when it was
    // made); the panel holding column j0 has k rows of `width` values, and j0's NR columns lie
    // inside it (the width is whole column tiles); the start and `y` as the caller promises.
    // So every offset stays inside its allocation, and the tile meets `Kernel::run`'s terms.
    unsafe {
        let tile = Tile {
            a: a.data.as_ptr().add(i0 * a.row_stride),
            a_strides: (a.row_stride, a.col_stride),
            b: b.panel(j0 / b.width).as_ptr().add(j0 % b.width),
            ldb: b.width,
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
        K::run(rows, &tile);
    }
}

/// `tile(c, t)` for every (column tile, row tile) pair of `parts`, one rayon task per part.
/// Each row tile of `a` meets a block of `block` column tiles in turn while it is in cache: a
/// product with many columns (a Linear's 320 to 10240 outputs) then reads `a` from memory once
/// per block instead of once per column tile. Every tile still runs the whole inner dimension,
/// so the order of the tiles changes no value.
fn for_each_tile(
    parts: Vec<(Range<usize>, Range<usize>)>,
    block: usize,
    tile: impl Fn(usize, usize) + Sync,
) {
    let run = |(columns, rows): (Range<usize>, Range<usize>)| {
        for first in columns.clone().step_by(block) {
            let last = (first + block).min(columns.end);
            for t in rows.clone() {
                for c in first..last {
                    tile(c, t);
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
/// of Zen 4's 1 MiB L2 (Intel's server cores have 2 MiB, Zen 3's 512 KiB), leaving room for
/// the tile of `a`.
const PANEL_BLOCK_BYTES: usize = 512 * 1024;

/// Column tiles of `nr` columns per block: as many as fit in `PANEL_BLOCK_BYTES`, at least one.
fn tiles_per_block(depth: usize, nr: usize) -> usize {
    (PANEL_BLOCK_BYTES / (depth * nr * 4).max(1)).max(1)
}

/// `y`'s storage, shared by tasks that write disjoint tiles of it.
struct SharedOut {
    ptr: *mut f32,
    row_stride: usize,
}

// SAFETY: tasks write disjoint (row tile, column tile) rectangles of `y` (`split` hands each
// pair to exactly one task), and `y` is borrowed mutably for the whole call.
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
        // SAFETY: (i, j) lies in `y` (the caller's promise), so the offset stays in its slice.
        unsafe { self.ptr.add(i * self.row_stride + j) }
    }
}

/// (column tiles, row tiles) rectangles for up to `tasks` tasks: whole column tiles when there
/// are enough of them, else each column tile's row tiles shared out (a tall, narrow product).
fn split(columns: usize, rows: usize, tasks: usize) -> Vec<(Range<usize>, Range<usize>)> {
    let tasks = tasks.max(1);
    if columns >= tasks || rows == 1 {
        return even(columns, tasks)
            .into_iter()
            .map(|c| (c, 0..rows))
            .collect();
    }
    let per_column = tasks.div_ceil(columns);
    (0..columns)
        .flat_map(|c| {
            even(rows, per_column)
                .into_iter()
                .map(move |t| (c..c + 1, t))
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

    #[test]
    fn panel_blocks_fit_their_budget() {
        assert_eq!(tiles_per_block(1000, 32), 4);
        assert_eq!(tiles_per_block(1000, 16), 8);
        assert_eq!(tiles_per_block(2100, 32), 1);
        assert_eq!(tiles_per_block(320, 32), 12);
        assert_eq!(tiles_per_block(1 << 20, 16), 1);
        assert!(tiles_per_block(0, 32) >= 1);
    }

    #[test]
    fn the_work_is_split_into_disjoint_covering_rectangles() {
        for (columns, rows, tasks) in [
            (1, 1, 1),
            (10, 3, 2),
            (2, 27, 8),
            (1, 5, 16),
            (3, 1, 8),
            (7, 7, 3),
        ] {
            let mut seen = vec![0; columns * rows];
            for (cs, ts) in split(columns, rows, tasks) {
                for c in cs {
                    for t in ts.clone() {
                        seen[c * rows + t] += 1;
                    }
                }
            }
            assert!(
                seen.iter().all(|&c| c == 1),
                "{columns} {rows} {tasks}: {seen:?}"
            );
        }
    }
}
