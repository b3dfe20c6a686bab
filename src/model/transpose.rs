//! [b, m, n] → [b, n, m]: the UNet transformer's change between an image's channels-first
//! layout and its tokens (diffusers `Transformer2DModel`'s `permute(0, 2, 3, 1)` and back), and
//! attention's values turned into rows along the keys (`sdpa`).
//!
//! Why local: candle 0.11 makes a transposed tensor contiguous with one thread walking the
//! strided source an index at a time; in SD 1.5's top blocks that is [2, 320, 4096] twice per
//! transformer, ~2.5 % of a UNet step on 2 cores while the other core waited. Here each
//! image's output rows are cut into blocks of 32, one task each, filled from 32 consecutive
//! values of each input row (the block's writes stay in cache). Values are moved, never
//! computed, so the result is candle's bit for bit.

use super::cpu_data::{contiguous_f32, zeros_par};
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Output rows per task.
const BLOCK_ROWS: usize = 32;

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
pub fn swapped(x: &[f32], m: usize, n: usize) -> Vec<f32> {
    let mut out = zeros_par(x.len());
    if !out.is_empty() {
        out.par_chunks_mut(n * m)
            .zip(x.par_chunks(m * n))
            .flat_map(|(out, x)| {
                out.par_chunks_mut(BLOCK_ROWS * m)
                    .enumerate()
                    .map(move |(block, out)| (x, block * BLOCK_ROWS, out))
            })
            .for_each(|(x, r0, out)| fill_rows(x, (m, n), r0, out));
    }
    out
}

/// Rows `r0 ..` of one image's [n, m] output (as many as `out` holds) from its [m, n] input:
/// input row c gives column c of those rows.
fn fill_rows(x: &[f32], (m, n): (usize, usize), r0: usize, out: &mut [f32]) {
    let rows = out.len() / m;
    for c in 0..m {
        for (r, &value) in x[c * n + r0..c * n + r0 + rows].iter().enumerate() {
            out[r * m + c] = value;
        }
    }
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
