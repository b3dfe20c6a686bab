//! 2-D convolution with a faster CPU kernel than candle 0.11's, as a drop-in for
//! `candle_nn::conv2d` (same weight names, same arguments).
//!
//! Why local: candle 0.11's CPU conv2d ("tiled im2col") first copies the whole input to NHWC on
//! one thread, writes each im2col tile with a stride of the tile width (a cache miss per value),
//! re-flattens the kernel on every call, and runs one small gemm per 512-pixel tile. Profiling
//! `seedling bench` on SD 1.5 put about a quarter of the time in those copies. Here, per image:
//! im2col rows in the kernel's own (c_in, kh, kw) order, so the weight is used in place as a
//! [c_out, c_in·kh·kw] matrix, are written straight into the product's column panels
//! (`matmul::PackedB`, filled in parallel, one panel per task, with run copies), so the columns
//! are not packed a second time; one gemm per band of output rows writes straight into the
//! NCHW output. The band is bounded (`COL_BUDGET`) so a 1024×1024 VAE layer does not build
//! gigabytes of columns. The result differs from candle's only in summation order.
//!
//! The padded 3×3 stride-1 layers of 16×16 pixels and more (most of the UNet's convolution
//! work, nearly all of the VAE's) go through Winograd's minimal filtering instead (`winograd`):
//! F(2×2, 3×3) below 32×32, 2.25× fewer multiplies, F(4×4, 3×3) from 32×32, 4× fewer; the same
//! fused bias, shift, residual and upsampling.
//!
//! Used for f32 on the CPU; other dtypes and devices (CUDA, where cuDNN or candle's kernels
//! are the fast path) go through candle's own conv2d. Each image is computed on its own with
//! shapes that do not depend on the batch, so an image is the same in any batch.

pub(crate) mod winograd;

use super::cpu_data::{contiguous_f32, contiguous_f32_mut, zeros_par};
use super::matmul::{gemm_packed, MatMut, MatRef, PackedB, Start};
use candle_core::{
    CpuStorage, CustomOp1, DType, InplaceOp2, Layout, Module, Result, Shape, Storage, Tensor,
};
use candle_nn::{Conv2dConfig, VarBuilder};
use rayon::prelude::*;

/// Most f32 values one band of im2col columns may hold (64 MiB).
const COL_BUDGET: usize = 1 << 24;

/// A convolution layer: `weight` [c_out, c_in, k, k], optional `bias` [c_out].
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// candle's layer: holds the weight, bias and config, and runs every case ours does not.
    inner: candle_nn::Conv2d,
}

/// `candle_nn::conv2d` with the faster CPU kernel.
pub fn conv2d(
    in_channels: usize,
    out_channels: usize,
    kernel_size: usize,
    config: Conv2dConfig,
    vs: VarBuilder,
) -> Result<Conv2d> {
    let inner = candle_nn::conv2d(in_channels, out_channels, kernel_size, config, vs)?;
    Ok(Conv2d { inner })
}

/// diffusers `ResnetBlock2D`'s `conv_shortcut`: a 1×1 convolution that maps the input to the
/// block's channel count when the two differ, none when they match.
pub fn resnet_shortcut(cin: usize, cout: usize, vs: VarBuilder) -> Result<Option<Conv2d>> {
    if cin == cout {
        return Ok(None);
    }
    conv2d(cin, cout, 1, Default::default(), vs.pp("conv_shortcut")).map(Some)
}

impl Conv2d {
    pub fn weight(&self) -> &Tensor {
        self.inner.weight()
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.run(xs, Extras::default())
    }
}

/// What a convolution does besides convolving, fused into it on the CPU.
#[derive(Clone, Copy)]
struct Extras<'a> {
    /// Per-image, per-channel offset [batch or 1, c_out].
    shift: Option<&'a Tensor>,
    /// Nearest-neighbour upsampling factor of the input (1: none).
    upsample: usize,
}

impl Default for Extras<'_> {
    fn default() -> Self {
        Self {
            shift: None,
            upsample: 1,
        }
    }
}

impl Conv2d {
    /// `conv(xs) + shift[b, c]`: a per-image, per-channel offset (the UNet resnet's time
    /// embedding) added with the bias, before the products are summed into the output, instead
    /// of in a separate full-size pass. `shift` is [batch, c_out] or [1, c_out].
    pub fn forward_shifted(&self, xs: &Tensor, shift: &Tensor) -> Result<Tensor> {
        let extras = Extras {
            shift: Some(shift),
            ..Extras::default()
        };
        self.run(xs, extras)
    }

