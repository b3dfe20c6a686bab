//! The one checked matrix product of the local CPU kernels (`conv`, `sdpa`, `linear`):
//! matrices are slices with explicit shapes and strides, checked to fit before any unsafe code,
//! so no kernel carries its own pointer arithmetic. The right-hand operand comes in column
//! panels (`PackedB`). On x86-64 CPUs with AVX-512 or AVX2 + FMA the product runs on
//! seedling's own micro-kernels (`arch::x86_64::{avx512, avx2}::matmul`, tiled by `tiles`),
//! which start their sums from a bias, gate GEGLU's projection as they compute it and give the
//! same bits on both instruction sets; elsewhere each panel goes to the gemm crate (candle's
//! CPU matmul).

#[cfg(all(test, target_arch = "x86_64"))]
mod kernel_tests;
#[cfg(target_arch = "x86_64")]
pub(crate) mod tiles;

#[cfg(target_arch = "x86_64")]
use crate::arch::x86_64::{avx2::matmul as avx2, avx512::matmul as avx512};
use crate::isa::Isa;
use gemm::Parallelism;
use rayon::prelude::*;

/// A read-only matrix in a slice: element (i, j) at `data[i·row_stride + j·col_stride]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// Panics if an element would lie outside `data` (a kernel's indexing bug, not user input).
    pub fn new(data: &'a [f32], (rows, cols): (usize, usize), (rs, cs): (usize, usize)) -> Self {
        assert!(
            fits(data.len(), rows, cols, rs, cs),
            "matrix outside its slice"
        );
        Self {
            data,
            rows,
            cols,
            row_stride: rs,
            col_stride: cs,
        }
    }

    /// A row-major [rows, cols] matrix with rows `row_stride` apart.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Self::new(data, (rows, cols), (row_stride, 1))
    }
}

/// A writable row-major matrix: element (i, j) at `data[i·row_stride + j]`.
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
}

impl<'a> MatMut<'a> {
    /// Panics if an element would lie outside `data`.
    pub fn rows(data: &'a mut [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        assert!(
            fits(data.len(), rows, cols, row_stride, 1),
            "matrix outside its slice"
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
        }
    }
}

fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// The right-hand operand of a product, copied into column panels: panel `p` holds columns
/// `p·width ..` as a contiguous [k][width] block (zero-padded past the last column), the layout
/// the micro-kernels stream from. A kernel that builds its operand (conv's im2col) writes the
/// panels directly; one used for many products (attention's keys) is packed once.
pub struct PackedB {
    /// The panels start at `data[offset]`, the first value on a cache line.
    data: Vec<f32>,
    offset: usize,
    k: usize,
    n: usize,
    width: usize,
}

/// One panel being filled: columns `first_col .. first_col + cols` of every row.
pub struct PanelMut<'a> {
    pub first_col: usize,
    pub cols: usize,
    width: usize,
    data: &'a mut [f32],
}

impl<'a> PanelMut<'a> {
    /// The whole panel, [k][width] with the padding columns, for a kernel that writes it as
    /// one matrix (attention's scores).
    pub fn into_padded(self) -> &'a mut [f32] {
        self.data
    }

    /// Row `kk` of the panel (`cols` values).
    pub fn row(&mut self, kk: usize) -> &mut [f32] {
        &mut self.data[kk * self.width..kk * self.width + self.cols]
    }

    /// Row `kk` with the padding columns past `cols` (`width` values), for a kernel that
    /// computes whole panel rows: the padding only feeds outputs that are never stored.
    pub fn padded_row(&mut self, kk: usize) -> &mut [f32] {
        &mut self.data[kk * self.width..(kk + 1) * self.width]
    }
}

impl Default for PackedB {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            offset: 0,
            k: 0,
            n: 0,
            width: panel_width(),
        }
    }
}

impl PackedB {
    /// `b` copied into panels.
    pub fn pack(b: MatRef) -> Self {
        let mut packed = Self::default();
        packed.pack_into(b);
        packed
    }

