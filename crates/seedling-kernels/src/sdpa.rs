//! Scaled dot-product attention, softmax(q kᵀ · scale) v (Vaswani et al. 2017, eq. 1), for the
//! UNet's transformer blocks and the VAE's mid-block attention.
//!
//! Why local: with candle's ops, one SD 1.5 self-attention at 512×512 materialises the scores,
//! the scaled scores and the softmax as three fresh [8 heads, 4096, 4096] f32 tensors (512 MiB
//! each per image), each written and read again in full, and the softmax calls the scalar
//! `expf` 134 M times per image and layer. On the CPU (contiguous f32) this module computes
//! the same attention a block of queries at a time, the way FlashAttention (Dao et al. 2022) and
//! PyTorch's CPU `scaled_dot_product_attention` do: per (head, block of `BLOCK` queries) one gemm
//! makes the block's scores in a buffer that stays in cache, the softmax runs in place with a
//! vectorised exp, a second gemm multiplies by v, and each output row is divided by its sum
//! (all transposed, a query a column: see `Head::block`).
//! The values are those of the plain formula up to rounding (the scale is applied inside the exp,
//! after subtracting the row maximum of the unscaled scores — the same softmax, since scale > 0).
//! Every block depends only on its own queries, so an image is the same in any batch.
//!
//! The inputs are the projections as they come, [batch, tokens, heads·d]: the kernel reads each
//! head's query columns in place and writes its output columns, so q and the output are never
//! copied into [batch·heads, tokens, d] and back (with candle's ops those were four
//! single-threaded strided copies per attention, ~2 % of a UNet step on 2 cores). k and v are
//! rearranged once per call, in parallel (k to [batch, heads, tokens, d], v to
//! [batch, heads·d, tokens]), because every block of queries reads its head's keys and values
//! in full: read in place, each key's 40 values of SD 1.5's top blocks sit in a 1280-byte row,
//! so a pass over one head fetched three cache lines per key for 160 bytes used, and vᵀ one
//! line per key per multiply-add row. On 2 Intel cores with 2 MiB L2s the 64×64 self-attention
//! (8 heads, 2 images) went 302–322 → 222–228 ms with both rearranged (PyTorch's
//! `scaled_dot_product_attention`: 219 ms); at 32×32, where a head fits in L2 either way, the
//! two copies cost ~1 ms of ~27.
//!
//! On CUDA in f16/bf16 a `flash-attn` build runs FlashAttention-2 (`flash_attn`). Other dtypes and
//! devices split the heads with candle's ops and attend over chunks of queries (`query_chunk`),
//! which bounds the score matrix per image at large sizes. `attention` is the one place that
//! chooses among the three, so the UNet and the VAE cannot drift apart.

use super::cpu_data::{contiguous_f32, zeros_par, SharedMut};
use super::fast_math::exp_approx;
use super::flash_attn;
use super::matmul::{gemm_packed, MatMut, MatRef, PackedB, Start};
use super::transpose::swapped;
#[cfg(target_arch = "x86_64")]
use crate::arch::x86_64::{avx2::loops as avx2, avx512::loops as avx512};
#[cfg(target_arch = "x86_64")]
use crate::isa::Isa;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Queries per block of the CPU kernel: 32 rows of scores over 4096 keys are 512 KiB, within a
/// core's L2. Measured on SD 1.5's 512² self-attention (2 threads): 32 beat 16, 64 and 128.
pub(crate) const BLOCK: usize = 32;

/// The precision of the scores and softmax where FlashAttention does not run (its scores are f32
/// inside the kernel either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scores {
    /// In the inputs' dtype.
    AsInputs,
    /// In f32, the result cast back to the inputs' dtype: what diffusers' `upcast_attention` /
    /// `upcast_softmax` ask for in half precision (the UNet's transformer blocks).
    F32,
}

