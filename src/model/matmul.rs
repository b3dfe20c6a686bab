//! The one checked way the local CPU kernels (`conv`, `sdpa`) call the gemm crate (the matrix
//! multiply candle's CPU backend uses): matrices are slices with explicit shapes and strides,
//! checked to fit before the unsafe call, so no kernel carries its own pointer arithmetic.

use gemm::Parallelism;

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

/// `y (+)= a · b`; `accumulate` keeps what `y` holds (a bias) and adds the products to it.
/// `parallel`: split the work over candle's thread count; kernels that already run one task
/// per thread pass false.
pub fn gemm(a: MatRef, b: MatRef, y: MatMut, accumulate: bool, parallel: bool) {
    assert!(
        a.cols == b.rows && a.rows == y.rows && b.cols == y.cols,
        "gemm: [{}, {}] · [{}, {}] into [{}, {}]",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        y.rows,
        y.cols
    );
    if y.rows == 0 || y.cols == 0 {
        return;
    }
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if parallel && threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // Safety: `MatRef::new` and `MatMut::rows` checked that every element of the three
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

    /// [2, 3] · [3, 2] by hand, b read transposed from a [2, 3] slice, y with a row gap,
    /// then accumulated onto.
    #[test]
    fn strided_product_and_accumulation() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        // bᵀ stored row-major: b = [[1, 0], [0, 1], [1, 1]].
        let bt = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let mut y = [0.0; 5];
        let b = MatRef::new(&bt, (3, 2), (1, 3));
        gemm(
            MatRef::rows(&a, 2, 3, 3),
            b,
            MatMut::rows(&mut y, 2, 2, 3),
            false,
            false,
        );
        assert_eq!(y, [4.0, 5.0, 0.0, 10.0, 11.0]);
        gemm(
            MatRef::rows(&a, 2, 3, 3),
            b,
            MatMut::rows(&mut y, 2, 2, 3),
            true,
            true,
        );
        assert_eq!(y, [8.0, 10.0, 0.0, 20.0, 22.0]);
    }

    #[test]
    #[should_panic(expected = "matrix outside its slice")]
    fn a_matrix_larger_than_its_slice_is_refused() {
        MatRef::rows(&[0.0; 5], 2, 3, 3);
    }
}
