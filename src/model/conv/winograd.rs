//! Winograd's minimal filtering F(2×2, 3×3) for the 3×3, stride-1, padding-1 convolutions that
//! take most of the UNet's and nearly all of the VAE's time.
//!
//! Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016): each 2×2 block
//! of outputs comes from the 4×4 input tile `d` under it as `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`.
//! Summed over input channels, the elementwise product becomes 16 matrix products
//! `M_ξ = U_ξ · V_ξ` ([c_out, c_in] · [c_in, tiles]), one per position ξ of the 4×4 transformed
//! tile: 16 multiply-adds per 4 outputs and input channel where the direct (im2col) product does
//! 36, so 2.25× fewer. The transforms only add, subtract and halve, so the rounding stays at the
//! level of a direct convolution's (tested against candle's). The 4× cheaper F(4×4, 3×3) has
//! transform constants up to 8 and rounds ~15× more in f32 (`bench/winograd_rounding.py`: max
//! error 3–6e-5 on unit-scale outputs where F(2×2) has 2–4e-6); not used yet.
//!
//! Per image the tiles go in groups of `GROUP` (one AVX-512 panel), one rayon task each, so a
//! group's transformed inputs (16 · c_in · 32 values) and products stay in the core's cache:
//! transform the group's inputs into 16 panels, run the 16 products, transform the products back
//! into the output. The filters are transformed once per call, for the whole batch, into a
//! buffer kept between calls (the values are not kept: they are 16/9 of the weight's size, and
//! memory is a target too).
//!
//! Every output value is summed in one order fixed by the layer's shape (the products' order
//! over input channels, then the inverse transform's): an image computes the same alone or in a
//! batch, on any number of threads.

use super::Geometry;
use crate::model::matmul::{gemm_packed, MatMut, MatRef, PackedB};
use rayon::prelude::*;
use std::cell::RefCell;

/// Tiles per task: the AVX-512 kernel's panel width.
const GROUP: usize = 32;
/// Values of a transformed 4×4 tile.
const XI: usize = 16;
/// Smallest output (pixels) worth the filter transform: below it the transform of a large
/// weight costs more than the products it saves. Measured (2 Zen 4 threads, best of 5, filters
/// transformed into the kept buffer) against the direct product: 1280 channels at 16×16 batch 2
/// 52–57 ms vs 71, batch 1 32 vs 36; 2560 → 1280 at 16×16 batch 2 100–105 vs 141; at 8×8 batch 2
/// 38 vs 18. Decided by the image's size alone, never the batch, so that an image takes the
/// same path (and gets the same bits) alone or in a batch.
const MIN_PIXELS: usize = 16 * 16;

/// Whether the convolution is one Winograd's F(2×2, 3×3) computes here.
pub(super) fn suits(g: &Geometry) -> bool {
    (g.kh, g.kw, g.stride, g.pad) == (3, 3, 1, 1) && g.ho * g.wo >= MIN_PIXELS
}

/// Input channels whose filters are transformed together, as the lanes of one vector.
const LANES: usize = 16;

thread_local! {
    /// The transformed filters, kept between calls (like conv's COLUMNS): a fresh buffer of
    /// 16/9 of a weight (105 MB for 1280 × 1280 channels) was faulted in page by page on every
    /// call; that and the former one-filter-at-a-time transform took ~22 % of a 1280-channel
    /// convolution at 32×32, batch 2 (216 → 161 ms with both changed). Holds the largest
    /// layer's filters seen on this thread: 210 MB for SD 1.5's 2560 → 1280 layers.
    static FILTERS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `U = G g Gᵀ` of `weight` [c_out, c_in, 3, 3] (see `transform_filters`), in
/// the thread's kept buffer.
pub(super) fn with_filters<R>(
    weight: &[f32],
    c_out: usize,
    c_in: usize,
    f: impl FnOnce(&[f32]) -> R,
) -> R {
    let len = XI * c_out * c_in;
    let run = |u: &mut Vec<f32>| {
        if u.len() < len {
            u.resize(len, 0.0);
        }
        transform_filters(weight, c_out, c_in, &mut u[..len]);
        f(&u[..len])
    };
    FILTERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut u) => run(&mut u),
        // Re-entered on this thread (a convolution inside a rayon task): a buffer of its own.
        Err(_) => run(&mut Vec::new()),
    })
}