    /// `conv(xs) + residual` (a resnet's skip connection): the output starts as a copy of the
    /// residual plus the bias and the products are summed onto it, instead of a separate
    /// full-size add. `forward_onto` saves the copy where the residual is not needed again.
    pub fn forward_residual(&self, xs: &Tensor, residual: &Tensor) -> Result<Tensor> {
        if self.sums_in_place(xs, residual) {
            self.forward_onto(xs, residual.copy()?)
        } else {
            residual + self.forward(xs)?
        }
    }

    /// `acc + conv(xs)`, on the CPU (contiguous f32) summed into `acc`'s own storage, so the
    /// sum needs no buffer of its own (128 MiB per image for the VAE's last resnets at 512²).
    ///
    /// `acc` must be a tensor the caller alone holds (no clone or view of its storage is used
    /// afterwards): its values are overwritten. On other devices and dtypes, and for a
    /// non-contiguous `acc`, the sum is a new tensor and `acc` is left as it was.
    pub fn forward_onto(&self, xs: &Tensor, acc: Tensor) -> Result<Tensor> {
        if !self.sums_in_place(xs, &acc) {
            return acc + self.forward(xs)?;
        }
        let op = self.op(xs, Extras::default())?;
        acc.inplace_op2(&xs.contiguous()?, &op)?;
        Ok(acc)
    }

    /// `conv(upsample_nearest(xs, ×factor))` (the VAE's and UNet's `Upsample2D`): on the CPU
    /// the im2col reads each input value under every tap it covers, so the 4× larger upsampled
    /// input (256 MiB per image in the VAE's last block at 512²) is never built.
    pub fn forward_upsampled(&self, xs: &Tensor, factor: usize) -> Result<Tensor> {
        let extras = Extras {
            upsample: factor.max(1),
            ..Extras::default()
        };
        self.run(xs, extras)
    }

    /// Whether the local CPU kernel covers this layer on `xs`.
    fn fast(&self, xs: &Tensor) -> bool {
        let weight = self.inner.weight();
        let config = self.inner.config();
        xs.device().is_cpu()
            && xs.dtype() == DType::F32
            && weight.dtype() == DType::F32
            && config.groups == 1
            && config.dilation == 1
            && weight.is_contiguous()
    }

    /// Whether `forward_onto` can sum into `acc` in place.
    fn sums_in_place(&self, xs: &Tensor, acc: &Tensor) -> bool {
        self.fast(xs) && acc.device().is_cpu() && acc.dtype() == DType::F32 && acc.is_contiguous()
    }

    fn run(&self, xs: &Tensor, extras: Extras) -> Result<Tensor> {
        if !self.fast(xs) {
            let up = extras.upsample;
            let mut out = if up > 1 {
                let (_, _, h, w) = xs.dims4()?;
                self.inner
                    .forward(&xs.upsample_nearest2d(h * up, w * up)?)?
            } else {
                self.inner.forward(xs)?
            };
            if let Some(t) = extras.shift {
                out = out.broadcast_add(&t.unsqueeze(2)?.unsqueeze(3)?)?;
            }
            return Ok(out);
        }
        xs.contiguous()?.apply_op1_no_bwd(&self.op(xs, extras)?)
    }

    /// The CPU kernel's op for `xs` (its batch size sizes the per-image offsets).
    fn op(&self, xs: &Tensor, extras: Extras) -> Result<ConvOp> {
        let weight = self.inner.weight();
        let config = self.inner.config();
        let (c_out, _, kh, kw) = weight.dims4()?;
        Ok(ConvOp {
            weight: weight.clone(),
            offsets: channel_offsets(self.inner.bias(), extras.shift, xs.dim(0)?, c_out)?,
            upsample: extras.upsample,
            kernel: (kh, kw),
            stride: config.stride,
            padding: config.padding,
        })
    }
}

