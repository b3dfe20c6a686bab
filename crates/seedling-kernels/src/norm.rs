//! Group normalisation, optionally followed by SiLU, in one pass over the data on the CPU.
//!
//! Why local: `candle_nn::GroupNorm` is built from generic tensor ops (subtract the mean, square,
//! divide, multiply by the weight, add the bias), and the SiLU after it is one more; each op reads
//! and writes a full-size tensor, and each output is a fresh allocation the kernel must fault in
//! and zero. A resnet block of SD 1.5 runs this twice; at 512×512 the VAE's last blocks hold
//! 128 MiB per tensor. Here, per (image, group): two read passes for the statistics (mean, then
//! the centred sum of squares, accumulated in f64) and one write pass applying
//! `y = x·(w·rstd) + (b − mean·w·rstd)` and SiLU (`y / (1 + e^−y)`, with `fast_math`'s
//! vectorising exp: libm's scalar `expf` here was ~3 % of a UNet step) — the same formula as
//! `torch.nn.GroupNorm` followed by `F.silu` (diffusers' `ResnetBlock2D`), with the variance
//! biased (divided by n) as torch's is.
//!
//! Used for contiguous f32 on the CPU; other dtypes and devices use candle's `GroupNorm` (and
//! candle's SiLU). Each (image, group) is computed on its own, so an image is the same in any
//! batch.

use super::cpu_data::{contiguous_f32, contiguous_f32_mut, zeros_par};
use super::fast_math::silu_approx;
#[cfg(target_arch = "x86_64")]
use crate::arch::x86_64::{avx2::loops as avx2, avx512::loops as avx512};
#[cfg(target_arch = "x86_64")]
use crate::isa::Isa;
use candle_core::{
    CpuStorage, CustomOp1, DType, InplaceOp1, Layout, Module, Result, Shape, Tensor,
};
use candle_nn::VarBuilder;
use rayon::prelude::*;

/// A `GroupNorm` layer with `weight` and `bias` [channels], as `candle_nn::group_norm` loads it.
#[derive(Clone, Debug)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
    /// candle's layer over the same tensors, for every case the fused kernel does not cover.
    inner: candle_nn::GroupNorm,
}

/// `candle_nn::group_norm` (same names, same initialisers for random weights).
pub fn group_norm(groups: usize, channels: usize, eps: f64, vs: VarBuilder) -> Result<GroupNorm> {
    let weight = vs.get_with_hints(channels, "weight", candle_nn::Init::Const(1.))?;
    let bias = vs.get_with_hints(channels, "bias", candle_nn::Init::Const(0.))?;
    let inner = candle_nn::GroupNorm::new(weight.clone(), bias.clone(), channels, groups, eps)?;
    Ok(GroupNorm {
        weight,
        bias,
        groups,
        eps,
        inner,
    })
}

impl GroupNorm {
    /// `silu(group_norm(xs))`, the pre-activation of every resnet block.
    pub fn forward_silu(&self, xs: &Tensor) -> Result<Tensor> {
        self.run(xs, true)
    }

    /// `forward_silu` written over `xs`'s own values on the CPU (contiguous f32), saving a
    /// full-size buffer: 128–256 MiB per image in the VAE's last block at 512×512.
    ///
    /// `xs` must be a tensor the caller alone holds (no clone or view of its storage is used
    /// afterwards): its values are overwritten. Elsewhere this is `forward_silu`.
    pub fn forward_silu_in_place(&self, xs: Tensor) -> Result<Tensor> {
        if !(self.fast(&xs) && xs.is_contiguous()) {
            return self.forward_silu(&xs);
        }
        xs.inplace_op1(&self.op(true))?;
        Ok(xs)
    }

    /// Whether the fused CPU kernel covers `xs`.
    fn fast(&self, xs: &Tensor) -> bool {
        xs.device().is_cpu()
            && xs.dtype() == DType::F32
            && self.weight.dtype() == DType::F32
            && self.bias.dtype() == DType::F32
            && xs.rank() >= 3
    }

    fn op(&self, silu: bool) -> GroupNormOp {
        GroupNormOp {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            groups: self.groups,
            eps: self.eps,
            silu,
        }
    }

