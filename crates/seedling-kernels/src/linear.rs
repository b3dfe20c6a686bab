//! A linear layer, `y = x Wᵀ + b` (torch `nn.Linear`), as a drop-in for `candle_nn::Linear`
//! (same weight names) with the CPU product of `matmul`.
//!
//! Why local: candle 0.11's CPU Linear runs a broadcast matmul against `Wᵀ` and then adds the
//! bias in a second full-size pass. Here, for an f32 layer on the CPU, `Wᵀ` is copied into the
//! product's column panels once, when the layer is built, and the [out, in] weight is not kept
//! (the same memory): packing it on every call cost more than the product's own time in SD 1.5's
//! GEGLU projections (measured on a 2-core Xeon: 15 ms to pack 1280 → 10240, ~1.5 % of a UNet
//! step in all; it ran with the output's zeroing on one thread while the other core waited).
//! Per image, one product whose sums start from the bias (`Start::Columns`: the kernel's
//! accumulators begin as the bias row, so the output is not filled with it first and read
//! back; the same values, and on 2 Intel cores the same time within noise). Each image (the
//! leading dimensions of an input of rank three or more) is its own product whose shape does
//! not depend on the batch, so an image is the same in any batch. `forward_gated` runs GEGLU's
//! projection and gate as one pass (`geglu::projected`).
//!
//! Layers of other dtypes and devices are candle's Linear.

use super::cpu_data::{contiguous_f32, zeros_par};
use super::matmul::{
    gated_available, gemm_gated, gemm_packed, Gate, MatMut, MatRef, PackedB, Start,
};
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Storage, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

/// A linear layer: `weight` [out, in], optional `bias` [out].
#[derive(Clone)]
pub struct Linear {
    layer: Layer,
}

#[derive(Clone)]
enum Layer {
    /// f32 on the CPU: `Wᵀ` in panels.
    Packed(Arc<Packed>),
    /// Any other dtype or device: candle's layer.
    Candle(candle_nn::Linear),
}

/// `Wᵀ` [in, out] in the product's panels, and the bias.
struct Packed {
    wt: PackedB,
    bias: Option<Vec<f32>>,
    in_dim: usize,
    out_dim: usize,
}

impl std::fmt::Debug for Linear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.layer {
            Layer::Packed(p) => f
                .debug_struct("Linear")
                .field("in", &p.in_dim)
                .field("out", &p.out_dim)
                .field("bias", &p.bias.is_some())
                .finish(),
            Layer::Candle(l) => f.debug_tuple("Linear").field(l).finish(),
        }
    }
}

/// `candle_nn::linear`: `weight` and `bias` under `vs`.
pub fn linear(in_dim: usize, out_dim: usize, vs: VarBuilder) -> Result<Linear> {
    let l = candle_nn::linear(in_dim, out_dim, vs)?;
    Linear::new(l.weight().clone(), l.bias().cloned())
}

/// `candle_nn::linear_no_bias`.
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vs: VarBuilder) -> Result<Linear> {
    let l = candle_nn::linear_no_bias(in_dim, out_dim, vs)?;
    Linear::new(l.weight().clone(), None)
}

impl Linear {
    /// A layer from `weight` [out, in] and `bias` [out]. An f32 CPU layer keeps `Wᵀ` packed
    /// (the tensors are dropped unless the caller holds them); others keep the tensors.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let packable = weight.device().is_cpu()
            && weight.dtype() == DType::F32
            && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
        let layer = if packable {
            Layer::Packed(Arc::new(Packed::new(&weight, bias.as_ref())?))
        } else {
            Layer::Candle(candle_nn::Linear::new(weight, bias))
        };
        Ok(Self { layer })
    }
}

impl Packed {
    fn new(weight: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let (out_dim, in_dim) = weight.dims2()?;
        let weight = weight.contiguous()?;
        let (storage, layout) = weight.storage_and_layout();
        let Storage::Cpu(storage) = &*storage else {
            candle_core::bail!("seedling-linear: CPU weight expected");
        };
        let w = contiguous_f32(storage, layout, "seedling-linear")?;
        // Wᵀ [in, out] is the weight read with its strides swapped.
        let wt = PackedB::pack(MatRef::new(w, (in_dim, out_dim), (1, in_dim)));
        let bias = bias
            .map(|b| b.flatten_all()?.to_vec1::<f32>())
            .transpose()?;
        if bias.as_ref().is_some_and(|b| b.len() != out_dim) {
            candle_core::bail!("seedling-linear: bias does not have {out_dim} values");
        }
        Ok(Self {
            wt,
            bias,
            in_dim,
            out_dim,
        })
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match &self.layer {
            Layer::Candle(l) => l.forward(xs),
            Layer::Packed(p) => run_packed(p, xs, None),
        }
    }
}