/// bias[c] + shift[i, c] as f32 [batch, c_out] values, or `None` when there is neither.
fn channel_offsets(
    bias: Option<&Tensor>,
    shift: Option<&Tensor>,
    batch: usize,
    c_out: usize,
) -> Result<Option<Vec<f32>>> {
    let total = match (bias, shift) {
        (None, None) => return Ok(None),
        (Some(b), None) => b.reshape((1, c_out))?,
        (None, Some(t)) => t.clone(),
        (Some(b), Some(t)) => t.broadcast_add(&b.reshape((1, c_out))?)?,
    };
    // A shift computed once for the whole batch is [1, c_out].
    let total = total.to_dtype(DType::F32)?.broadcast_as((batch, c_out))?;
    Ok(Some(total.flatten_all()?.to_vec1()?))
}

struct ConvOp {
    weight: Tensor,
    /// Added to every pixel of output channel c of image i: [batch · c_out] (bias and shift).
    offsets: Option<Vec<f32>>,
    /// Nearest-neighbour upsampling factor of the input (1: none).
    upsample: usize,
    kernel: (usize, usize),
    stride: usize,
    padding: usize,
}

/// Sizes of one convolution.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    c_in: usize,
    /// The input's size after upsampling by `up` (the convolution's input).
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    /// Nearest-neighbour upsampling factor: input pixel (y, x) is stored at (y / up, x / up).
    up: usize,
    ho: usize,
    wo: usize,
}

impl CustomOp1 for ConvOp {
    fn name(&self) -> &'static str {
        "seedling-conv2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = contiguous_f32(storage, layout, CustomOp1::name(self))?;
        let (b, g) = self.geometry(layout)?;
        let mut out = zeros_par(b * g.c_out * g.ho * g.wo);
        self.convolve(xs, b, &g, &mut out, false)?;
        Ok((CpuStorage::F32(out), Shape::from((b, g.c_out, g.ho, g.wo))))
    }
}

/// `acc += conv(xs)`: `s1` is the accumulator (the output's shape), `s2` the input.
impl InplaceOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "seedling-conv2d-onto"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let name = InplaceOp2::name(self);
        let xs = contiguous_f32(s2, l2, name)?;
        let (b, g) = self.geometry(l2)?;
        if l1.shape().dims() != [b, g.c_out, g.ho, g.wo] {
            candle_core::bail!(
                "{name}: residual {:?} is not the output's shape {:?}",
                l1.shape(),
                (b, g.c_out, g.ho, g.wo)
            );
        }
        let acc = contiguous_f32_mut(s1, l1, name)?;
        self.convolve(xs, b, &g, acc, true)
    }
}

impl ConvOp {
    /// The batch size and the convolution's sizes for an input of `layout`, checked against
    /// the weight.
    fn geometry(&self, layout: &Layout) -> Result<(usize, Geometry)> {
        let (b, c_in, h0, w0) = layout.shape().dims4()?;
        let up = self.upsample.max(1);
        let (h, w) = (h0 * up, w0 * up);
        let (c_out, wc_in, kh, kw) = self.weight.dims4()?;
        if wc_in != c_in || (kh, kw) != self.kernel {
            candle_core::bail!("seedling-conv2d: input has {c_in} channels, weight {wc_in}");
        }
        let (s, p) = (self.stride, self.padding);
        if h + 2 * p < kh || w + 2 * p < kw || s == 0 {
            candle_core::bail!("seedling-conv2d: input {h}x{w} smaller than the kernel");
        }
        if self.offsets.as_ref().is_some_and(|o| o.len() != b * c_out) {
            candle_core::bail!("seedling-conv2d: offsets for {b}×{c_out} channels expected");
        }
        let g = Geometry {
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride: s,
            pad: p,
            up,
            ho: (h + 2 * p - kh) / s + 1,
            wo: (w + 2 * p - kw) / s + 1,
        };
        Ok((b, g))
    }