/// softmax(q kᵀ · scale) v per head, for q [b, s, heads·d], k and v [b, t, heads·d] (head h is
/// columns h·d .. (h + 1)·d); the result is [b, s, heads·d] in the same layout and q's dtype.
/// FlashAttention-2 where the build and the inputs allow it (`flash_attn::attention`), else
/// this module's kernels with the scores in the precision `scores` names.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    heads: usize,
    scores: Scores,
) -> Result<Tensor> {
    if let Some(out) = flash_attn::attention(q, k, v, scale, heads)? {
        return Ok(out);
    }
    let dtype = q.dtype();
    if scores == Scores::F32 && dtype != DType::F32 {
        let f32 = |t: &Tensor| t.to_dtype(DType::F32);
        return attend_any(&f32(q)?, &f32(k)?, &f32(v)?, scale, heads)?.to_dtype(dtype);
    }
    attend_any(q, k, v, scale, heads)
}

/// `attention` without FlashAttention or a change of dtype: this module's kernel for f32 on the
/// CPU, candle's ops otherwise.
fn attend_any(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, heads: usize) -> Result<Tensor> {
    let fast = [q, k, v]
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
    if fast {
        let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
        return q.apply_op3_no_bwd(&k, &v, &Sdpa { scale, heads });
    }
    attend_heads(q, k, v, scale, heads)
}

/// `attention` with candle's ops: the heads split into [b·heads, tokens, d] and back.
fn attend_heads(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, heads: usize) -> Result<Tensor> {
    let (b, s, width) = q.dims3()?;
    let d = width / heads.max(1);
    let split = |x: &Tensor| -> Result<Tensor> {
        let (b, n, _) = x.dims3()?;
        x.reshape((b, n, heads, d))?
            .transpose(1, 2)?
            .reshape((b * heads, n, d))
    };
    let chunk = query_chunk(heads, s, k.dim(1)?);
    attend(&split(q)?, &split(k)?, &split(v)?, scale, chunk)?
        .reshape((b, heads, s, d))?
        .transpose(1, 2)?
        .reshape((b, s, width))
}

struct Sdpa {
    scale: f64,
    heads: usize,
}

impl CustomOp3 for Sdpa {
    fn name(&self) -> &'static str {
        "seedling-sdpa"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, s, width) = ql.shape().dims3()?;
        let (kb, t, kw) = kl.shape().dims3()?;
        let heads = self.heads;
        if (kb, kw) != (b, width)
            || vl.shape().dims3()? != (b, t, width)
            || t == 0
            || heads == 0
            || !width.is_multiple_of(heads)
        {
            candle_core::bail!(
                "seedling-sdpa: q {:?}, k {:?}, v {:?} do not fit {heads} heads",
                ql.shape(),
                kl.shape(),
                vl.shape()
            );
        }
        let op = self.name();
        let (q, k, v) = (
            contiguous_f32(qs, ql, op)?,
            contiguous_f32(ks, kl, op)?,
            contiguous_f32(vs, vl, op)?,
        );
        let mut out = zeros_par(b * s * width);
        if out.is_empty() {
            return Ok((CpuStorage::F32(out), Shape::from((b, s, width))));
        }
        // Each head's keys contiguous, and its values transposed (rows h·d.. of vᵀ [b, width,
        // t]): see the module doc.
        let d = width / heads;
        let kh = heads_apart(k, (t, width), d);
        let vt = swapped(v, t, width);
        let blocks = s.div_ceil(BLOCK);
        // Each task writes its block's rows, its head's columns: disjoint from every other's.
        let shared = SharedMut::new(&mut out);
        // One task per (image, head, query block), a head's blocks consecutive so that a
        // worker's run of tasks reuses that head's keys and values from its cache; each worker
        // keeps one set of buffers.
        (0..b * heads * blocks)
            .into_par_iter()
            .for_each_init(Scratch::default, |scratch, task| {
                let (image, h, block) = (
                    task / (heads * blocks),
                    task / blocks % heads,
                    task % blocks,
                );
                let head = Head {
                    k: &kh[(image * heads + h) * t * d..],
                    vt: &vt[(image * width + h * d) * t..],
                    t,
                    d,
                    width,
                    scale: self.scale as f32,
                };
                let first = (image * s + block * BLOCK) * width + h * d;
                let rows = BLOCK.min(s - block * BLOCK);
                let shared = &shared;
                head.block(&q[first..], rows, scratch, move |j| {
                    // SAFETY: row j of this block, this head's columns: this task's alone.
                    unsafe { shared.slice(first + j * width, d) }
                });
            });
        Ok((CpuStorage::F32(out), Shape::from((b, s, width))))
    }
}