/// `U = G g Gᵀ` for every filter of `weight` [c_out, c_in, 3, 3] into `u`, laid out
/// [ξ][c_out][c_in]: product ξ reads `U_ξ` as a [c_out, c_in] matrix. (Rows 16·c_in apart,
/// [c_out][ξ][c_in], made the product 35 % slower at 512 channels: the 12 rows a micro-kernel
/// reads at once fell in the same L1 cache set.)
fn transform_filters(weight: &[f32], c_out: usize, c_in: usize, u: &mut [f32]) {
    assert_eq!(
        u.len(),
        XI * c_out * c_in,
        "winograd: filters of another layer"
    );
    if c_in == 0 {
        return;
    }
    // Each filter's 16 values go to 16 planes: gather, per output channel, its row of each.
    let mut rows: Vec<Vec<&mut [f32]>> = (0..c_out).map(|_| Vec::with_capacity(XI)).collect();
    for plane in u.chunks_mut(c_out * c_in) {
        for (k, row) in plane.chunks_mut(c_in).enumerate() {
            rows[k].push(row);
        }
    }
    rows.into_par_iter()
        .zip(weight.par_chunks(c_in * 9))
        .for_each(|(mut rows, filters)| {
            // `LANES` input channels at a time: their taps side by side, transformed as
            // vectors, each of the 16 results stored as a run of `LANES` channels.
            for (c0, group) in (0..c_in).step_by(LANES).zip(filters.chunks(9 * LANES)) {
                let n = group.len() / 9;
                let mut taps = [[0f32; LANES]; 9];
                for (j, g) in group.chunks_exact(9).enumerate() {
                    for (tap, &v) in taps.iter_mut().zip(g) {
                        tap[j] = v;
                    }
                }
                if n == LANES {
                    // A constant length: each store is a vector move (the shared path below
                    // compiled to `memcpy` calls, ~10 % of a 1280-channel layer's time).
                    transform_lanes(&taps, |xi, values| {
                        rows[xi][c0..c0 + LANES].copy_from_slice(values)
                    });
                } else {
                    transform_lanes(&taps, |xi, values| {
                        rows[xi][c0..c0 + n].copy_from_slice(&values[..n])
                    });
                }
            }
        });
}

type Lanes = [f32; LANES];

/// `G g Gᵀ` for `LANES` 3×3 filters (tap t of filter j at `taps[t][j]`, taps row-major),
/// G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]: `store(ξ, values)` receives value
/// ξ = 4r + q of each filter.
#[inline(always)]
fn transform_lanes(taps: &[Lanes; 9], mut store: impl FnMut(usize, &Lanes)) {
    for r in 0..4 {
        // Row r of G g, column by column.
        let gg: [Lanes; 3] =
            std::array::from_fn(|col| g_row(r, &taps[col], &taps[3 + col], &taps[6 + col]));
        for q in 0..4 {
            store(4 * r + q, &g_row(q, &gg[0], &gg[1], &gg[2]));
        }
    }
}

/// Row `r` of G · (a, b, c)ᵀ, lane by lane.
#[inline(always)]
fn g_row(r: usize, a: &Lanes, b: &Lanes, c: &Lanes) -> Lanes {
    match r {
        0 => *a,
        1 => std::array::from_fn(|j| 0.5 * (a[j] + b[j] + c[j])),
        2 => std::array::from_fn(|j| 0.5 * (a[j] - b[j] + c[j])),
        _ => *c,
    }
}

/// One image: `x` [c_in, h/up, w/up] (stored before upsampling), `u` from `with_filters`
/// → `y` [c_out, h, w]; `accumulate`: add to what `y` holds.
pub(super) fn conv_image(g: &Geometry, x: &[f32], u: &[f32], y: &mut [f32], accumulate: bool) {
    assert!(
        u.len() == g.c_out * XI * g.c_in && y.len() == g.c_out * g.ho * g.wo,
        "winograd: buffers of another layer"
    );
    let tiles = g.ho.div_ceil(2) * g.wo.div_ceil(2);
    let out = SharedOut {
        ptr: y.as_mut_ptr(),
        len: y.len(),
    };
    let group = |p: usize| {
        let first = p * GROUP;
        let work = Group {
            g,
            x,
            u,
            out: &out,
            first,
            n: GROUP.min(tiles - first),
            accumulate,
        };
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => work.run(&mut scratch),
            // Re-entered on this thread (see conv's COLUMNS): a buffer of its own.
            Err(_) => work.run(&mut Scratch::default()),
        });
    };
    (0..tiles.div_ceil(GROUP)).into_par_iter().for_each(group);
}