    fn run(&self, xs: &Tensor, silu: bool) -> Result<Tensor> {
        if !self.fast(xs) {
            let ys = self.inner.forward(xs)?;
            return if silu {
                candle_nn::ops::silu(&ys)
            } else {
                Ok(ys)
            };
        }
        xs.contiguous()?.apply_op1_no_bwd(&self.op(silu))
    }
}

impl Module for GroupNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.run(xs, false)
    }
}

struct GroupNormOp {
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
    silu: bool,
}

impl GroupNormOp {
    /// The affine parameters as f32 and the group size, checked against the input's shape.
    fn prepare(&self, layout: &Layout) -> Result<Groups> {
        let dims = layout.shape().dims();
        let channels = dims[1];
        let (weight, bias) = (self.weight.to_vec1::<f32>()?, self.bias.to_vec1::<f32>()?);
        if weight.len() != channels || bias.len() != channels {
            candle_core::bail!(
                "seedling-group-norm: input has {channels} channels, weight {}",
                weight.len()
            );
        }
        if !channels.is_multiple_of(self.groups) {
            candle_core::bail!(
                "seedling-group-norm: {} groups do not divide {channels} channels",
                self.groups
            );
        }
        let plane: usize = dims[2..].iter().product();
        Ok(Groups {
            weight,
            bias,
            per_group: channels / self.groups,
            groups: self.groups,
            plane,
        })
    }

    /// The normalisation of chunk `i` (one image's group) of `per_group · plane` values.
    fn group<'a>(&self, g: &'a Groups, i: usize) -> Normalise<'a> {
        let c0 = (i % g.groups) * g.per_group;
        Normalise {
            weight: &g.weight[c0..c0 + g.per_group],
            bias: &g.bias[c0..c0 + g.per_group],
            plane: g.plane,
            eps: self.eps,
            silu: self.silu,
        }
    }
}

/// The layer's parameters as the kernel reads them.
struct Groups {
    weight: Vec<f32>,
    bias: Vec<f32>,
    /// Channels per group.
    per_group: usize,
    groups: usize,
    /// Values per channel (per image).
    plane: usize,
}

impl CustomOp1 for GroupNormOp {
    fn name(&self) -> &'static str {
        "seedling-group-norm"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = contiguous_f32(storage, layout, CustomOp1::name(self))?;
        let g = self.prepare(layout)?;
        let mut out = zeros_par(xs.len());
        if out.is_empty() {
            return Ok((CpuStorage::F32(out), layout.shape().clone()));
        }
        out.par_chunks_mut(g.per_group * g.plane)
            .zip(xs.par_chunks(g.per_group * g.plane))
            .enumerate()
            .for_each(|(i, (y, x))| self.group(&g, i).group(x, y));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

impl InplaceOp1 for GroupNormOp {
    fn name(&self) -> &'static str {
        "seedling-group-norm-in-place"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let xs = contiguous_f32_mut(storage, layout, InplaceOp1::name(self))?;
        let g = self.prepare(layout)?;
        if xs.is_empty() {
            return Ok(());
        }
        xs.par_chunks_mut(g.per_group * g.plane)
            .enumerate()
            .for_each(|(i, x)| self.group(&g, i).group_in_place(x));
        Ok(())
    }
}

/// One group's channels: their affine parameters and layout.
pub(crate) struct Normalise<'a> {
    weight: &'a [f32],
    bias: &'a [f32],
    plane: usize,
    eps: f64,
    silu: bool,
}