    /// Writes the convolution of the `b` images `xs` into `out` [b, c_out, ho, wo], or with
    /// `onto` adds it to what `out` holds.
    fn convolve(
        &self,
        xs: &[f32],
        b: usize,
        g: &Geometry,
        out: &mut [f32],
        onto: bool,
    ) -> Result<()> {
        let (ws, wl) = self.weight.storage_and_layout();
        let Storage::Cpu(weight) = &*ws else {
            candle_core::bail!("seedling-conv2d: CPU weight expected");
        };
        let weight = contiguous_f32(weight, wl, "seedling-conv2d")?;
        let plane = g.ho * g.wo;
        let in_image = g.c_in * (g.h / g.up) * (g.w / g.up);
        if xs.len() != b * in_image || out.len() != b * g.c_out * plane {
            candle_core::bail!("seedling-conv2d: buffers do not match the geometry");
        }
        // The transformed filters when the layer takes Winograd's path.
        let mut images = |filters: Option<&winograd::Filters>| {
            for (i, (x, y)) in xs
                .chunks_exact(in_image)
                .zip(out.chunks_exact_mut(g.c_out * plane))
                .enumerate()
            {
                let offsets = self
                    .offsets
                    .as_ref()
                    .map(|o| &o[i * g.c_out..(i + 1) * g.c_out]);
                match filters {
                    // Adds the offsets as it stores (a pass over the output fewer).
                    Some(f) => winograd::conv_image(g, x, f, y, offsets, onto),
                    None => {
                        // Onto the output, the offsets are added to it first; otherwise the
                        // products start from them.
                        let start = match (offsets, onto) {
                            (Some(offsets), true) => {
                                add_offsets(y, plane, offsets);
                                Start::Output
                            }
                            (Some(offsets), false) => Start::Rows(offsets),
                            (None, true) => Start::Output,
                            (None, false) => Start::Zero,
                        };
                        conv_image(g, x, weight, y, start);
                    }
                }
            }
        };
        if let Some(tiling) = winograd::tiling(g) {
            // The filters transformed once for the whole batch.
            winograd::with_filters(tiling, weight, g.c_out, g.c_in, |f| images(Some(f)));
        } else {
            images(None);
        }
        Ok(())
    }
}

/// Each channel's offset added to `y` [c_out, plane], for the product to add onto.
fn add_offsets(y: &mut [f32], plane: usize, offsets: &[f32]) {
    for (channel, &v) in y.chunks_exact_mut(plane).zip(offsets) {
        channel.iter_mut().for_each(|x| *x += v);
    }
}

/// One image: `x` [c_in, h, w] → `y` [c_out, ho, wo] = `start` + the convolution.
fn conv_image(g: &Geometry, x: &[f32], weight: &[f32], y: &mut [f32], start: Start) {
    let k_size = g.c_in * g.kh * g.kw;
    let rows = (COL_BUDGET / (k_size * g.wo)).clamp(1, g.ho);
    COLUMNS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut col) => conv_bands(g, x, weight, y, start, rows, &mut col),
        // Re-entered on this thread (a convolution run from inside a rayon task, whose thread
        // stole another convolution while waiting): use a buffer of its own.
        Err(_) => conv_bands(g, x, weight, y, start, rows, &mut PackedB::default()),
    });
}

thread_local! {
    /// The im2col buffer, kept between calls: allocating and faulting in tens of MiB per
    /// convolution cost more than the copies that fill it. Bounded by `COL_BUDGET` (+ one row
    /// band and a panel's padding) per thread that runs convolutions; every value a product
    /// reads is overwritten before use.
    static COLUMNS: std::cell::RefCell<PackedB> = std::cell::RefCell::new(PackedB::default());
}

/// Bands of `rows` output rows: im2col into `col`, then one gemm into `y`.
fn conv_bands(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    y: &mut [f32],
    start: Start,
    rows: usize,
    col: &mut PackedB,
) {
    let k_size = g.c_in * g.kh * g.kw;
    let plane = g.ho * g.wo;
    for row0 in (0..g.ho).step_by(rows) {
        let n_rows = rows.min(g.ho - row0);
        let n = n_rows * g.wo;
        col.resize(k_size, n);
        fill_columns(g, x, row0, col);
        // One gemm per band, written straight into the band's columns of each NCHW plane.
        gemm_packed(
            MatRef::rows(weight, g.c_out, k_size, k_size),
            col,
            MatMut::rows(&mut y[row0 * g.wo..], g.c_out, n, plane),
            start,
            true,
        );
    }
}