/// A task's buffers, kept between calls (see conv's COLUMNS): the transformed inputs, one
/// single-panel operand per ξ, and the 16 products [ξ][c_out][GROUP].
struct Scratch {
    v: [PackedB; XI],
    m: Vec<f32>,
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            v: std::array::from_fn(|_| PackedB::with_width(GROUP)),
            m: Vec::new(),
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The output, written by tasks that own disjoint tiles of it.
struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// Safety: each task writes only the output pixels of its own tiles (`Group::store`), and the
// output is borrowed mutably for the whole of `conv_image`.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// `len` values from `start`.
    ///
    /// # Safety
    /// No other reference to those values may be live while the slice is.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(
            start + len <= self.len,
            "winograd: output outside the image"
        );
        std::slice::from_raw_parts_mut(self.ptr.add(start), len)
    }
}

/// Tiles `first .. first + n` (row-major over the ⌈h/2⌉ × ⌈w/2⌉ tiles) of one image.
struct Group<'a> {
    g: &'a Geometry,
    x: &'a [f32],
    u: &'a [f32],
    out: &'a SharedOut,
    first: usize,
    n: usize,
    accumulate: bool,
}

/// Consecutive tiles of one tile row: tile row `ty`, columns `tx0 .. tx0 + len`, which are
/// columns `j .. j + len` of the group's panels.
#[derive(Clone, Copy)]
struct Run {
    ty: usize,
    tx0: usize,
    j: usize,
    len: usize,
}