impl Normalise<'_> {
    /// `x`, `y`: the group's channels, `plane` values each.
    fn group(&self, x: &[f32], y: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        match Isa::get() {
            // SAFETY: `Isa::get` reports `Avx512` only where the CPU has AVX-512F.
            Isa::Avx512 => return unsafe { avx512::norm_group(self, x, y) },
            // SAFETY: and `Avx2` only where it has AVX2 and FMA.
            Isa::Avx2 => return unsafe { avx2::norm_group(self, x, y) },
            Isa::Baseline => {}
        }
        self.group_body(x, y)
    }

    /// `group` with the output written over the input.
    fn group_in_place(&self, x: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        match Isa::get() {
            // SAFETY: `Isa::get` reports `Avx512` only where the CPU has AVX-512F.
            Isa::Avx512 => return unsafe { avx512::norm_group_in_place(self, x) },
            // SAFETY: and `Avx2` only where it has AVX2 and FMA.
            Isa::Avx2 => return unsafe { avx2::norm_group_in_place(self, x) },
            Isa::Baseline => {}
        }
        self.group_in_place_body(x)
    }

    // The bodies are compiled again for the widest vectors the CPU has (`arch`). No fused
    // multiply-adds are enabled or written, and the f64 sums keep their own 8 lanes, so every
    // build gives the same values.
    #[inline(always)]
    pub(crate) fn group_body(&self, x: &[f32], y: &mut [f32]) {
        let affine = self.affine(x);
        for ((xc, yc), &(scale, shift)) in x
            .chunks_exact(self.plane)
            .zip(y.chunks_exact_mut(self.plane))
            .zip(&affine)
        {
            if self.silu {
                for (v, o) in xc.iter().zip(yc.iter_mut()) {
                    *o = silu_approx(v * scale + shift);
                }
            } else {
                for (v, o) in xc.iter().zip(yc.iter_mut()) {
                    *o = v * scale + shift;
                }
            }
        }
    }

    #[inline(always)]
    pub(crate) fn group_in_place_body(&self, x: &mut [f32]) {
        let affine = self.affine(x);
        for (xc, &(scale, shift)) in x.chunks_exact_mut(self.plane).zip(&affine) {
            if self.silu {
                for v in xc.iter_mut() {
                    *v = silu_approx(*v * scale + shift);
                }
            } else {
                for v in xc.iter_mut() {
                    *v = *v * scale + shift;
                }
            }
        }
    }

    /// Per channel, `(scale, shift)` such that the normalised value is `x·scale + shift`.
    #[inline(always)]
    fn affine(&self, x: &[f32]) -> Vec<(f32, f32)> {
        let n = x.len() as f64;
        // Two passes (mean, then the centred sum of squares) in f64: no cancellation, and the
        // sums do not depend on how the work is split.
        let mean = sum_f64(x) / n;
        let var = centred_squares(x, mean) / n;
        let rstd = 1.0 / (var + self.eps).sqrt();
        (0..x.len() / self.plane)
            .map(|c| {
                let scale = self.weight[c] as f64 * rstd;
                let shift = self.bias[c] as f64 - mean * scale;
                (scale as f32, shift as f32)
            })
            .collect()
    }
}

