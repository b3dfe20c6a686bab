//! A linear layer, `y = x Wᵀ + b` (torch `nn.Linear`), as a drop-in for `candle_nn::Linear`
//! (same weight names) with the CPU product of `matmul`.
//!
//! Why local: candle 0.11's CPU Linear runs a broadcast matmul against `Wᵀ` and then adds the
//! bias in a second full-size pass; per image here, the output rows start as the bias and one
//! product accumulates onto them, with `Wᵀ` packed once per call for every image of the batch.
//! Each image (the first dimension of a [batch, tokens, features] input) is its own product
//! whose shape does not depend on the batch, so an image is the same in any batch.
//!
//! Used for contiguous f32 on the CPU; other dtypes and devices go through candle's Linear.

use super::cpu_data::contiguous_f32;
use super::matmul::{gemm_packed, MatMut, MatRef, PackedB};
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Storage, Tensor};
use candle_nn::VarBuilder;

/// A linear layer: `weight` [out, in], optional `bias` [out].
#[derive(Clone, Debug)]
pub struct Linear {
    /// candle's layer: holds the weight and bias, and runs every case ours does not.
    inner: candle_nn::Linear,
}

/// `candle_nn::linear`: `weight` and `bias` under `vs`.
pub fn linear(in_dim: usize, out_dim: usize, vs: VarBuilder) -> Result<Linear> {
    candle_nn::linear(in_dim, out_dim, vs).map(|inner| Linear { inner })
}

/// `candle_nn::linear_no_bias`.
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vs: VarBuilder) -> Result<Linear> {
    candle_nn::linear_no_bias(in_dim, out_dim, vs).map(|inner| Linear { inner })
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            inner: candle_nn::Linear::new(weight, bias),
        }
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let weight = self.inner.weight();
        let fast = xs.device().is_cpu()
            && xs.dtype() == DType::F32
            && weight.dtype() == DType::F32
            && self.inner.bias().is_none_or(|b| b.dtype() == DType::F32)
            && matches!(xs.rank(), 2 | 3);
        if !fast {
            return self.inner.forward(xs);
        }
        let op = LinearOp {
            weight: weight.clone(),
            bias: self
                .inner
                .bias()
                .map(|b| b.flatten_all()?.to_vec1())
                .transpose()?,
        };
        xs.contiguous()?.apply_op1_no_bwd(&op)
    }
}

struct LinearOp {
    weight: Tensor,
    bias: Option<Vec<f32>>,
}

impl CustomOp1 for LinearOp {
    fn name(&self) -> &'static str {
        "seedling-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = contiguous_f32(storage, layout, self.name())?;
        let dims = layout.shape().dims();
        // [batch, tokens, in] is one product per image; [rows, in] one product.
        let (images, rows, in_dim) = match *dims {
            [b, s, i] => (b, s, i),
            [r, i] => (1, r, i),
            _ => candle_core::bail!("seedling-linear: rank 2 or 3 input expected"),
        };
        let (ws, wl) = self.weight.storage_and_layout();
        let Storage::Cpu(weight) = &*ws else {
            candle_core::bail!("seedling-linear: CPU weight expected");
        };
        let weight = contiguous_f32(weight, wl, self.name())?;
        let (out_dim, w_in) = wl.shape().dims2()?;
        if w_in != in_dim || self.bias.as_ref().is_some_and(|b| b.len() != out_dim) {
            candle_core::bail!(
                "seedling-linear: input has {in_dim} features, weight is {out_dim}x{w_in}"
            );
        }
        // Wᵀ [in, out] is the weight read with its strides swapped.
        let wt = PackedB::pack(MatRef::new(weight, (in_dim, out_dim), (1, in_dim)));
        let mut out = vec![0f32; images * rows * out_dim];
        if let Some(bias) = &self.bias {
            for row in out.chunks_exact_mut(out_dim) {
                row.copy_from_slice(bias);
            }
        }
        if rows > 0 && out_dim > 0 {
            for (x, y) in xs
                .chunks_exact(rows * in_dim.max(1))
                .zip(out.chunks_exact_mut(rows * out_dim))
            {
                gemm_packed(
                    MatRef::rows(x, rows, in_dim, in_dim),
                    &wt,
                    MatMut::rows(y, rows, out_dim, out_dim),
                    self.bias.is_some(),
                    true,
                );
            }
        }
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("rank ≥ 2") = out_dim;
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::max_abs_diff;
    use candle_core::Device;

    fn layer(in_dim: usize, out_dim: usize, bias: bool) -> Linear {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (out_dim, in_dim), &dev).unwrap();
        let b = bias.then(|| Tensor::randn(0f32, 1.0, out_dim, &dev).unwrap());
        Linear::new(w, b)
    }

    /// Against candle's Linear on rank 2 and 3 inputs, with and without bias, odd sizes.
    #[test]
    fn matches_candles_linear() {
        let dev = Device::Cpu;
        for (dims, in_dim, out_dim, bias) in [
            (vec![2, 77, 37], 37, 45, true),
            (vec![3, 5, 8], 8, 33, false),
            (vec![7, 19], 19, 1, true),
            (vec![1, 1, 3], 3, 70, true),
        ] {
            let l = layer(in_dim, out_dim, bias);
            let xs = Tensor::randn(0f32, 1.0, dims.as_slice(), &dev).unwrap();
            let ours = l.forward(&xs).unwrap();
            let theirs = l.inner.forward(&xs).unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            let diff = max_abs_diff(&ours, &theirs);
            assert!(diff < 1e-4, "{dims:?} {in_dim}->{out_dim}: {diff}");
        }
    }

    /// An image's output is bit-identical alone and in a batch.
    #[test]
    fn an_image_is_the_same_in_any_batch() {
        let l = layer(40, 50, true);
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
    }

    /// Other dtypes go through candle's layer.
    #[test]
    fn f16_uses_candles_layer() {
        let l = layer(8, 4, true);
        let to16 = |t: &Tensor| t.to_dtype(DType::F16).unwrap();
        let half = Linear::new(to16(l.inner.weight()), l.inner.bias().map(to16));
        let xs = Tensor::randn(0f32, 1.0, (2, 3, 8), &Device::Cpu).unwrap();
        let out = half.forward(&to16(&xs)).unwrap();
        assert_eq!(out.dtype(), DType::F16);
        let diff = max_abs_diff(&out.to_dtype(DType::F32).unwrap(), &l.forward(&xs).unwrap());
        assert!(diff < 0.05, "{diff}");
    }
}