/// One head's keys, `t` rows of `d` values, and its values transposed, `d` rows of `t`, both
/// contiguous; `width` apart: the rows of its queries and outputs.
struct Head<'a> {
    k: &'a [f32],
    vt: &'a [f32],
    t: usize,
    d: usize,
    width: usize,
    scale: f32,
}

/// `x` [b, t, heads·d] → [b, heads, t, d]: each head's rows contiguous.
fn heads_apart(x: &[f32], (t, width): (usize, usize), d: usize) -> Vec<f32> {
    let mut out = zeros_par(x.len());
    let heads = width / d;
    out.par_chunks_mut(t * d).enumerate().for_each(|(ih, out)| {
        let (image, h) = (ih / heads, ih % heads);
        for (r, row) in out.chunks_exact_mut(d).enumerate() {
            let start = (image * t + r) * width + h * d;
            row.copy_from_slice(&x[start..start + d]);
        }
    });
    out
}

/// A worker's buffers: a block's queries transposed, its scores transposed, its output
/// transposed.
struct Scratch {
    qt: PackedB,
    scores: PackedB,
    out_t: Vec<f32>,
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            qt: PackedB::with_width(BLOCK),
            scores: PackedB::with_width(BLOCK),
            out_t: Vec::new(),
        }
    }
}

impl Head<'_> {
    /// The block's `rows` queries (`d` values each, `width` apart, from the start of `q`) →
    /// output row j written into `row_out(j)` (`d` values).
    ///
    /// Computed transposed, one query a column: scoresᵀ = k · qᵀ [t, rows], the softmax down
    /// each column, outᵀ = vᵀ · exp(scoresᵀ) [d, rows]. The block's queries (32) then fill the
    /// products' 32-column panels exactly, and the exps are already the second product's
    /// operand in its panel layout. Row-wise (scores = q · kᵀ, out = exp(scores) · v) the second
    /// product had d = 40 columns, two panels of 32 of which the second held 8: it computed 2.3×
    /// the multiplies it kept. On the micro-kernels (one accumulator per value, the inner
    /// dimension in order) each score and output is the same sum of the same products in the
    /// same order as row-wise; only the softmax's denominators are summed in another order.
    fn block<'o>(
        &self,
        q: &[f32],
        rows: usize,
        s: &mut Scratch,
        mut row_out: impl FnMut(usize) -> &'o mut [f32],
    ) {
        let (t, d, width) = (self.t, self.d, self.width);
        // qᵀ is q read with its strides swapped.
        s.qt.pack_into(MatRef::new(q, (d, rows), (1, width)));
        s.scores.resize(t, rows);
        let scores = s.scores.only_panel_mut().into_padded();
        gemm_packed(
            MatRef::rows(self.k, t, d, d),
            &s.qt,
            MatMut::rows(scores, t, rows, BLOCK),
            Start::Zero,
            false,
        );
        let sums = exp_columns(scores, self.scale);
        s.out_t.resize(d * BLOCK, 0.0);
        gemm_packed(
            MatRef::rows(self.vt, d, t, t),
            &s.scores,
            MatMut::rows(&mut s.out_t, d, rows, BLOCK),
            Start::Zero,
            false,
        );
        for (j, sum) in sums.iter().enumerate().take(rows) {
            let inv = 1.0 / sum;
            for (i, x) in row_out(j).iter_mut().enumerate() {
                *x = s.out_t[i * BLOCK + j] * inv;
            }
        }
    }
}

