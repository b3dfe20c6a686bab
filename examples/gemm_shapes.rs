//! seedling's CPU matrix product next to the gemm crate's (candle's CPU matmul) on the shapes
//! of SD 1.5's UNet at 512×512, batch 2: best of 5 runs each, in one process, interleaved.
//!
//!     cargo run --release --example gemm_shapes
//!
//! Threads: `RAYON_NUM_THREADS` (default every core), for both.

use seedling_kernels::matmul::{gemm_packed, MatMut, MatRef, PackedB, Start};
use std::time::Instant;

/// [m, k] · [k, n]: transformer Linears at 64×64, 32×32 and 8×8 tokens (projections, GEGLU's
/// projection, the feed-forward's output) and an im2col convolution (320 → 320, 3×3, 64×64).
const SHAPES: [(usize, usize, usize); 8] = [
    (8192, 320, 320),
    (8192, 320, 2560),
    (8192, 1280, 320),
    (2048, 640, 640),
    (2048, 640, 5120),
    (512, 1280, 1280),
    (512, 5120, 1280),
    (320, 2880, 4096),
];

/// Values in [-1, 1) that vary along rows and columns (the timing does not depend on them).
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// Seconds `f` takes.
fn seconds_of(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn main() {
    let threads = candle_core::utils::get_num_threads();
    println!("{threads} threads; GFLOP/s of the fastest of 5 runs");
    for (m, k, n) in SHAPES {
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let packed = PackedB::pack(MatRef::rows(&b, k, n, n));
        let (mut ours, mut theirs) = (vec![0f32; m * n], vec![0f32; m * n]);
        let mut seconds = [f64::MAX; 2];
        for _ in 0..5 {
            seconds[0] = seconds[0].min(seconds_of(|| {
                let y = MatMut::rows(&mut ours, m, n, n);
                gemm_packed(MatRef::rows(&a, m, k, k), &packed, y, Start::Zero, true)
            }));
            seconds[1] = seconds[1].min(seconds_of(|| {
                // Safety: a [m, k], b [k, n] and y [m, n] are row-major in slices of their
                // sizes, and y aliases neither.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        theirs.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        b.as_ptr(),
                        1,
                        n as isize,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(threads),
                    )
                }
            }));
        }
        let flop = 2.0 * (m * k * n) as f64;
        let gflops = |s: f64| flop / s / 1e9;
        let diff = ours
            .iter()
            .zip(&theirs)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        println!(
            "[{m}, {k}] · [{k}, {n}]: seedling {:.2} ms ({:.0} GFLOP/s), gemm crate {:.2} ms \
             ({:.0} GFLOP/s), largest difference {diff:.1e}",
            seconds[0] * 1e3,
            gflops(seconds[0]),
            seconds[1] * 1e3,
            gflops(seconds[1]),
        );
    }
}