    /// An empty operand with panels `width` columns wide. Products take any width (the
    /// micro-kernels multiples of their tile's width: other widths go to the gemm crate); a
    /// kernel that fills a single panel per task (Winograd's groups of tiles) asks for that
    /// panel's width.
    pub fn with_width(width: usize) -> Self {
        assert!(width > 0, "panels of no columns");
        Self {
            width,
            ..Self::default()
        }
    }

    /// The only panel of an operand of at most `width` columns, to fill on this thread.
    pub fn only_panel_mut(&mut self) -> PanelMut<'_> {
        assert!(self.n <= self.width, "operand of several panels");
        let (width, len) = (self.width, self.k * self.width);
        PanelMut {
            first_col: 0,
            cols: self.n,
            width,
            data: &mut self.data[self.offset..self.offset + len],
        }
    }

    /// `b` copied into this operand's panels, keeping their width and the allocation.
    pub fn pack_into(&mut self, b: MatRef) {
        self.resize(b.rows, b.cols);
        self.panels_mut().for_each(|mut panel| {
            let (j0, cs) = (panel.first_col, b.col_stride);
            for kk in 0..b.rows {
                let base = kk * b.row_stride + j0 * cs;
                let row = panel.row(kk);
                if cs == 1 {
                    row.copy_from_slice(&b.data[base..base + row.len()]);
                } else {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = b.data[base + j * cs];
                    }
                }
            }
        });
    }

    /// Makes room for a [k, n] operand, keeping the allocation; the values are stale until
    /// every panel's rows are written (the padding columns only feed outputs never stored).
    pub fn resize(&mut self, k: usize, n: usize) {
        let len = n.div_ceil(self.width) * self.width * k;
        if self.data.len() < len + LINE - 1 {
            self.data.resize(len + LINE - 1, 0.0);
        }
        // Panels on whole cache lines: a panel row of 16 or 32 values is then one or two whole
        // lines, and a 16-column tile of a 32-wide panel (the AVX2 kernel on Winograd's and
        // attention's panels) reads one line per row, not parts of two. (An `align_offset`
        // that cannot say leaves the panels where they fall: only the speed depends on it.)
        let offset = self.data.as_ptr().align_offset(LINE * 4);
        self.offset = if offset < LINE { offset } else { 0 };
        (self.k, self.n) = (k, n);
    }

    /// The panels, to fill in parallel.
    pub fn panels_mut(&mut self) -> impl IndexedParallelIterator<Item = PanelMut<'_>> {
        let (n, width, chunk) = (self.n, self.width, self.k * self.width);
        let len = n.div_ceil(width) * chunk;
        self.data[self.offset..self.offset + len]
            .par_chunks_mut(chunk.max(1))
            .enumerate()
            .map(move |(p, data)| PanelMut {
                first_col: p * width,
                cols: width.min(n - p * width),
                width,
                data,
            })
    }

    /// Panel `p` as [k][width].
    fn panel(&self, p: usize) -> &[f32] {
        let (chunk, first) = (self.k * self.width, self.offset);
        &self.data[first + p * chunk..first + (p + 1) * chunk]
    }

    fn panels(&self) -> usize {
        self.n.div_ceil(self.width)
    }
}

/// f32 values per 64-byte cache line.
const LINE: usize = 16;

/// Columns per panel: the best micro-kernel's tile width (32 with AVX-512, 16 with AVX2); for
/// the gemm crate, wide panels (one call each) so its own blocking works on large blocks.
fn panel_width() -> usize {
    Native::ALL
        .into_iter()
        .find(|kernel| kernel.available())
        .map_or(512, Native::width)
}

/// A micro-kernel of this crate (x86-64 only: elsewhere none is ever available).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Native {
    Avx512,
    Avx2,
}

impl Native {
    /// Best first: the one order both `panel_width` and `native` choose in.
    const ALL: [Native; 2] = [Native::Avx512, Native::Avx2];

