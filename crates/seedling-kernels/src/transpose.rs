//! [b, m, n] → [b, n, m]: the UNet transformer's change between an image's channels-first
//! layout and its tokens (diffusers `Transformer2DModel`'s `permute(0, 2, 3, 1)` and back), and
//! attention's values turned into rows along the keys (`sdpa`).
//!
//! Why local: candle 0.11 makes a transposed tensor contiguous with one thread walking the
//! strided source an index at a time; in SD 1.5's top blocks that is [2, 320, 4096] twice per
//! transformer, ~2.5 % of a UNet step on 2 cores while the other core waited. Here each
//! image's input rows are cut into blocks of 32, one task each, moved a few values at a time
//! into the output rows (`swapped`). Values are moved, never computed, so the result is
//! candle's bit for bit.

use super::cpu_data::{contiguous_f32, zeros_par, SharedMut};
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Input rows per task: each task streams this many input rows front to back.
const BLOCK_ROWS: usize = 32;
/// Values of an input row moved at a time, into as many output rows. Eight, not a cache line's
/// sixteen: output rows 4096 values apart (a [4096, 320] image's tokens turned back into
/// channels) are 16 KiB apart and share one L1 set, and 8 rows × 2 lines of a block's 32
/// columns stay within a set's 8 (Zen 4) or 12 (Intel) ways while the block's rows are written.
/// With 16 (blocks of 32 or 16 rows): [2, 4096, 320] 4.6–5.1 ms; with 8: 1.3 ms (2 Intel
/// cores, best of 20).
const RUN: usize = 8;

/// `x` [b, m, n] → [b, n, m], contiguous.
pub fn swap_last_two(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && x.rank() == 3 {
        return x.contiguous()?.apply_op1_no_bwd(&SwapLastTwo);
    }
    x.transpose(1, 2)?.contiguous()
}

struct SwapLastTwo;

impl CustomOp1 for SwapLastTwo {
    fn name(&self) -> &'static str {
        "seedling-swap-last-two"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        let (b, m, n) = layout.shape().dims3()?;
        Ok((CpuStorage::F32(swapped(x, m, n)), Shape::from((b, n, m))))
    }
}

/// The images of `x`, each [m, n] row-major, transposed: each [n, m], in parallel.
///
/// Each task takes a block of input rows and moves them `RUN` values at a time, the rows side
/// by side: a few sequential streams the hardware prefetchers follow. (Tasks of whole output
/// rows, as before, read every input row a few values at a time, hundreds of strided streams,
/// and wrote 32 output rows per input value: [2, 4096, 320] took 3.9–4.3 ms, [2, 1024, 640]
/// 2.0–2.2 ms, now 1.3 and 0.7 ms; the other direction, [2, 320, 4096], 1.3–1.4 ms either way.)
pub fn swapped(x: &[f32], m: usize, n: usize) -> Vec<f32> {
    let mut out = zeros_par(x.len());
    if out.is_empty() {
        return out;
    }
    let shared = SharedMut::new(&mut out);
    let blocks = m.div_ceil(BLOCK_ROWS);
    (0..x.len() / (m * n) * blocks)
        .into_par_iter()
        .for_each(|task| {
            let (image, block) = (task / blocks, task % blocks);
            let c0 = block * BLOCK_ROWS;
            let rows = c0..(c0 + BLOCK_ROWS).min(m);
            let x = &x[image * m * n..(image + 1) * m * n];
            for r0 in (0..n).step_by(RUN) {
                let run = RUN.min(n - r0);
                // Output rows r0 .. r0 + run of this image, this block's columns.
                let mut dst: [&mut [f32]; RUN] = std::array::from_fn(|i| {
                    if i >= run {
                        return &mut [][..];
                    }
                    // SAFETY: columns `rows` of one output row: this task's block of columns,
                    // which no other task writes, and a row no other slice here covers;
                    // nothing reads `out` meanwhile.
                    unsafe { shared.slice((image * n + r0 + i) * m + c0, rows.len()) }
                });
                for (j, c) in rows.clone().enumerate() {
                    let src = &x[c * n + r0..c * n + r0 + run];
                    for (row, &v) in dst.iter_mut().zip(src) {
                        row[j] = v;
                    }
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// candle's transpose, bit for bit, on sizes with partial tiles and on one-wide edges.
    #[test]
    fn is_candles_transpose() {
        for (b, m, n) in [
            (2, 320, 100),
            (1, 33, 65),
            (3, 1, 7),
            (2, 7, 1),
            (1, 64, 64),
        ] {
            let x = Tensor::randn(0f32, 1.0, (b, m, n), &Device::Cpu).unwrap();
            let got = swap_last_two(&x).unwrap();
            let want = x.transpose(1, 2).unwrap().contiguous().unwrap();
            assert_eq!(got.dims(), &[b, n, m]);
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(flat(&got), flat(&want), "{b}x{m}x{n}");
        }
    }

    #[test]
    fn a_strided_input_is_made_contiguous_first() {
        let x = Tensor::randn(0f32, 1.0, (2, 9, 5), &Device::Cpu).unwrap();
        let t = x.transpose(1, 2).unwrap();
        let back = swap_last_two(&t).unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&back), flat(&x));
    }
}