/// im2col for the band of output rows starting at `row0`, written straight into the product's
/// panels: column row `(ci, dy, dx)` holds, for each output pixel of the band, the input value
/// under that kernel tap (0 in the padding). A 1×1 convolution copies the input as it is.
fn fill_columns(g: &Geometry, x: &[f32], row0: usize, col: &mut PackedB) {
    col.panels_mut().for_each(|mut panel| {
        let (j0, cols) = (panel.first_col, panel.cols);
        for r in 0..g.c_in * g.kh * g.kw {
            let ci = r / (g.kh * g.kw);
            let dy = (r / g.kw) % g.kh;
            let dx = r % g.kw;
            // The stored (not upsampled) plane and row width.
            let (sh, sw) = (g.h / g.up, g.w / g.up);
            let src = &x[ci * sh * sw..(ci + 1) * sh * sw];
            let dst = panel.row(r);
            // The panel's pixels, one output row's run at a time.
            let mut j = j0;
            while j < j0 + cols {
                let (oy, ox) = (row0 + j / g.wo, j % g.wo);
                let len = (g.wo - ox).min(j0 + cols - j);
                let out = &mut dst[j - j0..j - j0 + len];
                let iy = (oy * g.stride + dy) as isize - g.pad as isize;
                if iy < 0 || iy >= g.h as isize {
                    out.fill(0.0);
                } else {
                    let sy = iy as usize / g.up;
                    let line = &src[sy * sw..(sy + 1) * sw];
                    copy_taps(line, out, ox, dx, (g.stride, g.pad, g.up));
                }
                j += len;
            }
        }
    });
}

/// `out[t] = line↑[(ox + t)·stride + dx − pad]`, 0 outside the line, where `line↑` is `line`
/// upsampled ×`up` (each value repeated `up` times).
fn copy_taps(
    line: &[f32],
    out: &mut [f32],
    ox: usize,
    dx: usize,
    (stride, pad, up): (usize, usize, usize),
) {
    let w = (line.len() * up) as isize;
    if stride == 1 {
        // One contiguous run, zero at the ends.
        let shift = (ox + dx) as isize - pad as isize;
        let start = (-shift).clamp(0, out.len() as isize) as usize;
        let end = (w - shift).clamp(start as isize, out.len() as isize) as usize;
        out[..start].fill(0.0);
        let first = (start as isize + shift) as usize;
        let run = &mut out[start..end];
        match up {
            1 => run.copy_from_slice(&line[first..first + run.len()]),
            // A constant factor: the division is a shift, not a `div` per value.
            2 => repeat_run::<2>(line, first, run),
            _ => run
                .iter_mut()
                .enumerate()
                .for_each(|(t, v)| *v = line[(first + t) / up]),
        }
        out[end..].fill(0.0);
        return;
    }
    for (t, v) in out.iter_mut().enumerate() {
        let ix = ((ox + t) * stride + dx) as isize - pad as isize;
        *v = if ix >= 0 && ix < w {
            line[ix as usize / up]
        } else {
            0.0
        };
    }
}