    /// Whether this CPU has the kernel's instructions (`Isa::get`).
    fn available(self) -> bool {
        let needs = match self {
            Native::Avx512 => Isa::Avx512,
            Native::Avx2 => Isa::Avx2,
        };
        Isa::get() >= needs
    }

    /// Columns of its micro-tile.
    fn width(self) -> usize {
        #[cfg(target_arch = "x86_64")]
        return match self {
            Native::Avx512 => avx512::NR,
            Native::Avx2 => avx2::NR,
        };
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("no micro-kernel is available off x86-64")
    }
}

/// The micro-kernel that multiplies panels `width` wide on this CPU: the best one it has whose
/// tiles the panels are made of whole (AVX-512's 32 columns, else AVX2's 16); `None` for the
/// gemm crate.
fn native(width: usize) -> Option<Native> {
    Native::ALL
        .into_iter()
        .find(|kernel| kernel.available() && width.is_multiple_of(kernel.width()))
}

/// What each element of a product's output starts from; the products over the inner dimension
/// are then added to it in order, one fused multiply-add each.
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    /// Zero: `y = a · b`.
    Zero,
    /// What `y` holds: `y += a · b`.
    Output,
    /// `row[j]` in every row's column j (a Linear's bias): `y = row + a · b`. The kernel
    /// starts its sums from the row itself rather than from an output filled with copies of
    /// it, so `y` is written once and never read.
    Columns(&'a [f32]),
    /// `column[i]` all along row i (a convolution's per-channel offset, [c_out, pixels]).
    Rows(&'a [f32]),
}

/// `y = start + a · b`, `b` in panels. `parallel`: split the work over candle's thread count;
/// kernels that already run one task per thread pass false.
pub fn gemm_packed(a: MatRef, b: &PackedB, mut y: MatMut, start: Start, parallel: bool) {
    check_shapes(&a, (b.k, b.n), &y);
    check_start(start, &y);
    if y.rows == 0 || y.cols == 0 {
        return;
    }
    if a.cols == 0 {
        // An empty inner dimension: the sum is empty, so `y` is its start.
        fill_start(&mut y, start);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let tasks = task_count(parallel);
        match native(b.width) {
            Some(Native::Avx512) => {
                // SAFETY: `native` chose the kernel because the CPU has its instructions.
                return unsafe { tiles::gemm::<avx512::Avx512>(a, b, y, start, tasks) };
            }
            Some(Native::Avx2) => {
                // SAFETY: as above.
                return unsafe { tiles::gemm::<avx2::Avx2>(a, b, y, start, tasks) };
            }
            None => {}
        }
    }
    // The gemm crate starts from zero or from `y`: a row or column start is written first.
    let accumulate = !matches!(start, Start::Zero);
    fill_start(&mut y, start);
    for p in 0..b.panels() {
        let j0 = p * b.width;
        let cols = b.width.min(b.n - j0);
        crate_gemm(
            a,
            MatRef::rows(b.panel(p), b.k, cols, b.width),
            MatMut::rows(&mut y.data[j0..], y.rows, cols, y.row_stride),
            accumulate,
            parallel,
        );
    }
}

/// A gate for `gemm_gated`: `out[j]` from `value[j]` and `gate[j]`, slices of one length.
pub type Gate = fn(&[f32], &[f32], &mut [f32]);

/// Whether `gemm_gated` runs a product of `n` columns packed in this CPU's panels here: on a
/// micro-kernel, with halves of whole panels.
pub fn gated_available(n: usize) -> bool {
    let width = panel_width();
    native(width).is_some() && n.is_multiple_of(2 * width)
}

/// `y[i][j] = gate(h[i][j], h[i][n/2 + j])` for `h = start + a · b` ([m, n]; `y` [m, n/2]),
/// without writing `h` out: GEGLU's projection and gate (see `tiles::gemm_gated`). Only where
/// `gated_available(n)` and `b` has this CPU's panels; elsewhere the caller computes `h` and
/// gates it.
pub fn gemm_gated(a: MatRef, b: &PackedB, y: MatMut, start: Start, gate: Gate, parallel: bool) {
    assert!(
        gated_available(b.n) && b.width == panel_width(),
        "gated gemm where it is not available"
    );
    check_shapes(&a, (b.k, b.n / 2), &y);
    if let Start::Columns(row) = start {
        assert_eq!(row.len(), b.n, "gemm: start row of {} values", row.len());
    }
    #[cfg(target_arch = "x86_64")]
    {
        let tasks = task_count(parallel);
        match native(b.width) {
            // SAFETY: `native` chose the kernel because the CPU has its instructions.
            Some(Native::Avx512) => unsafe {
                tiles::gemm_gated::<avx512::Avx512>(a, b, y, start, gate, tasks)
            },
            // SAFETY: as above.
            Some(Native::Avx2) => unsafe {
                tiles::gemm_gated::<avx2::Avx2>(a, b, y, start, gate, tasks)
            },
            None => unreachable!("gated_available saw a kernel"),
        }
    }
    // Off x86-64 no kernel exists and the assert above has already stopped the call.
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (a, y, start, gate, parallel);
}

/// Tasks a product is split into: candle's thread count when `parallel`, else one. Only the
/// x86-64 kernels split their work into tasks (`crate_gemm` hands the gemm crate its threads).
#[cfg(target_arch = "x86_64")]
fn task_count(parallel: bool) -> usize {
    if parallel {
        candle_core::utils::get_num_threads()
    } else {
        1
    }
}

fn check_shapes(a: &MatRef, (b_rows, b_cols): (usize, usize), y: &MatMut) {
    assert!(
        a.cols == b_rows && a.rows == y.rows && b_cols == y.cols,
        "gemm: [{}, {}] · [{}, {}] into [{}, {}]",
        a.rows,
        a.cols,
        b_rows,
        b_cols,
        y.rows,
        y.cols
    );
}

/// Panics if a row or column start does not have one value per row or column of `y`.
fn check_start(start: Start, y: &MatMut) {
    match start {
        Start::Columns(row) => {
            assert_eq!(row.len(), y.cols, "gemm: start row of {} values", row.len())
        }
        Start::Rows(column) => {
            assert_eq!(
                column.len(),
                y.rows,
                "gemm: start column of {} values",
                column.len()
            )
        }
        Start::Zero | Start::Output => {}
    }
}

/// `y` set to its start (left as it is for `Output`).
fn fill_start(y: &mut MatMut, start: Start) {
    for i in 0..y.rows {
        let row = &mut y.data[i * y.row_stride..i * y.row_stride + y.cols];
        match start {
            Start::Zero => row.fill(0.0),
            Start::Output => return,
            Start::Columns(values) => row.copy_from_slice(values),
            Start::Rows(values) => row.fill(values[i]),
        }
    }
}

/// The gemm crate's product (CPUs without AVX2, or panels no micro-kernel takes).
fn crate_gemm(a: MatRef, b: MatRef, y: MatMut, accumulate: bool, parallel: bool) {
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if parallel && threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: `MatRef::new` and `MatMut::rows` checked that every element of the three
    // matrices lies inside its slice, and the shapes agree; `y` is borrowed mutably, so it
    // aliases neither input.
    unsafe {
        gemm::gemm(
            y.rows,
            y.cols,
            a.cols,
            y.data.as_mut_ptr(),
            1,
            y.row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa;

    /// [2, 3] · [3, 2] by hand, b read transposed from a [2, 3] slice, y with a row gap,
    /// then accumulated onto.
    #[test]
    fn strided_product_and_accumulation() {
        isa::each(|_| {
            let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
            // bᵀ stored row-major: b = [[1, 0], [0, 1], [1, 1]].
            let bt = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
            let mut y = [0.0; 5];
            let b = PackedB::pack(MatRef::new(&bt, (3, 2), (1, 3)));
            gemm_packed(
                MatRef::rows(&a, 2, 3, 3),
                &b,
                MatMut::rows(&mut y, 2, 2, 3),
                Start::Zero,
                false,
            );
            assert_eq!(y, [4.0, 5.0, 0.0, 10.0, 11.0]);
            gemm_packed(
                MatRef::rows(&a, 2, 3, 3),
                &b,
                MatMut::rows(&mut y, 2, 2, 3),
                Start::Output,
                true,
            );
            assert_eq!(y, [8.0, 10.0, 0.0, 20.0, 22.0]);
        });
    }

    /// Panels no micro-kernel takes go to the gemm crate one panel at a time (the layout CPUs
    /// without AVX2 get): same products as the micro-kernel's panels, including a partial last
    /// panel and accumulation.
    #[test]
    fn narrow_panels_give_the_same_product() {
        isa::each(|_| {
            let (m, k, n) = (7, 13, 11);
            let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.5 - 1.0).collect();
            let product = |width: usize| {
                let mut packed = PackedB::with_width(width);
                packed.pack_into(MatRef::rows(&b, k, n, n));
                let mut y = vec![1.0; m * n];
                gemm_packed(
                    MatRef::rows(&a, m, k, k),
                    &packed,
                    MatMut::rows(&mut y, m, n, n),
                    Start::Output,
                    false,
                );
                y
            };
            let mut want = vec![1.0; m * n];
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] += (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum::<f32>();
                }
            }
            // Small integers and halves: every path sums them exactly.
            assert_eq!(product(4), want);
            assert_eq!(product(panel_width()), want);
        });
    }

    /// Every start on both paths (the gemm crate's narrow panels and this CPU's kernel's),
    /// against a hand-summed product; and an empty inner dimension leaves `y` its start.
    #[test]
    fn each_start_gives_its_sum() {
        isa::each(|_| {
            let (m, k, n) = (5, 6, 9);
            let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 - 2.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 3) as f32 * 0.5).collect();
            let row: Vec<f32> = (0..n).map(|j| j as f32).collect();
            let column: Vec<f32> = (0..m).map(|i| -(i as f32)).collect();
            let start_value = |start: Start, i: usize, j: usize| match start {
                Start::Zero => 0.0,
                Start::Output => 3.0,
                Start::Columns(row) => row[j],
                Start::Rows(column) => column[i],
            };
            for start in [
                Start::Zero,
                Start::Output,
                Start::Columns(&row),
                Start::Rows(&column),
            ] {
                for width in [4, panel_width()] {
                    for depth in [k, 0] {
                        let mut packed = PackedB::with_width(width);
                        packed.pack_into(MatRef::rows(&b, depth, n, n));
                        let mut y = vec![3.0; m * n];
                        gemm_packed(
                            MatRef::rows(&a, m, depth, k),
                            &packed,
                            MatMut::rows(&mut y, m, n, n),
                            start,
                            true,
                        );
                        for i in 0..m {
                            for j in 0..n {
                                let sum: f32 =
                                    (0..depth).map(|l| a[i * k + l] * b[l * n + j]).sum();
                                let want = start_value(start, i, j) + sum;
                                assert_eq!(
                                    y[i * n + j],
                                    want,
                                    "{start:?} width {width} depth {depth}"
                                );
                            }
                        }
                    }
                }
            }
        });
    }

    /// Panels start on a cache line, also after the operand grows into a new allocation, so
    /// a 16-column tile of a 32-wide panel reads one line per row.
    #[test]
    fn panels_start_on_a_cache_line() {
        let mut packed = PackedB::with_width(32);
        for (k, n) in [(3, 5), (100, 70), (1000, 64)] {
            packed.resize(k, n);
            for p in 0..packed.panels() {
                assert_eq!(
                    packed.panel(p).as_ptr() as usize % 64,
                    0,
                    "{k}x{n} panel {p}"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "matrix outside its slice")]
    fn a_matrix_larger_than_its_slice_is_refused() {
        MatRef::rows(&[0.0; 5], 2, 3, 3);
    }
}
