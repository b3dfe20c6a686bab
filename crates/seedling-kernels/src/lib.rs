//! seedling's compute kernels: the CPU paths of the operations a Stable Diffusion UNet, VAE and
//! text encoder spend their time in, as drop-ins for candle's (same weight names, same
//! arguments), where candle 0.11's CPU code is slow. Each module says why it is local and what
//! it measured. They know tensors, not models; other dtypes and devices go to candle's own ops.
//!
//! - `matmul`: the one checked matrix product the others run on (micro-kernels per ISA);
//! - `conv` (+ Winograd), `linear`, `norm`, `sdpa`, `geglu`, `transpose`: the layers;
//! - `flash_attn`: FlashAttention-2 on CUDA in builds with the `flash-attn` feature.
//!
//! Every value is summed in an order fixed by the layer's shape alone, so an image computes the
//! same alone or in a batch, on any number of threads.
//!
//! The kernels pick their code for the CPU in one place (`isa::Isa::get`); the code of each
//! instruction set lives under `arch/` (x86-64: AVX2 with FMA, AVX-512). This crate holds all
//! of seedling's `unsafe` code (the micro-kernels' pointers and intrinsics, buffers shared by
//! parallel tasks, calls that need the CPU's instructions, the weights' memory map): every
//! `unsafe fn` says its conditions under `# Safety`, every `unsafe` block why they hold.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod arch;
pub mod conv;
mod cpu_data;
mod fast_math;
pub mod flash_attn;
pub mod geglu;
pub mod isa;
#[cfg(test)]
mod isa_paths;
pub mod linear;
pub mod matmul;
pub mod mmap;
pub mod norm;
pub mod sdpa;
pub mod transpose;

/// Largest |a − b| over two tensors of the same shape, for the kernels' unit tests.
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .expect("tensors of one shape and dtype f32")
}
