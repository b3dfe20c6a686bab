//! Tests of the micro-kernels through `tiles`: each kernel the CPU has (on most AVX-512 CPUs
//! both), on panels of its own width and of twice it (16-column tiles of 32-wide panels are
//! what the AVX2 kernel gets from Winograd and attention).

use super::tiles::{self, Kernel};
use super::{MatMut, MatRef, PackedB, Start};
use crate::arch::x86_64::avx2::matmul::{self as avx2, Avx2};
use crate::arch::x86_64::avx512::matmul::{self as avx512, Avx512};
use crate::isa::Isa;

/// Runs the AVX-512 and the AVX2 case where the CPU has them (both on AVX-512 CPUs).
fn each_kernel(avx512_case: fn(), avx2_case: fn()) {
    let mut ran = false;
    if Isa::detected() >= Isa::Avx512 {
        avx512_case();
        ran = true;
    }
    if Isa::detected() >= Isa::Avx2 {
        avx2_case();
        ran = true;
    }
    if !ran {
        eprintln!("skipped: this CPU has neither AVX-512 nor AVX2 + FMA");
    }
}

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

/// `b` [k, n] (element (i, j) at b[i·rs + j·cs]) in panels `width` wide.
fn packed(b: &[f32], (k, n): (usize, usize), strides: (usize, usize), width: usize) -> PackedB {
    let mut packed = PackedB::with_width(width);
    packed.pack_into(MatRef::new(b, (k, n), strides));
    packed
}