impl Group<'_> {
    fn run(&self, s: &mut Scratch) {
        let (c_in, c_out) = (self.g.c_in, self.g.c_out);
        for v in &mut s.v {
            v.resize(c_in, self.n);
        }
        self.transform_inputs_simd(&mut s.v);
        s.m.resize(XI * c_out * GROUP, 0.0);
        for (xi, v) in s.v.iter().enumerate() {
            gemm_packed(
                MatRef::rows(&self.u[xi * c_out * c_in..], c_out, c_in, c_in),
                v,
                MatMut::rows(&mut s.m[xi * c_out * GROUP..], c_out, self.n, GROUP),
                false,
                false,
            );
        }
        self.transform_outputs_simd(&s.m);
    }

    /// The transforms compiled for the widest vectors the CPU has (like gemm's own kernels):
    /// they only add, subtract and copy, so every build gives the same values.
    fn transform_inputs_simd(&self, v: &mut [PackedB; XI]) {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                // Safety: the feature was just detected.
                return unsafe { self.transform_inputs_avx512(v) };
            }
            if is_x86_feature_detected!("avx2") {
                // Safety: as above.
                return unsafe { self.transform_inputs_avx2(v) };
            }
        }
        self.transform_inputs(v)
    }

    fn transform_outputs_simd(&self, m: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                // Safety: the feature was just detected.
                return unsafe { self.transform_outputs_avx512(m) };
            }
            if is_x86_feature_detected!("avx2") {
                // Safety: as above.
                return unsafe { self.transform_outputs_avx2(m) };
            }
        }
        self.transform_outputs(m)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn transform_inputs_avx512(&self, v: &mut [PackedB; XI]) {
        self.transform_inputs(v)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn transform_inputs_avx2(&self, v: &mut [PackedB; XI]) {
        self.transform_inputs(v)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn transform_outputs_avx512(&self, m: &[f32]) {
        self.transform_outputs(m)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn transform_outputs_avx2(&self, m: &[f32]) {
        self.transform_outputs(m)
    }

    /// The group's tiles, one tile row's run at a time.
    fn runs(&self) -> impl Iterator<Item = Run> + '_ {
        let tiles_w = self.g.wo.div_ceil(2);
        let mut j = 0;
        std::iter::from_fn(move || {
            if j == self.n {
                return None;
            }
            let t = self.first + j;
            let (ty, tx0) = (t / tiles_w, t % tiles_w);
            let len = (tiles_w - tx0).min(self.n - j);
            let run = Run { ty, tx0, j, len };
            j += len;
            Some(run)
        })
    }

    /// `V = Bᵀ d B` of every tile and input channel into row c of panel ξ, with
    /// Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]].
    #[inline(always)]
    fn transform_inputs(&self, v: &mut [PackedB; XI]) {
        let g = self.g;
        let stored = (g.h / g.up) * (g.w / g.up);
        let mut panels = v.each_mut().map(|p| p.only_panel_mut());
        for c in 0..g.c_in {
            let plane = &self.x[c * stored..(c + 1) * stored];
            for run in self.runs() {
                let mut lines = [[[0f32; GROUP + 1]; 2]; 4];
                for (r, line) in lines.iter_mut().enumerate() {
                    let iy = (2 * run.ty + r) as isize - 1;
                    tile_row(g, plane, iy, run, line);
                }
                let cols = run.j..run.j + run.len;
                for q in 0..4 {
                    // Column q of d B for the four rows, then Bᵀ over the rows.
                    let [r0, r1, r2, r3] = lines.each_ref().map(|l| row_transform(q, l));
                    let [p0, p1, p2, p3] = [0, 4, 8, 12].map(|a| a + q);
                    combine(&mut panels[p0].row(c)[cols.clone()], &r0, &r2, |x, y| x - y);
                    combine(&mut panels[p1].row(c)[cols.clone()], &r1, &r2, |x, y| x + y);
                    combine(&mut panels[p2].row(c)[cols.clone()], &r2, &r1, |x, y| x - y);
                    combine(&mut panels[p3].row(c)[cols.clone()], &r1, &r3, |x, y| x - y);
                }
            }
        }
    }

    /// `Y = Aᵀ M A` of every tile and output channel, with Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]],
    /// stored (or added) into the output's 2×2 blocks, cut at the image's edge.
    #[inline(always)]
    fn transform_outputs(&self, m: &[f32]) {
        let g = self.g;
        let plane = g.ho * g.wo;
        for k in 0..g.c_out {
            for run in self.runs() {
                let at = |xi: usize| &m[(xi * g.c_out + k) * GROUP + run.j..][..run.len];
                // Aᵀ M over the tile's rows: s[i][q][t].
                let mut s = [[[0f32; GROUP]; 4]; 2];
                let [top, bottom] = &mut s;
                for (q, (top, bottom)) in top.iter_mut().zip(bottom).enumerate() {
                    let (m0, m1, m2, m3) = (at(q), at(4 + q), at(8 + q), at(12 + q));
                    for t in 0..run.len {
                        top[t] = m0[t] + m1[t] + m2[t];
                        bottom[t] = m1[t] - m2[t] - m3[t];
                    }
                }
                for (i, s) in s.iter().enumerate() {
                    let oy = 2 * run.ty + i;
                    if oy >= g.ho {
                        continue;
                    }
                    // ... then over its columns: the output row's (left, right) pairs.
                    let mut pairs = [[0f32; 2]; GROUP];
                    for (t, p) in pairs.iter_mut().enumerate() {
                        *p = [s[0][t] + s[1][t] + s[2][t], s[1][t] - s[2][t] - s[3][t]];
                    }
                    let ox0 = 2 * run.tx0;
                    let width = (2 * run.len).min(g.wo - ox0);
                    let values = &pairs.as_flattened()[..width];
                    // Safety: these pixels belong to this group's tiles only.
                    let dst = unsafe { self.out.slice(k * plane + oy * g.wo + ox0, width) };
                    if self.accumulate {
                        dst.iter_mut().zip(values).for_each(|(d, v)| *d += v);
                    } else {
                        dst.copy_from_slice(values);
                    }
                }
            }
        }
    }
}

/// Row `iy` of the run's 4×4 tiles as even and odd columns: `line[0][u]`, `line[1][u]` = the
/// input at columns 2(tx0 + u) − 1 and 2(tx0 + u), u ≤ len (0 in the padding; read through
/// the nearest-neighbour upsampling). `line` arrives zeroed.
#[inline(always)]
fn tile_row(g: &Geometry, plane: &[f32], iy: isize, run: Run, line: &mut [[f32; GROUP + 1]; 2]) {
    if iy < 0 || iy >= g.h as isize {
        return;
    }
    let sw = g.w / g.up;
    let src = &plane[(iy as usize / g.up) * sw..][..sw];
    let at = |ix: isize| {
        if ix >= 0 && ix < g.w as isize {
            src[ix as usize / g.up]
        } else {
            0.0
        }
    };
    // Tiles whose two columns both lie inside the row: tx0 + u ≥ 1 and 2(tx0 + u) ≤ w − 1.
    let lo = usize::from(run.tx0 == 0).min(run.len + 1);
    let hi = ((g.w - 1) / 2 + 1)
        .saturating_sub(run.tx0)
        .clamp(lo, run.len + 1);
    let [even, odd] = line;
    let first = run.tx0 + lo;
    match g.up {
        1 => {
            let pairs = src[2 * first - 1..2 * (run.tx0 + hi) - 1].chunks_exact(2);
            for ((e, o), p) in even[lo..hi].iter_mut().zip(&mut odd[lo..hi]).zip(pairs) {
                (*e, *o) = (p[0], p[1]);
            }
        }
        // Columns 2i − 1 and 2i of the upsampled row are stored columns i − 1 and i.
        2 => {
            even[lo..hi].copy_from_slice(&src[first - 1..run.tx0 + hi - 1]);
            odd[lo..hi].copy_from_slice(&src[first..run.tx0 + hi]);
        }
        _ => {
            for u in lo..hi {
                let ix = 2 * (run.tx0 + u) as isize - 1;
                (even[u], odd[u]) = (at(ix), at(ix + 1));
            }
        }
    }
    for u in (0..lo).chain(hi..=run.len) {
        let ix = 2 * (run.tx0 + u) as isize - 1;
        (even[u], odd[u]) = (at(ix), at(ix + 1));
    }
}

/// `dst[t] = f(x[t], y[t])`.
#[inline(always)]
fn combine(dst: &mut [f32], x: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32) {
    for ((d, &x), &y) in dst.iter_mut().zip(x).zip(y) {
        *d = f(x, y);
    }
}

/// Column `q` of `d B` for one row of each tile, from its even and odd columns: the row of
/// tile t is (even[t], odd[t], even[t + 1], odd[t + 1]).
#[inline(always)]
fn row_transform(q: usize, line: &[[f32; GROUP + 1]; 2]) -> [f32; GROUP] {
    let (e, o) = (&line[0], &line[1]);
    let mut out = [0f32; GROUP];
    match q {
        0 => (0..GROUP).for_each(|t| out[t] = e[t] - e[t + 1]),
        1 => (0..GROUP).for_each(|t| out[t] = o[t] + e[t + 1]),
        2 => (0..GROUP).for_each(|t| out[t] = e[t + 1] - o[t]),
        _ => (0..GROUP).for_each(|t| out[t] = o[t] - o[t + 1]),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 1-D identity behind the 2-D one, on one row: F(2, 3) gives the two outputs of a
    /// 3-tap correlation exactly (small integers).
    #[test]
    fn one_dimensional_minimal_filtering() {
        let d = [1.0, -2.0, 3.0, 5.0];
        let g = [2.0, -1.0, 4.0];
        // G g, Bᵀ d, then Aᵀ of their product.
        let gg = [
            g[0],
            0.5 * (g[0] + g[1] + g[2]),
            0.5 * (g[0] - g[1] + g[2]),
            g[2],
        ];
        let line = {
            let mut l = [[0f32; GROUP + 1]; 2];
            (l[0][0], l[1][0], l[0][1], l[1][1]) = (d[0], d[1], d[2], d[3]);
            l
        };
        let bd: [f32; 4] = std::array::from_fn(|q| row_transform(q, &line)[0]);
        let m: Vec<f32> = (0..4).map(|i| gg[i] * bd[i]).collect();
        let y = [m[0] + m[1] + m[2], m[1] - m[2] - m[3]];
        let want = [
            d[0] * g[0] + d[1] * g[1] + d[2] * g[2],
            d[1] * g[0] + d[2] * g[1] + d[3] * g[2],
        ];
        assert_eq!(y, want);
    }
}