/// `scores` [t][BLOCK], one query's scores a column: each column `c[i] = exp((c[i] − max(c))
/// · scale)` in place, and the columns' sums. Lanes past the block's queries hold whatever
/// the buffer held; their results feed only outputs that are never stored.
fn exp_columns(scores: &mut [f32], scale: f32) -> [f32; BLOCK] {
    #[cfg(target_arch = "x86_64")]
    match Isa::get() {
        // SAFETY: `Isa::get` reports `Avx512` only where the CPU has AVX-512F.
        Isa::Avx512 => return unsafe { avx512::exp_columns(scores, scale) },
        // SAFETY: and `Avx2` only where it has AVX2 and FMA.
        Isa::Avx2 => return unsafe { avx2::exp_columns(scores, scale) },
        Isa::Baseline => {}
    }
    exp_columns_body(scores, scale)
}

/// Each lane (column) on its own, rows in order: the same values whatever the vector width.
#[inline(always)]
pub(crate) fn exp_columns_body(scores: &mut [f32], scale: f32) -> [f32; BLOCK] {
    let mut max = [f32::NEG_INFINITY; BLOCK];
    for row in scores.chunks_exact(BLOCK) {
        for (m, &v) in max.iter_mut().zip(row) {
            *m = if v > *m { v } else { *m };
        }
    }
    let mut sums = [0f32; BLOCK];
    for row in scores.chunks_exact_mut(BLOCK) {
        for ((x, m), sum) in row.iter_mut().zip(&max).zip(sums.iter_mut()) {
            *x = exp_approx((*x - m) * scale);
            *sum += *x;
        }
    }
    sums
}

/// softmax(q kᵀ · scale) v for [n, s, d] tensors with candle's ops, `chunk` queries at a time.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, chunk: usize) -> Result<Tensor> {
    let kt = k.t()?;
    let one = |q: &Tensor| -> Result<Tensor> {
        let scores = (q.matmul(&kt)? * scale)?;
        candle_nn::ops::softmax_last_dim(&scores)?.matmul(v)
    };
    let s = q.dim(1)?;
    if chunk >= s {
        return one(q);
    }
    let parts = (0..s)
        .step_by(chunk)
        .map(|start| one(&q.narrow(1, start, chunk.min(s - start))?))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&parts, 1)
}

/// Largest f32 score matrix one image's attention materialises at once on the candle path:
/// 2^27 values (512 MiB).
const SCORE_BUDGET: usize = 1 << 27;

