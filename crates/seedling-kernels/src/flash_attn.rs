//! FlashAttention-2 (Dao 2023, "FlashAttention-2: Faster Attention with Better Parallelism and
//! Work Partitioning") on CUDA, through candle-flash-attn, in builds with the `flash-attn`
//! feature.
//!
//! Why: on CUDA in half precision the UNet's attention otherwise upcasts q, k and v to f32 and
//! runs candle's ops, which write the [heads, queries, keys] scores, the scaled scores and the
//! softmax to GPU memory in full (`sdpa::attend`). FlashAttention keeps a block of scores in
//! on-chip memory and never writes them, as PyTorch does for diffusers on a GPU
//! (`F.scaled_dot_product_attention`, whose flash backend is FlashAttention-2). Its scores,
//! running maximum and row sums are f32 inside the kernel (flash_fwd_kernel.h), so the upcast
//! diffusers' `upcast_attention`/`upcast_softmax` ask for holds; the probabilities multiply v in
//! the model dtype, as in PyTorch's kernel.
//!
//! Images differ slightly from a build without the feature (another summation order and
//! precision of p·v), so the binary's provenance names a flash-attn build's CUDA device
//! "cuda:N (flash-attn)". The kernel is deterministic: candle's `flash_api.cu` never splits
//! the keys (`num_splits = 1`), and every (image, head, block of queries) is computed on its own,
//! so an image is the same in any batch.

use candle_core::{DType, Result, Tensor};

/// softmax(q kᵀ · scale) v with FlashAttention-2, for q [b, s, heads·d] and k, v [b, t, heads·d]
/// in the layout the projections come in (head h is columns h·d .. (h + 1)·d); the result is
/// [b, s, heads·d] in q's dtype. `None` where the kernels do not apply (see `fits`) or the build
/// has no `flash-attn` feature: `sdpa::attention`, the one caller, then runs its own kernels.
#[cfg(feature = "flash-attn")]
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    heads: usize,
) -> Result<Option<Tensor>> {
    let (b, s, width) = q.dims3()?;
    if !fits(q.device().is_cuda(), q.dtype(), width, heads) {
        return Ok(None);
    }
    let d = width / heads;
    // [b, n, heads·d] → [b, n, heads, d] is a view: flash-attn takes the rows of each head
    // with their strides, so q, k and v are not copied.
    let split = |x: &Tensor| -> Result<Tensor> {
        let n = x.dim(1)?;
        x.reshape((b, n, heads, d))
    };
    let out =
        candle_flash_attn::flash_attn(&split(q)?, &split(k)?, &split(v)?, scale as f32, false)?;
    Ok(Some(out.reshape((b, s, width))?))
}

/// Without the `flash-attn` feature there is no kernel: always `None`.
#[cfg(not(feature = "flash-attn"))]
pub fn attention(
    _q: &Tensor,
    _k: &Tensor,
    _v: &Tensor,
    _scale: f64,
    _heads: usize,
) -> Result<Option<Tensor>> {
    Ok(None)
}

/// Whether candle-flash-attn's kernels take these projections: on CUDA, in f16 or bf16 (it has
/// no f32 kernels), with a head dimension that is a multiple of 8 and at most 512 (the checks of
/// its `FlashAttn::cuda_fwd_t`; it rounds d up to its kernels' sizes 32, 64, 96, …, 512). SD
/// 1.5's heads (d = 40), SD 2.x's and SDXL's (64) and the VAE's one head (512 channels) fit.
#[cfg_attr(not(feature = "flash-attn"), allow(dead_code))]
fn fits(cuda: bool, dtype: DType, width: usize, heads: usize) -> bool {
    let half = matches!(dtype, DType::F16 | DType::BF16);
    let d = if heads == 0 || !width.is_multiple_of(heads) {
        0
    } else {
        width / heads
    };
    cuda && half && d > 0 && d.is_multiple_of(8) && d <= 512
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_take_half_precision_heads_of_8_to_512_on_cuda() {
        // SD 1.5 (8 heads of 40), SD 2.x / SDXL (heads of 64), the VAE (one head of 512).
        for (width, heads) in [(320, 8), (1280, 8), (640, 10), (512, 1)] {
            assert!(fits(true, DType::F16, width, heads), "{width}/{heads}");
            assert!(fits(true, DType::BF16, width, heads), "{width}/{heads}");
        }
    }

    #[test]
    fn other_devices_dtypes_and_head_sizes_fall_back() {
        assert!(!fits(false, DType::F16, 320, 8), "cpu");
        assert!(!fits(true, DType::F32, 320, 8), "f32");
        assert!(
            !fits(true, DType::F16, 36, 1),
            "d = 36 is not a multiple of 8"
        );
        assert!(!fits(true, DType::F16, 1024, 1), "d = 1024 > 512");
        assert!(!fits(true, DType::F16, 320, 0), "no heads");
        assert!(
            !fits(true, DType::F16, 330, 8),
            "width not a multiple of the heads"
        );
    }

    /// Without the feature, or off CUDA, the caller always gets `None` and runs its own kernels.
    #[test]
    fn cpu_tensors_never_take_the_kernel() -> Result<()> {
        let x = Tensor::zeros((1, 4, 16), DType::F16, &candle_core::Device::Cpu)?;
        assert!(attention(&x, &x, &x, 0.25, 2)?.is_none());
        Ok(())
    }
}