/// `run[t] = line[(first + t) / UP]`: an upsampled line's values from `first` on.
fn repeat_run<const UP: usize>(line: &[f32], first: usize, run: &mut [f32]) {
    for (t, v) in run.iter_mut().enumerate() {
        *v = line[(first + t) / UP];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa;
    use crate::max_abs_diff;
    use candle_core::Device;

    /// Our kernel against candle's on the shapes the UNet and VAE use (3×3 stride 1 and 2,
    /// 1×1), odd sizes, batches, and a band limit that splits the rows.
    #[test]
    fn matches_candles_conv2d() {
        isa::each(|_| {
            let dev = Device::Cpu;
            for (b, c_in, c_out, h, w, k, stride, pad) in [
                (2, 3, 5, 7, 9, 3, 1, 1),
                (1, 4, 6, 8, 8, 3, 2, 1),
                (3, 5, 2, 6, 5, 1, 1, 0),
                (1, 2, 3, 5, 4, 3, 1, 0),
                (1, 3, 4, 9, 11, 3, 2, 0),
            ] {
                let x = Tensor::randn(0f32, 1.0, (b, c_in, h, w), &dev).unwrap();
                let wt = Tensor::randn(0f32, 1.0, (c_out, c_in, k, k), &dev).unwrap();
                let want = x.conv2d(&wt, pad, stride, 1, 1).unwrap();
                let op = ConvOp {
                    weight: wt.clone(),
                    offsets: None,
                    upsample: 1,
                    kernel: (k, k),
                    stride,
                    padding: pad,
                };
                let got = x.apply_op1_no_bwd(&op).unwrap();
                assert_eq!(got.dims(), want.dims());
                let diff = max_abs_diff(&got, &want);
                assert!(
                    diff < 1e-4,
                    "{b} {c_in} {c_out} {h}x{w} k{k} s{stride} p{pad}: {diff}"
                );
            }
        });
    }

    /// Layers large enough for Winograd's F(2×2, 3×3) and F(4×4, 3×3) (odd sizes cut the last
    /// tiles; widths whose tile rows do not fill a group of tiles, or span several), with the
    /// bias, a shift, a residual and the ×2 upsampling, against candle's ops; and the path is
    /// the one taken. Tolerances, relative to the largest output: F(2×2) only adds, subtracts
    /// and halves, and rounds like a direct product (2e-6); F(4×4)'s constants (up to 8, and
    /// 1/6, 1/24) round ~15× more (`bench/winograd_rounding.py`: 3–6e-5 at 320–1280 channels;
    /// 1.4–3.7e-6 measured here, at these few channels), 3e-5.
    #[test]
    fn winograd_layers_match_candles_ops() {
        isa::each(|_| {
            use winograd::Tiling::{F2, F4};
            let dev = Device::Cpu;
            for (b, c_in, c_out, h, w, tiling) in [
                (2, 5, 7, 33, 35, F4),
                (1, 16, 13, 32, 32, F4),
                (1, 3, 2, 9, 130, F4),
                (2, 5, 7, 17, 19, F2),
                (1, 3, 2, 5, 70, F2),
                // One whole vector of input channels in the filter transform and 5 more.
                (2, 21, 4, 16, 16, F2),
                (1, 21, 4, 32, 34, F4),
            ] {
                let g = Geometry {
                    c_in,
                    h,
                    w,
                    c_out,
                    kh: 3,
                    kw: 3,
                    stride: 1,
                    pad: 1,
                    up: 1,
                    ho: h,
                    wo: w,
                };
                assert_eq!(winograd::tiling(&g), Some(tiling), "{h}x{w}");
                let tolerance = match tiling {
                    F2 => 2e-6,
                    F4 => 3e-5,
                };
                let conv = random_conv3x3(c_in, c_out);
                let x = Tensor::randn(0f32, 1.0, (b, c_in, h, w), &dev).unwrap();
                let plain = conv.inner.forward(&x).unwrap();
                let scale = plain.abs().unwrap().max_all().unwrap();
                let scale = scale.to_scalar::<f32>().unwrap();
                let shift = Tensor::randn(0f32, 1.0, (b, c_out), &dev).unwrap();
                let with_shift = plain
                    .broadcast_add(&shift.reshape((b, c_out, 1, 1)).unwrap())
                    .unwrap();
                let residual = Tensor::randn(0f32, 1.0, plain.shape(), &dev).unwrap();
                let with_residual = (&plain + &residual).unwrap();
                let small = x.narrow(2, 0, h / 2).unwrap().narrow(3, 0, w / 2).unwrap();
                let up = small.upsample_nearest2d(h / 2 * 2, w / 2 * 2).unwrap();
                for (name, got, want) in [
                    ("plain", conv.forward(&x), plain.clone()),
                    ("shift", conv.forward_shifted(&x, &shift), with_shift),
                    (
                        "residual",
                        conv.forward_residual(&x, &residual),
                        with_residual,
                    ),
                    (
                        "upsampled",
                        conv.forward_upsampled(&small, 2),
                        conv.inner.forward(&up).unwrap(),
                    ),
                ] {
                    let got = got.unwrap();
                    assert_eq!(got.dims(), want.dims(), "{name}");
                    let diff = max_abs_diff(&got, &want);
                    assert!(
                        diff < tolerance * scale.max(1.0),
                        "{tiling:?} {name} {h}x{w}: {diff} of {scale}"
                    );
                }
            }
        });
    }

    /// A padded 3×3 layer with candle_nn's random initialisation (weight and bias).
    fn random_conv3x3(cin: usize, cout: usize) -> Conv2d {
        let map = candle_nn::VarMap::new();
        let vs = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        let cfg = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        conv2d(cin, cout, 3, cfg, vs).unwrap()
    }

    /// The bias and a per-image shift, added inside the kernel, against candle's conv plus
    /// the same additions as separate ops.
    #[test]
    fn bias_and_shift_match_candles_additions() {
        isa::each(|_| {
            let dev = Device::Cpu;
            let conv = random_conv3x3(3, 5);
            let bias = conv.inner.bias().unwrap().clone();
            // candle_nn initialises the bias uniformly in ±1/sqrt(fan_in): not zero, so it shows.
            assert!(
                bias.abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                    > 0.0
            );
            let x = Tensor::randn(0f32, 1.0, (2, 3, 6, 7), &dev).unwrap();
            let shift = Tensor::randn(0f32, 1.0, (2, 5), &dev).unwrap();
            let plain = x.conv2d(conv.weight(), 1, 1, 1, 1).unwrap();
            let with_bias = plain
                .broadcast_add(&bias.reshape((1, 5, 1, 1)).unwrap())
                .unwrap();
            let with_shift = with_bias
                .broadcast_add(&shift.reshape((2, 5, 1, 1)).unwrap())
                .unwrap();
            for (got, want) in [
                (conv.forward(&x).unwrap(), with_bias),
                (conv.forward_shifted(&x, &shift).unwrap(), with_shift),
            ] {
                let diff = max_abs_diff(&got, &want);
                assert!(diff < 1e-5, "{diff}");
            }
        });
    }

    /// Images one or two pixels thin, whose tiles hang over the edge on every side (rows of
    /// padding above and below, a row of one tile), on both Winograd paths (by pixel count:
    /// 1100 takes F(4×4), 291–600 F(2×2)).
    #[test]
    fn thin_images_match_candles_conv2d() {
        isa::each(|_| {
            let dev = Device::Cpu;
            for (h, w) in [(1, 1100), (1100, 1), (2, 300), (300, 2), (3, 97)] {
                let conv = random_conv3x3(3, 5);
                let x = Tensor::randn(0f32, 1.0, (1, 3, h, w), &dev).unwrap();
                let want = conv.inner.forward(&x).unwrap();
                let got = conv.forward(&x).unwrap();
                let scale = want.abs().unwrap().max_all().unwrap();
                let scale = scale.to_scalar::<f32>().unwrap();
                let diff = max_abs_diff(&got, &want);
                assert!(diff < 3e-5 * scale.max(1.0), "{h}x{w}: {diff} of {scale}");
            }
        });
    }

    /// The upsampling read through the im2col, and the residual summed onto, against
    /// candle's upsample, conv and add as separate ops (odd sizes, a batch, a bias).
    #[test]
    fn upsample_and_residual_match_candles_ops() {
        isa::each(|_| {
            let dev = Device::Cpu;
            let conv = random_conv3x3(3, 5);
            let x = Tensor::randn(0f32, 1.0, (2, 3, 5, 7), &dev).unwrap();
            let up = x.upsample_nearest2d(10, 14).unwrap();
            let want = conv.inner.forward(&up).unwrap();
            let got = conv.forward_upsampled(&x, 2).unwrap();
            assert_eq!(got.dims(), want.dims());
            let diff = max_abs_diff(&got, &want);
            assert!(diff < 1e-5, "upsampled: {diff}");
            let residual = Tensor::randn(0f32, 1.0, (2, 5, 5, 7), &dev).unwrap();
            let want = (conv.inner.forward(&x).unwrap() + &residual).unwrap();
            let got = conv.forward_residual(&x, &residual).unwrap();
            let diff = max_abs_diff(&got, &want);
            assert!(diff < 1e-5, "residual: {diff}");
            // A residual of another shape is refused, not read past.
            let wrong = Tensor::zeros((1, 5, 5, 7), DType::F32, &dev).unwrap();
            assert!(conv.forward_residual(&x, &wrong).is_err());
        });
    }

    /// `forward_onto` sums into the accumulator's own storage (a view of it taken before shows
    /// the sum), gives `forward_residual`'s values on both paths (direct 9×9, Winograd 34×34),
    /// and refuses an accumulator of another shape or one that is the input itself.
    #[test]
    fn forward_onto_sums_in_place() {
        isa::each(|_| {
            let dev = Device::Cpu;
            let conv = random_conv3x3(4, 4);
            for size in [9, 34] {
                let x = Tensor::randn(0f32, 1.0, (2, 4, size, size), &dev).unwrap();
                let acc = Tensor::randn(0f32, 1.0, (2, 4, size, size), &dev).unwrap();
                let want = conv.forward_residual(&x, &acc).unwrap();
                let separate = (conv.inner.forward(&x).unwrap() + &acc).unwrap();
                assert!(max_abs_diff(&want, &separate) < 1e-4, "{size}");
                let owned = acc.copy().unwrap();
                let view = owned.clone();
                let got = conv.forward_onto(&x, owned).unwrap();
                assert_eq!(max_abs_diff(&got, &want), 0.0, "{size}");
                assert_eq!(max_abs_diff(&view, &want), 0.0, "{size}: not in place");
                // forward_residual left its residual as it was.
                assert!(max_abs_diff(&acc, &want) > 0.1);
            }
            let x = Tensor::randn(0f32, 1.0, (1, 4, 6, 6), &dev).unwrap();
            let wrong = Tensor::zeros((1, 4, 6, 5), DType::F32, &dev).unwrap();
            assert!(conv.forward_onto(&x, wrong).is_err());
            let same = x.copy().unwrap();
            assert!(conv.forward_onto(&same, same.clone()).is_err());
        });
    }

    /// Convolutions run concurrently from rayon tasks (each thread with its own column buffer,
    /// or a fresh one if a waiting thread steals another convolution and re-enters — not
    /// forced here, rayon decides) give the same values as run one by one.
    #[test]
    fn convolutions_inside_rayon_tasks_match_sequential_ones() {
        isa::each(|_| {
            let dev = Device::Cpu;
            let conv = random_conv3x3(16, 8);
            let xs: Vec<Tensor> = (0..16)
                .map(|_| Tensor::randn(0f32, 1.0, (1, 16, 48, 48), &dev).unwrap())
                .collect();
            let one_by_one: Vec<Tensor> = xs.iter().map(|x| conv.forward(x).unwrap()).collect();
            let in_tasks: Vec<Tensor> = xs.par_iter().map(|x| conv.forward(x).unwrap()).collect();
            for (a, b) in one_by_one.iter().zip(&in_tasks) {
                assert_eq!(max_abs_diff(a, b), 0.0);
            }
        });
    }

    #[test]
    fn an_image_is_the_same_in_any_batch() {
        isa::each(|_| {
            let dev = Device::Cpu;
            // The direct path (10×10) and Winograd's (34×34).
            for size in [10, 34] {
                let x = Tensor::randn(0f32, 1.0, (3, 4, size, size), &dev).unwrap();
                let wt = Tensor::randn(0f32, 1.0, (6, 4, 3, 3), &dev).unwrap();
                let op = ConvOp {
                    weight: wt,
                    offsets: None,
                    upsample: 1,
                    kernel: (3, 3),
                    stride: 1,
                    padding: 1,
                };
                let all = x.apply_op1_no_bwd(&op).unwrap();
                let one = x.narrow(0, 1, 1).unwrap().apply_op1_no_bwd(&op).unwrap();
                let row: Vec<f32> = all
                    .narrow(0, 1, 1)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                assert_eq!(row, one.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            }
        });
    }

    #[test]
    fn taps_with_padding_and_stride() {
        let line = [1.0, 2.0, 3.0, 4.0];
        let mut out = [9.0; 4];
        copy_taps(&line, &mut out, 0, 0, (1, 1, 1));
        assert_eq!(out, [0.0, 1.0, 2.0, 3.0]);
        copy_taps(&line, &mut out, 0, 2, (1, 1, 1));
        assert_eq!(out, [2.0, 3.0, 4.0, 0.0]);
        let mut half = [9.0; 2];
        copy_taps(&line, &mut half, 0, 0, (2, 1, 1));
        assert_eq!(half, [0.0, 2.0]);
        // Starting at output pixel 1 (a panel that begins inside an output row).
        let mut tail = [9.0; 3];
        copy_taps(&line, &mut tail, 1, 2, (1, 1, 1));
        assert_eq!(tail, [3.0, 4.0, 0.0]);
        copy_taps(&line, &mut half, 1, 0, (2, 1, 1));
        assert_eq!(half, [2.0, 4.0]);
        // The line upsampled ×2 is [1, 1, 2, 2, 3, 3, 4, 4]; padding 1 shifts it right.
        let mut wide = [9.0; 9];
        copy_taps(&line, &mut wide, 0, 0, (1, 1, 2));
        assert_eq!(wide, [0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]);
    }
}