/// How many queries attend at once on the candle path. Each query's softmax row is independent,
/// so splitting the queries changes no value (as diffusers' attention slicing, which splits heads
/// instead); it bounds the scores at `SCORE_BUDGET` per image: SD 1.5 at 1024x1024 would
/// otherwise hold 16384² scores × 8 heads = 8 GiB per image. The chunk depends on the image's
/// shape only, never on the batch, so an image is the same in any batch; up to 512x512 nothing
/// is split.
fn query_chunk(heads: usize, queries: usize, keys: usize) -> usize {
    (SCORE_BUDGET / (heads * keys).max(1)).clamp(1, queries.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa;
    use crate::max_abs_diff;
    use candle_core::Device;

    /// The dispatched column exp (AVX-512 or AVX2 on this CPU, if it has them) gives the
    /// baseline build's values bit for bit, sums included; each column is shifted by its own
    /// maximum (which becomes exp(0) = 1) and sums its own exps in row order.
    #[test]
    fn every_build_of_the_column_exp_gives_the_same_bits() {
        isa::each(|_| {
            for t in [1, 7, 77, 4096] {
                let scores: Vec<f32> = (0..t * BLOCK)
                    .map(|i| ((i * 37 % 101) as f32) * 0.173 - 9.0 + (i % BLOCK) as f32)
                    .collect();
                let (mut fast, mut plain) = (scores.clone(), scores.clone());
                let sums = (
                    exp_columns(&mut fast, 0.37),
                    exp_columns_body(&mut plain, 0.37),
                );
                assert_eq!(
                    sums.0.map(f32::to_bits),
                    sums.1.map(f32::to_bits),
                    "{t} rows"
                );
                assert_eq!(fast, plain, "{t} rows");
                for j in 0..BLOCK {
                    let column: Vec<f32> = fast.iter().skip(j).step_by(BLOCK).copied().collect();
                    let top = column.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    assert_eq!(top, 1.0, "column {j}");
                    let sum = column.iter().fold(0f32, |a, &x| a + x);
                    assert_eq!(sum.to_bits(), sums.0[j].to_bits(), "column {j}");
                }
            }
        });
    }

    /// The blocked kernel against candle's ops on shapes that cover a partial last block, more
    /// keys than queries and fewer (cross-attention over 77 tokens), several heads, and scores
    /// large enough that an unshifted exp would overflow.
    #[test]
    fn blocked_kernel_matches_the_plain_formula() {
        isa::each(|_| {
            let dev = Device::Cpu;
            for (b, s, t, heads, d, spread) in [
                (3, 10, 7, 1, 4, 1.0),
                (2, 130, 77, 2, 40, 1.0),
                (1, 64, 200, 3, 8, 1.0),
                (2, 70, 70, 1, 16, 30.0),
            ] {
                let q =
                    (Tensor::randn(0f32, 1.0, (b, s, heads * d), &dev).unwrap() * spread).unwrap();
                let k = Tensor::randn(0f32, 1.0, (b, t, heads * d), &dev).unwrap();
                let v = Tensor::randn(0f32, 1.0, (b, t, heads * d), &dev).unwrap();
                let scale = 1.0 / (d as f64).sqrt();
                let want = attend_heads(&q, &k, &v, scale, heads).unwrap();
                let got = attention(&q, &k, &v, scale, heads, Scores::AsInputs).unwrap();
                assert_eq!(got.dims(), want.dims());
                let diff = max_abs_diff(&got, &want);
                assert!(diff < 1e-5, "{b}x{s}x{t}x{heads}x{d}: {diff}");
            }
        });
    }

    /// Head h of the [b, s, heads·d] layout is columns h·d.. of each row: attending with two
    /// heads is attending with each head's columns on their own.
    #[test]
    fn each_head_is_its_own_columns() {
        isa::each(|_| {
            let dev = Device::Cpu;
            let (b, s, t, d) = (2, 33, 9, 5);
            let q = Tensor::randn(0f32, 1.0, (b, s, 2 * d), &dev).unwrap();
            let k = Tensor::randn(0f32, 1.0, (b, t, 2 * d), &dev).unwrap();
            let v = Tensor::randn(0f32, 1.0, (b, t, 2 * d), &dev).unwrap();
            let both = attention(&q, &k, &v, 0.4, 2, Scores::AsInputs).unwrap();
            for h in 0..2 {
                let cols = |x: &Tensor| x.narrow(2, h * d, d).unwrap().contiguous().unwrap();
                let one =
                    attention(&cols(&q), &cols(&k), &cols(&v), 0.4, 1, Scores::AsInputs).unwrap();
                assert_eq!(max_abs_diff(&cols(&both), &one), 0.0, "head {h}");
            }
        });
    }

    #[test]
    fn an_image_is_the_same_alone_and_in_a_batch() {
        isa::each(|_| {
            let dev = Device::Cpu;
            let q = Tensor::randn(0f32, 1.0, (3, 100, 16), &dev).unwrap();
            let k = Tensor::randn(0f32, 1.0, (3, 100, 16), &dev).unwrap();
            let v = Tensor::randn(0f32, 1.0, (3, 100, 16), &dev).unwrap();
            let all = attention(&q, &k, &v, 0.3, 2, Scores::AsInputs).unwrap();
            let one = attention(
                &q.narrow(0, 1, 1).unwrap(),
                &k.narrow(0, 1, 1).unwrap(),
                &v.narrow(0, 1, 1).unwrap(),
                0.3,
                2,
                Scores::AsInputs,
            )
            .unwrap();
            assert_eq!(max_abs_diff(&all.narrow(0, 1, 1).unwrap(), &one), 0.0);
        });
    }

    /// `Scores::F32` computes half-precision inputs in f32 and returns their dtype: the same
    /// values as the f32 attention, rounded once to f16; `AsInputs` stays in f16 throughout
    /// (candle's ops), and on f32 inputs the two are the same call.
    #[test]
    fn f32_scores_upcast_half_inputs_and_cast_back() {
        isa::each(|_| {
            let dev = Device::Cpu;
            let (q, k, v) = (
                Tensor::randn(0f32, 1.0, (2, 20, 16), &dev).unwrap(),
                Tensor::randn(0f32, 1.0, (2, 9, 16), &dev).unwrap(),
                Tensor::randn(0f32, 1.0, (2, 9, 16), &dev).unwrap(),
            );
            let half = |t: &Tensor| t.to_dtype(DType::F16).unwrap();
            let (qh, kh, vh) = (half(&q), half(&k), half(&v));
            let widen = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
            let exact =
                attention(&widen(&qh), &widen(&kh), &widen(&vh), 0.25, 2, Scores::F32).unwrap();
            let upcast = attention(&qh, &kh, &vh, 0.25, 2, Scores::F32).unwrap();
            assert_eq!(upcast.dtype(), DType::F16);
            assert_eq!(max_abs_diff(&widen(&upcast), &widen(&half(&exact))), 0.0);
            let as_inputs = attention(&qh, &kh, &vh, 0.25, 2, Scores::AsInputs).unwrap();
            assert_eq!(as_inputs.dtype(), DType::F16);
            assert!(max_abs_diff(&widen(&as_inputs), &exact) < 1e-2);
            let f32_twice = attention(&q, &k, &v, 0.25, 2, Scores::AsInputs).unwrap();
            let f32_once = attention(&q, &k, &v, 0.25, 2, Scores::F32).unwrap();
            assert_eq!(max_abs_diff(&f32_twice, &f32_once), 0.0);
        });
    }

    #[test]
    fn empty_queries_give_an_empty_result() {
        let dev = Device::Cpu;
        let q = Tensor::zeros((2, 0, 8), DType::F32, &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (2, 5, 8), &dev).unwrap();
        let out = attention(&q, &k, &k, 0.3, 2, Scores::AsInputs).unwrap();
        assert_eq!(out.dims(), &[2, 0, 8]);
    }

    #[test]
    fn heads_that_do_not_divide_the_width_are_an_error() {
        let q = Tensor::zeros((1, 4, 9), DType::F32, &Device::Cpu).unwrap();
        let err = attention(&q, &q, &q, 0.3, 2, Scores::AsInputs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("do not fit 2 heads"), "{err}");
    }

    #[test]
    fn chunked_attention_is_the_same_attention() {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (3, 10, 4), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (3, 7, 4), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (3, 7, 4), &dev).unwrap();
        let whole = attend(&q, &k, &v, 0.5, 10).unwrap();
        for chunk in [1, 3, 4, 9] {
            let parts = attend(&q, &k, &v, 0.5, chunk).unwrap();
            let diff = max_abs_diff(&whole, &parts);
            assert!(diff < 1e-6, "chunk {chunk}: {diff}");
        }
    }

    #[test]
    fn chunks_bound_the_scores_and_leave_small_images_whole() {
        // SD 1.5 at 512x512 (4096 queries, 8 heads) attends in one piece.
        assert_eq!(query_chunk(8, 4096, 4096), 4096);
        // At 1024x1024 (16384 queries) 1024 queries at a time: 8 x 1024 x 16384 = 2^27 scores.
        assert_eq!(query_chunk(8, 16384, 16384), 1024);
        // Cross-attention over 77 tokens never splits.
        assert_eq!(query_chunk(8, 16384, 77), 16384);
        assert_eq!(query_chunk(1 << 20, 5, 1 << 20), 1);
    }
}