/// Σx in f64, over 8 lanes so the loop vectorises.
#[inline(always)]
fn sum_f64(x: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = x.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v as f64;
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Σ(x − mean)² in f64, over 8 lanes.
#[inline(always)]
fn centred_squares(x: &[f32], mean: f64) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = x.chunks_exact(8);
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            let d = v as f64 - mean;
            *a += d * d;
        }
    }
    acc.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa;
    use crate::max_abs_diff;
    use candle_core::{Device, Var};
    use candle_nn::VarMap;

    /// A layer with non-trivial weight and bias, and an input with an offset and spread per
    /// channel (so a wrong mean or variance shows).
    fn layer_and_input(groups: usize, channels: usize, shape: &[usize]) -> (GroupNorm, Tensor) {
        let dev = Device::Cpu;
        let map = VarMap::new();
        let vs = VarBuilder::from_varmap(&map, DType::F32, &dev);
        let layer = group_norm(groups, channels, 1e-6, vs.pp("n")).unwrap();
        let w = Tensor::arange(0f32, channels as f32, &dev).unwrap();
        let w = ((w * 0.37).unwrap().sin().unwrap() + 1.1).unwrap();
        let b = (Tensor::arange(0f32, channels as f32, &dev).unwrap() * 0.05).unwrap();
        for (name, value) in [("n.weight", w), ("n.bias", b)] {
            let vars = map.data().lock().unwrap();
            let var: &Var = vars.get(name).unwrap();
            var.set(&value).unwrap();
        }
        let n: usize = shape.iter().product();
        let x = Tensor::arange(0f32, n as f32, &dev).unwrap();
        let x = ((x * 0.9).unwrap().sin().unwrap() * 3.0).unwrap();
        let x = (x + 5.0).unwrap().reshape(shape).unwrap();
        (layer, x)
    }

    #[test]
    fn matches_candles_group_norm_and_silu() {
        isa::each(|_| {
            for (groups, channels, shape) in [
                (32, 64, vec![2, 64, 5, 7]),
                (4, 12, vec![1, 12, 9]),
                (1, 3, vec![3, 3, 2, 2]),
            ] {
                let (layer, x) = layer_and_input(groups, channels, &shape);
                let want = layer.inner.forward(&x).unwrap();
                let got = layer.forward(&x).unwrap();
                assert!(max_abs_diff(&got, &want) < 1e-5, "group norm {shape:?}");
                let want = candle_nn::ops::silu(&want).unwrap();
                let got = layer.forward_silu(&x).unwrap();
                assert!(
                    max_abs_diff(&got, &want) < 1e-5,
                    "group norm + silu {shape:?}"
                );
            }
        });
    }

    /// The in-place form writes `forward_silu`'s values over its input's storage (a view
    /// taken before shows them); a transposed (non-contiguous) input gets a fresh tensor.
    #[test]
    fn in_place_gives_the_same_values() {
        isa::each(|_| {
            let (layer, x) = layer_and_input(8, 16, &[2, 16, 5, 7]);
            let want = layer.forward_silu(&x).unwrap();
            let owned = x.copy().unwrap();
            let view = owned.clone();
            let got = layer.forward_silu_in_place(owned).unwrap();
            assert_eq!(max_abs_diff(&got, &want), 0.0);
            assert_eq!(max_abs_diff(&view, &want), 0.0, "not in place");
            let t = x.transpose(2, 3).unwrap();
            let want = layer.forward_silu(&t.contiguous().unwrap()).unwrap();
            let got = layer.forward_silu_in_place(t.clone()).unwrap();
            assert_eq!(max_abs_diff(&got, &want), 0.0);
            assert!(
                max_abs_diff(&t, &want) > 0.1,
                "a transposed input was written"
            );
        });
    }

    #[test]
    fn normalises_each_group_to_zero_mean_unit_variance() {
        isa::each(|_| {
            // weight 1, bias 0: every group of the output has mean 0 and (biased) variance 1.
            let dev = Device::Cpu;
            let map = VarMap::new();
            let vs = VarBuilder::from_varmap(&map, DType::F32, &dev);
            let layer = group_norm(2, 4, 1e-6, vs).unwrap();
            let x = Tensor::new(&[[1f32, 2., 3., 4., 10., 20., 30., 50.]], &dev).unwrap();
            let y = layer.forward(&x.reshape((1, 4, 2)).unwrap()).unwrap();
            let y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
            for g in y.chunks(4) {
                let mean: f32 = g.iter().sum::<f32>() / 4.0;
                let var: f32 = g.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
                assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4, "{g:?}");
            }
        });
    }

    #[test]
    fn an_image_is_the_same_alone_and_in_a_batch() {
        isa::each(|_| {
            let (layer, x) = layer_and_input(8, 16, &[3, 16, 6, 6]);
            let batch = layer.forward_silu(&x).unwrap();
            let alone = layer.forward_silu(&x.narrow(0, 1, 1).unwrap()).unwrap();
            assert_eq!(max_abs_diff(&batch.narrow(0, 1, 1).unwrap(), &alone), 0.0);
        });
    }

    #[test]
    fn falls_back_to_candle_for_half_precision() {
        isa::each(|_| {
            let (layer, x) = layer_and_input(4, 8, &[1, 8, 3, 3]);
            let half = x.to_dtype(DType::F16).unwrap();
            let layer16 = GroupNorm {
                weight: layer.weight.to_dtype(DType::F16).unwrap(),
                bias: layer.bias.to_dtype(DType::F16).unwrap(),
                inner: candle_nn::GroupNorm::new(
                    layer.weight.to_dtype(DType::F16).unwrap(),
                    layer.bias.to_dtype(DType::F16).unwrap(),
                    8,
                    4,
                    1e-6,
                )
                .unwrap(),
                ..layer.clone()
            };
            let got = layer16.forward_silu(&half).unwrap().to_dtype(DType::F32);
            let want = layer.forward_silu(&x).unwrap();
            let d = max_abs_diff(&got.unwrap(), &want);
            assert!(d < 2e-2, "{d}");
        });
    }
}