impl Linear {
    /// `gate(h[.., :n], h[.., n:])` for `h = self.forward(xs)` with 2n outputs, in one pass
    /// that never writes `h` out (`matmul::gemm_gated`), where this layer runs on the CPU
    /// kernel and its halves are whole panels; `None` elsewhere, for the caller to compute `h`
    /// and gate it. The values are those of the forward pass gated row by row.
    pub fn forward_gated(&self, xs: &Tensor, gate: Gate) -> Result<Option<Tensor>> {
        match &self.layer {
            Layer::Packed(p) if gated_available(p.out_dim) => {
                run_packed(p, xs, Some(gate)).map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// The packed layer on `xs` (converted to f32 and back), gated when `gate` is given.
fn run_packed(p: &Arc<Packed>, xs: &Tensor, gate: Option<Gate>) -> Result<Tensor> {
    if !xs.device().is_cpu() {
        candle_core::bail!("seedling-linear: a CPU layer was given a tensor on another device");
    }
    let dtype = xs.dtype();
    let op = LinearOp {
        packed: p.clone(),
        gate,
    };
    xs.to_dtype(DType::F32)?
        .contiguous()?
        .apply_op1_no_bwd(&op)?
        .to_dtype(dtype)
}

struct LinearOp {
    packed: Arc<Packed>,
    /// Gate the output's halves (`Linear::forward_gated`).
    gate: Option<Gate>,
}

impl CustomOp1 for LinearOp {
    fn name(&self) -> &'static str {
        "seedling-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = &*self.packed;
        let xs = contiguous_f32(storage, layout, self.name())?;
        let dims = layout.shape().dims();
        let (in_dim, out_dim) = (p.in_dim, p.out_dim);
        // [.., rows, in]: one product per leading index (an image); [rows, in]: one product.
        let [lead @ .., rows, features] = dims else {
            candle_core::bail!("seedling-linear: rank 2 or more expected, got {dims:?}");
        };
        let (rows, features) = (*rows, *features);
        if features != in_dim {
            candle_core::bail!(
                "seedling-linear: input has {features} features, the layer takes {in_dim}"
            );
        }
        let width = if self.gate.is_some() {
            out_dim / 2
        } else {
            out_dim
        };
        let images: usize = lead.iter().product();
        let mut out = zeros_par(images * rows * width);
        let start = match &p.bias {
            Some(bias) => Start::Columns(bias),
            None => Start::Zero,
        };
        if rows > 0 && width > 0 {
            for (x, y) in xs
                .chunks_exact(rows * in_dim.max(1))
                .zip(out.chunks_exact_mut(rows * width))
            {
                let (x, y) = (
                    MatRef::rows(x, rows, in_dim, in_dim),
                    MatMut::rows(y, rows, width, width),
                );
                match self.gate {
                    Some(gate) => gemm_gated(x, &p.wt, y, start, gate, true),
                    None => gemm_packed(x, &p.wt, y, start, true),
                }
            }
        }
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("rank ≥ 2") = width;
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa;
    use crate::max_abs_diff;
    use candle_core::Device;

    /// Random weight and bias, and candle's layer over the same tensors (the reference).
    fn layers(in_dim: usize, out_dim: usize, bias: bool) -> (Linear, candle_nn::Linear) {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (out_dim, in_dim), &dev).unwrap();
        let b = bias.then(|| Tensor::randn(0f32, 1.0, out_dim, &dev).unwrap());
        let ours = Linear::new(w.clone(), b.clone()).unwrap();
        assert!(matches!(ours.layer, Layer::Packed(_)));
        (ours, candle_nn::Linear::new(w, b))
    }

    /// Against candle's Linear on rank 2, 3 and 4 inputs, with and without bias, odd sizes.
    #[test]
    fn matches_candles_linear() {
        isa::each(|_| {
            let dev = Device::Cpu;
            for (dims, in_dim, out_dim, bias) in [
                (vec![2, 77, 37], 37, 45, true),
                (vec![3, 5, 8], 8, 33, false),
                (vec![7, 19], 19, 1, true),
                (vec![1, 1, 3], 3, 70, true),
                (vec![2, 3, 4, 9], 9, 40, true),
            ] {
                let (ours, theirs) = layers(in_dim, out_dim, bias);
                let xs = Tensor::randn(0f32, 1.0, dims.as_slice(), &dev).unwrap();
                let got = ours.forward(&xs).unwrap();
                let want = theirs.forward(&xs).unwrap();
                assert_eq!(got.dims(), want.dims());
                let diff = max_abs_diff(&got, &want);
                assert!(diff < 1e-4, "{dims:?} {in_dim}->{out_dim}: {diff}");
            }
        });
    }

    /// An image's output is bit-identical alone and in a batch.
    #[test]
    fn an_image_is_the_same_in_any_batch() {
        isa::each(|_| {
            let (l, _) = layers(40, 50, true);
            let xs = Tensor::randn(0f32, 1.0, (3, 9, 40), &Device::Cpu).unwrap();
            let batch = l.forward(&xs).unwrap();
            let alone = l.forward(&xs.narrow(0, 1, 1).unwrap()).unwrap();
            let row = |t: &Tensor, i| {
                t.get(i)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            };
            assert_eq!(row(&batch, 1), row(&alone, 0));
        });
    }

    /// The gated forward pass is the forward pass's halves gated row by row, bit for bit,
    /// where a micro-kernel runs it (AVX-512 or AVX2, halves of whole panels); elsewhere `None`.
    #[test]
    fn the_gated_forward_gates_the_forward_pass() {
        isa::each(|_| {
            fn gate(value: &[f32], gate: &[f32], out: &mut [f32]) {
                for ((o, v), g) in out.iter_mut().zip(value).zip(gate) {
                    *o = v * g;
                }
            }
            let (l, _) = layers(24, 128, true);
            let xs = Tensor::randn(0f32, 1.0, (2, 30, 24), &Device::Cpu).unwrap();
            let Some(got) = l.forward_gated(&xs, gate).unwrap() else {
                assert!(!gated_available(128));
                eprintln!("skipped: no gated kernel at this instruction set");
                return;
            };
            let full = l.forward(&xs).unwrap();
            let halves = full.chunk(2, candle_core::D::Minus1).unwrap();
            let want = (&halves[0] * &halves[1]).unwrap();
            assert_eq!(got.dims(), &[2, 30, 64]);
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(flat(&got), flat(&want));
            // Halves that are not whole panels are left to the caller.
            let (odd, _) = layers(24, 80, true);
            assert!(odd.forward_gated(&xs, gate).unwrap().is_none());
        });
    }

    /// Other dtypes keep candle's layer; an f16 input to an f32 layer comes back in f16.
    #[test]
    fn f16_uses_candles_layer() {
        isa::each(|_| {
            let dev = Device::Cpu;
            let w = Tensor::randn(0f32, 1.0, (4, 8), &dev).unwrap();
            let b = Tensor::randn(0f32, 1.0, 4, &dev).unwrap();
            let to16 = |t: &Tensor| t.to_dtype(DType::F16).unwrap();
            let half = Linear::new(to16(&w), Some(to16(&b))).unwrap();
            assert!(matches!(half.layer, Layer::Candle(_)));
            let full = Linear::new(w, Some(b)).unwrap();
            let xs = Tensor::randn(0f32, 1.0, (2, 3, 8), &dev).unwrap();
            let out = half.forward(&to16(&xs)).unwrap();
            assert_eq!(out.dtype(), DType::F16);
            let want = full.forward(&xs).unwrap();
            let diff = max_abs_diff(&out.to_dtype(DType::F32).unwrap(), &want);
            assert!(diff < 0.05, "{diff}");
            let mixed = full.forward(&to16(&xs)).unwrap();
            assert_eq!(mixed.dtype(), DType::F16);
            let diff = max_abs_diff(&mixed.to_dtype(DType::F32).unwrap(), &want);
            assert!(diff < 0.05, "{diff}");
        });
    }

    #[test]
    fn inputs_that_do_not_fit_are_errors() {
        let (l, _) = layers(8, 4, true);
        let dev = Device::Cpu;
        let wrong = Tensor::zeros((2, 7), DType::F32, &dev).unwrap();
        let err = l.forward(&wrong).unwrap_err().to_string();
        assert!(
            err.contains("input has 7 features, the layer takes 8"),
            "{err}"
        );
        let flat = Tensor::zeros(8, DType::F32, &dev).unwrap();
        let err = l.forward(&flat).unwrap_err().to_string();
        assert!(err.contains("rank 2 or more expected"), "{err}");
    }
}