/// `y` [m, n] = start + `a` [m, k] · `b` with kernel `K` on `tasks` tasks.
fn product<K: Kernel>(a: &[f32], m: usize, b: &PackedB, y: &mut [f32], start: Start, tasks: usize) {
    let (k, n) = (b.k, b.n);
    // SAFETY: only called through `each_kernel`, which saw the CPU's instructions.
    unsafe {
        tiles::gemm::<K>(
            MatRef::rows(a, m, k, k),
            b,
            MatMut::rows(y, m, n, n),
            start,
            tasks,
        )
    }
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

/// Against an f64 product on sizes that leave partial row tiles, partial column tiles
/// (including tiles of one vector or less), long sums, several blocks of column tiles (k =
/// 1000), b transposed, accumulation onto a bias, panels one and two tiles wide, and split
/// into tasks every way `split` can.
#[test]
fn matches_a_reference_product() {
    fn case<K: Kernel>() {
        for (m, n, k) in [
            (1, 1, 1),
            (5, 7, 3),
            (13, 33, 257),
            (25, 70, 600),
            (12, 16, 40),
            (40, 5, 513),
            (14, 200, 1000),
        ] {
            for (transposed, width) in [(false, K::NR), (true, K::NR), (false, 2 * K::NR)] {
                for tasks in [1, 2, 3, 7] {
                    let a = values(m * k, 1);
                    let b = values(k * n, 2);
                    let strides = if transposed { (1, k) } else { (n, 1) };
                    let bias = values(m * n, 3);
                    let mut y = bias.clone();
                    let b_packed = packed(&b, (k, n), strides, width);
                    product::<K>(&a, m, &b_packed, &mut y, Start::Output, tasks);
                    let want = reference(&a, &b, (m, n, k), strides);
                    for ((got, want), bias) in y.iter().zip(&want).zip(&bias) {
                        let want = want + *bias as f64;
                        assert!(
                            (*got as f64 - want).abs() <= 1e-5 * (k as f64).sqrt().max(1.0),
                            "{m}x{n}x{k} transposed {transposed} width {width} tasks {tasks}: \
                             {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
    each_kernel(case::<Avx512>, case::<Avx2>);
}

/// A row or column start gives what an output filled with it and summed onto gives, bit for
/// bit (the Linear's bias and the convolution's offsets moved into the kernel changed no
/// value), on partial tiles, split into tasks.
#[test]
fn row_and_column_starts_equal_a_filled_output() {
    fn case<K: Kernel>() {
        for (m, n, k, tasks) in [
            (1, 1, 1, 1),
            (13, 33, 257, 2),
            (25, 70, 600, 3),
            (40, 5, 9, 7),
        ] {
            let a = values(m * k, 6);
            let b = packed(&values(k * n, 7), (k, n), (n, 1), K::NR);
            let row = values(n, 8);
            let column = values(m, 9);
            let mut filled: Vec<f32> = (0..m).flat_map(|_| row.iter().copied()).collect();
            product::<K>(&a, m, &b, &mut filled, Start::Output, tasks);
            let mut started = vec![f32::NAN; m * n];
            product::<K>(&a, m, &b, &mut started, Start::Columns(&row), tasks);
            assert_eq!(started, filled, "{m}x{n}x{k} columns");
            let mut filled: Vec<f32> = column.iter().flat_map(|&v| vec![v; n]).collect();
            product::<K>(&a, m, &b, &mut filled, Start::Output, tasks);
            let mut started = vec![f32::NAN; m * n];
            product::<K>(&a, m, &b, &mut started, Start::Rows(&column), tasks);
            assert_eq!(started, filled, "{m}x{n}x{k} rows");
        }
    }
    each_kernel(case::<Avx512>, case::<Avx2>);
}

/// The gated product gives the full product's halves gated row by row, bit for bit: on partial
/// row tiles, several tile pairs in several blocks (k = 1500: blocks of one pair), a bias
/// start, split into tasks every way.
#[test]
fn the_gated_product_gates_the_full_products_halves() {
    fn gate(value: &[f32], gate: &[f32], out: &mut [f32]) {
        for ((o, v), g) in out.iter_mut().zip(value).zip(gate) {
            *o = v * g.max(0.0) - 0.25 * g;
        }
    }
    fn case<K: Kernel>() {
        for (m, n, k) in [(1, 64, 1), (13, 128, 257), (25, 192, 1500), (40, 64, 9)] {
            let a = values(m * k, 10);
            let b = packed(&values(k * n, 11), (k, n), (n, 1), K::NR);
            let bias = values(n, 12);
            let mut full = vec![0.0; m * n];
            product::<K>(&a, m, &b, &mut full, Start::Columns(&bias), 1);
            let half = n / 2;
            let mut want = vec![0.0; m * half];
            for (row, out) in full.chunks_exact(n).zip(want.chunks_exact_mut(half)) {
                gate(&row[..half], &row[half..], out);
            }
            for tasks in [1, 2, 3, 7] {
                let mut got = vec![f32::NAN; m * half];
                // SAFETY: only called through `each_kernel`.
                unsafe {
                    tiles::gemm_gated::<K>(
                        MatRef::rows(&a, m, k, k),
                        &b,
                        MatMut::rows(&mut got, m, half, half),
                        Start::Columns(&bias),
                        gate,
                        tasks,
                    )
                };
                assert_eq!(got, want, "{m}x{n}x{k} tasks {tasks}");
            }
        }
    }
    each_kernel(case::<Avx512>, case::<Avx2>);
}

/// A row's values do not depend on the other rows, the columns around it, the panel width or
/// the tasks: rows 12..24 and columns 32..64 of a product equal the same rows and columns
/// computed on their own, bit for bit (what makes an image the same alone or in a batch).
#[test]
fn a_sub_product_is_bit_identical() {
    fn case<K: Kernel>() {
        let (m, n, k) = (37, 90, 700);
        let a = values(m * k, 4);
        let b = values(k * n, 5);
        let mut full = vec![0.0; m * n];
        product::<K>(
            &a,
            m,
            &packed(&b, (k, n), (n, 1), K::NR),
            &mut full,
            Start::Zero,
            3,
        );
        for width in [K::NR, 2 * K::NR] {
            let mut part = vec![0.0; 12 * 32];
            let b_part = packed(&b[32..], (k, 32), (n, 1), width);
            product::<K>(&a[12 * k..], 12, &b_part, &mut part, Start::Zero, 1);
            for i in 0..12 {
                assert_eq!(
                    part[i * 32..(i + 1) * 32],
                    full[(12 + i) * n + 32..(12 + i) * n + 64],
                    "width {width}"
                );
            }
        }
    }
    each_kernel(case::<Avx512>, case::<Avx2>);
}

/// The AVX2 and the AVX-512 kernel give the same bits (each value the same start and the same
/// fused multiply-adds in the same order), so an image does not depend on which of the two a
/// CPU has. Runs only on CPUs with both (AVX-512 CPUs have AVX2).
#[test]
fn the_kernels_give_the_same_bits() {
    if Isa::detected() < Isa::Avx512 {
        eprintln!("skipped: this CPU does not have both AVX-512 and AVX2 + FMA");
        return;
    }
    for (m, n, k) in [(13, 33, 257), (25, 70, 600), (40, 200, 1000)] {
        let a = values(m * k, 13);
        let b = values(k * n, 14);
        let bias = values(n, 15);
        let mut y512 = vec![0.0; m * n];
        let b512 = packed(&b, (k, n), (n, 1), avx512::NR);
        product::<Avx512>(&a, m, &b512, &mut y512, Start::Columns(&bias), 2);
        for width in [avx2::NR, avx512::NR] {
            let mut y2 = vec![0.0; m * n];
            let b2 = packed(&b, (k, n), (n, 1), width);
            product::<Avx2>(&a, m, &b2, &mut y2, Start::Columns(&bias), 2);
            assert_eq!(y2, y512, "{m}x{n}x{k} width {width}");
        }
    }
}
