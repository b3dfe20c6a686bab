//! Winograd's minimal filtering F(m×m, 3×3), m = 2 or 4, for the 3×3, stride-1, padding-1
//! convolutions that take most of the UNet's and nearly all of the VAE's time.
//!
//! Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016): each m×m block
//! of outputs comes from the α×α input tile `d` under it (α = m + 2) as
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`. Summed over input channels, the elementwise product becomes
//! α² matrix products `M_ξ = U_ξ · V_ξ` ([c_out, c_in] · [c_in, tiles]), one per position ξ of
//! the transformed tile. Multiplies per output and input channel: 9 for the direct (im2col)
//! product, 16/4 = 4 for F(2×2, 3×3), 36/16 = 2.25 for F(4×4, 3×3).
//!
//! F(2×2)'s transforms only add, subtract and halve, so it rounds like a direct convolution;
//! F(4×4)'s (interpolation points 0, ±1, ±2, ∞) have constants up to 8 and 1/24 and round
//! ~15× more in f32 (`bench/winograd_rounding.py`: max error 3–6e-5 on unit-scale outputs
//! where F(2×2) has 2–4e-6; NNPACK and oneDNN ship it for inference). Which one a layer takes
//! is fixed by the image's size (`tiling`): F(4×4) from 32×32 pixels, where the tiles are many
//! enough for both cores; F(2×2) at 16×16 up to there, where F(4×4)'s 36 planes of filters
//! would also cost 2.25× the kept buffer.
//!
//! Per image the tiles go in groups of `GROUP` (one 32-column panel), one rayon task each, so a
//! group's transformed inputs (α² · c_in · 32 values) and products stay near the core: transform
//! the group's inputs into α² panels, run the α² products, transform the products back into the
//! output. The filters are transformed once per call, for the whole batch, into a buffer kept
//! between calls (the values are not kept: they are α²/9 of the weight's size, and memory is a
//! target too).
//!
//! Every output value is summed in one order fixed by the layer's shape (the products' order
//! over input channels, then the inverse transform's): an image computes the same alone or in a
//! batch, on any number of threads.

use super::Geometry;
#[cfg(target_arch = "x86_64")]
use crate::arch::x86_64::{avx2::loops as avx2, avx512::loops as avx512};
use crate::cpu_data::{zeros_par, SharedMut};
#[cfg(target_arch = "x86_64")]
use crate::isa::Isa;
use crate::matmul::{gemm_packed, MatMut, MatRef, PackedB, PanelMut, Start};
use rayon::prelude::*;
use std::cell::RefCell;

/// Tiles per task: the AVX-512 kernel's tile width (two tiles of the AVX2 kernel's).
const GROUP: usize = 32;
/// Most values of a transformed tile (F(4×4)'s 6×6), and most rows or columns of one (6).
const MAX_XI: usize = 36;
const MAX_ALPHA: usize = 6;

/// Smallest output (pixels) worth F(2×2)'s filter transform: below it the transform of a large
/// weight costs more than the products it saves. Measured (2 Zen 4 threads, best of 5, filters
/// transformed into the kept buffer) against the direct product: 1280 channels at 16×16 batch 2
/// 52–57 ms vs 71, batch 1 32 vs 36; 2560 → 1280 at 16×16 batch 2 100–105 vs 141; at 8×8 batch 2
/// 38 vs 18.
const F2_MIN_PIXELS: usize = 16 * 16;
/// Smallest output that takes F(4×4). Measured at 32×32, batch 2 (2 Zen 5 threads, best of
/// 5–10, binaries interleaved) against F(2×2): 640 → 640 21–24 ms vs 24–41, 1920 → 640 56–63 vs
/// 69–89, 1280 → 1280 64–84 vs 84–100. At 16×16 an image is 16 tiles, a single group (one task:
/// a core idle), and the filters would take 2.25× F(2×2)'s kept buffer; not taken there.
const F4_MIN_PIXELS: usize = 32 * 32;

/// Which minimal filtering a layer takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tiling {
    /// F(2×2, 3×3): 2×2 outputs from 4×4 tiles.
    F2,
    /// F(4×4, 3×3): 4×4 outputs from 6×6 tiles.
    F4,
}

impl Tiling {
    /// Values of a transformed tile, α².
    fn xi(self) -> usize {
        match self {
            Tiling::F2 => Group::<2>::XI,
            Tiling::F4 => Group::<4>::XI,
        }
    }
}

/// The minimal filtering of a convolution Winograd computes here, if any. Decided by the image's
/// size alone, never the batch, so that an image takes the same path (and gets the same bits)
/// alone or in a batch.
pub(super) fn tiling(g: &Geometry) -> Option<Tiling> {
    if (g.kh, g.kw, g.stride, g.pad) != (3, 3, 1, 1) {
        return None;
    }
    match g.ho * g.wo {
        p if p >= F4_MIN_PIXELS => Some(Tiling::F4),
        p if p >= F2_MIN_PIXELS => Some(Tiling::F2),
        _ => None,
    }
}

/// Input channels whose filters are transformed together, as the lanes of one vector.
const LANES: usize = 16;

thread_local! {
    /// The transformed filters, kept between calls (like conv's COLUMNS): a fresh buffer of
    /// α²/9 of a weight (105 MB for 1280 × 1280 channels and F(2×2)) was faulted in page by page
    /// on every call; that and the former one-filter-at-a-time transform took ~22 % of a
    /// 1280-channel convolution at 32×32, batch 2 (216 → 161 ms with both changed). Holds the
    /// largest layer's filters seen on this thread: for SD 1.5, 236 MB (F(4×4) of the
    /// 1280-channel upsampler convolution at 32×32).
    static FILTERS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A layer's transformed filters `U = G g Gᵀ`, laid out [ξ][c_out][c_in]: product ξ reads `U_ξ`
/// as a [c_out, c_in] matrix. (Rows α²·c_in apart, [c_out][ξ][c_in], made the product 35 %
/// slower at 512 channels: the 12 rows a micro-kernel reads at once fell in the same L1 cache
/// set.)
pub(super) struct Filters<'a> {
    tiling: Tiling,
    u: &'a [f32],
}

/// Runs `f` with the filters of `weight` [c_out, c_in, 3, 3] transformed for `tiling`, in the
/// thread's kept buffer.
pub(super) fn with_filters<R>(
    tiling: Tiling,
    weight: &[f32],
    c_out: usize,
    c_in: usize,
    f: impl FnOnce(&Filters) -> R,
) -> R {
    let len = tiling.xi() * c_out * c_in;
    let run = |u: &mut Vec<f32>| {
        if u.len() < len {
            // Every value is written by the transform: a larger buffer is made afresh (by all
            // threads, after the old one is freed) rather than grown, which would copy the old
            // values and zero the rest on this thread.
            *u = Vec::new();
            *u = zeros_par(len);
        }
        let u = &mut u[..len];
        match tiling {
            Tiling::F2 => transform_filters::<2>(weight, c_out, c_in, u),
            Tiling::F4 => transform_filters::<4>(weight, c_out, c_in, u),
        }
        f(&Filters { tiling, u })
    };
    FILTERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut u) => run(&mut u),
        // Re-entered on this thread (a convolution inside a rayon task): a buffer of its own.
        Err(_) => run(&mut Vec::new()),
    })
}

/// `U = G g Gᵀ` of F(M×M, 3×3) for every filter of `weight` [c_out, c_in, 3, 3] into `u`,
/// laid out as `Filters` says.
fn transform_filters<const M: usize>(weight: &[f32], c_out: usize, c_in: usize, u: &mut [f32]) {
    let xi = Group::<M>::XI;
    assert_eq!(
        u.len(),
        xi * c_out * c_in,
        "winograd: filters of another layer"
    );
    if c_in == 0 {
        return;
    }
    // Each filter's α² values go to α² planes: gather, per output channel, its row of each.
    let mut rows: Vec<Vec<&mut [f32]>> = (0..c_out).map(|_| Vec::with_capacity(xi)).collect();
    for plane in u.chunks_mut(c_out * c_in) {
        for (k, row) in plane.chunks_mut(c_in).enumerate() {
            rows[k].push(row);
        }
    }
    rows.into_par_iter()
        .zip(weight.par_chunks(c_in * 9))
        .for_each(|(mut rows, filters)| {
            // `LANES` input channels at a time: their taps side by side, transformed as
            // vectors, each of the α² results stored as a run of `LANES` channels.
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
                    transform_lanes::<M>(&taps, |xi, values| {
                        rows[xi][c0..c0 + LANES].copy_from_slice(values)
                    });
                } else {
                    transform_lanes::<M>(&taps, |xi, values| {
                        rows[xi][c0..c0 + n].copy_from_slice(&values[..n])
                    });
                }
            }
        });
}

type Lanes = [f32; LANES];

/// `G g Gᵀ` for `LANES` 3×3 filters (tap t of filter j at `taps[t][j]`, taps row-major):
/// `store(ξ, values)` receives value ξ = αr + q of each filter.
#[inline(always)]
fn transform_lanes<const M: usize>(taps: &[Lanes; 9], mut store: impl FnMut(usize, &Lanes)) {
    let alpha = M + 2;
    for r in 0..alpha {
        // Row r of G g, column by column.
        let gg: [Lanes; 3] =
            std::array::from_fn(|col| g_row::<M>(r, &taps[col], &taps[3 + col], &taps[6 + col]));
        for q in 0..alpha {
            store(alpha * r + q, &g_row::<M>(q, &gg[0], &gg[1], &gg[2]));
        }
    }
}

/// Row `r` of G · (a, b, c)ᵀ, lane by lane. F(2×2, 3×3):
/// G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]; F(4×4, 3×3):
/// G = [[¼, 0, 0], [−⅙, −⅙, −⅙], [−⅙, ⅙, −⅙], [1/24, 1/12, ⅙], [1/24, −1/12, ⅙], [0, 0, 1]].
#[inline(always)]
fn g_row<const M: usize>(r: usize, a: &Lanes, b: &Lanes, c: &Lanes) -> Lanes {
    const SIXTH: f32 = 1.0 / 6.0;
    const TWENTY_FOURTH: f32 = 1.0 / 24.0;
    match (M, r) {
        (2, 0) => *a,
        (2, 1) => lanes3(a, b, c, |a, b, c| 0.5 * (a + b + c)),
        (2, 2) => lanes3(a, b, c, |a, b, c| 0.5 * (a - b + c)),
        (2, _) => *c,
        (_, 0) => lanes3(a, b, c, |a, _, _| 0.25 * a),
        (_, 1) => lanes3(a, b, c, |a, b, c| -SIXTH * (a + b + c)),
        (_, 2) => lanes3(a, b, c, |a, b, c| -SIXTH * (a - b + c)),
        (_, 3) => lanes3(a, b, c, |a, b, c| TWENTY_FOURTH * (a + 2.0 * b + 4.0 * c)),
        (_, 4) => lanes3(a, b, c, |a, b, c| TWENTY_FOURTH * (a - 2.0 * b + 4.0 * c)),
        _ => *c,
    }
}

/// `f` of the lanes of `a`, `b` and `c`.
#[inline(always)]
fn lanes3(a: &Lanes, b: &Lanes, c: &Lanes, f: impl Fn(f32, f32, f32) -> f32) -> Lanes {
    std::array::from_fn(|j| f(a[j], b[j], c[j]))
}

/// How the output takes the convolution's values.
#[derive(Clone, Copy)]
struct Store<'a> {
    /// Per output channel, added to its values (the bias, a shift).
    offsets: Option<&'a [f32]>,
    /// Add to what the output holds (`(y + offset) + value`, the order of a separate pass
    /// that adds the offset first); else `y = offset + value`.
    onto: bool,
}

/// One image: `x` [c_in, h/up, w/up] (stored before upsampling), `filters` from `with_filters`
/// → `y` [c_out, h, w], plus `offsets` [c_out] when given; `onto`: add to what `y` holds.
pub(super) fn conv_image(
    g: &Geometry,
    x: &[f32],
    filters: &Filters,
    y: &mut [f32],
    offsets: Option<&[f32]>,
    onto: bool,
) {
    assert!(
        offsets.is_none_or(|o| o.len() == g.c_out),
        "winograd: offsets of another layer"
    );
    let store = Store { offsets, onto };
    match filters.tiling {
        Tiling::F2 => conv_tiles::<2>(g, x, filters.u, y, store),
        Tiling::F4 => conv_tiles::<4>(g, x, filters.u, y, store),
    }
}

/// `conv_image` with M×M output tiles.
fn conv_tiles<const M: usize>(g: &Geometry, x: &[f32], u: &[f32], y: &mut [f32], store: Store) {
    assert!(
        u.len() == g.c_out * Group::<M>::XI * g.c_in && y.len() == g.c_out * g.ho * g.wo,
        "winograd: buffers of another layer"
    );
    let tiles = g.ho.div_ceil(M) * g.wo.div_ceil(M);
    // Each task writes only the output pixels of its own tiles (`Group::transform_outputs`).
    let out = SharedMut::new(y);
    let group = |p: usize| {
        let first = p * GROUP;
        let work = Group::<M> {
            g,
            x,
            u,
            out: &out,
            first,
            n: GROUP.min(tiles - first),
            store,
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
/// single-panel operand per ξ, and the α² products [ξ][c_out][GROUP].
struct Scratch {
    v: [PackedB; MAX_XI],
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
/// Tiles `first .. first + n` (row-major over the ⌈h/M⌉ × ⌈w/M⌉ tiles) of one image.
pub(crate) struct Group<'a, const M: usize> {
    g: &'a Geometry,
    x: &'a [f32],
    u: &'a [f32],
    out: &'a SharedMut<'a>,
    first: usize,
    n: usize,
    store: Store<'a>,
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

/// Value k of one row (or column) of each tile, lane t for tile t: `tiles[k][t]`.
type TileValues<'a> = [&'a [f32; GROUP]; MAX_ALPHA];

impl<const M: usize> Group<'_, M> {
    /// Side of a (transformed) input tile, α = M + 2.
    const ALPHA: usize = M + 2;
    const XI: usize = Self::ALPHA * Self::ALPHA;

    fn run(&self, s: &mut Scratch) {
        let (c_in, c_out, xi) = (self.g.c_in, self.g.c_out, Self::XI);
        let v = &mut s.v[..xi];
        for v in v.iter_mut() {
            v.resize(c_in, self.n);
        }
        let mut panels: Vec<PanelMut> = v.iter_mut().map(|v| v.only_panel_mut()).collect();
        self.transform_inputs_simd(&mut panels);
        s.m.resize(xi * c_out * GROUP, 0.0);
        for (xi, v) in s.v[..xi].iter().enumerate() {
            gemm_packed(
                MatRef::rows(&self.u[xi * c_out * c_in..], c_out, c_in, c_in),
                v,
                MatMut::rows(&mut s.m[xi * c_out * GROUP..], c_out, self.n, GROUP),
                Start::Zero,
                false,
            );
        }
        self.transform_outputs_simd(&s.m);
    }

    /// The transforms compiled for the widest vectors the CPU has (like gemm's own kernels;
    /// `arch`): the same operations in the same order on every path, so every build gives the
    /// same values (no fused multiply-adds: they are written as separate operations).
    fn transform_inputs_simd(&self, panels: &mut [PanelMut]) {
        #[cfg(target_arch = "x86_64")]
        match Isa::get() {
            // SAFETY: `Isa::get` reports `Avx512` only where the CPU has AVX-512F.
            Isa::Avx512 => return unsafe { avx512::winograd_inputs(self, panels) },
            // SAFETY: and `Avx2` only where it has AVX2 and FMA.
            Isa::Avx2 => return unsafe { avx2::winograd_inputs(self, panels) },
            Isa::Baseline => {}
        }
        self.transform_inputs(panels)
    }

    fn transform_outputs_simd(&self, m: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        match Isa::get() {
            // SAFETY: `Isa::get` reports `Avx512` only where the CPU has AVX-512F.
            Isa::Avx512 => return unsafe { avx512::winograd_outputs(self, m) },
            // SAFETY: and `Avx2` only where it has AVX2 and FMA.
            Isa::Avx2 => return unsafe { avx2::winograd_outputs(self, m) },
            Isa::Baseline => {}
        }
        self.transform_outputs(m)
    }

    /// The group's tiles, one tile row's run at a time.
    fn runs(&self) -> impl Iterator<Item = Run> + '_ {
        let tiles_w = self.g.wo.div_ceil(M);
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

    /// `V = Bᵀ d B` of every tile and input channel into row c of panel ξ = αp + q (`b_row`).
    #[inline(always)]
    pub(crate) fn transform_inputs(&self, panels: &mut [PanelMut]) {
        let g = self.g;
        let alpha = Self::ALPHA;
        let stored = (g.h / g.up) * (g.w / g.up);
        // Every lane these hold is written before it is read (past the group's tiles: stale
        // lanes, computed on and never stored), so they are not cleared between channels.
        let mut tiles = [[[0f32; 2 * GROUP]; MAX_ALPHA]; MAX_ALPHA];
        let mut db = [[[0f32; GROUP]; MAX_ALPHA]; MAX_ALPHA];
        for c in 0..g.c_in {
            let plane = &self.x[c * stored..(c + 1) * stored];
            // Row r of every tile of the group, value k of tile j at tiles[r][k][j] (runs in
            // order, each writing GROUP lanes from its first: the next run overwrites the
            // lanes past a run's end) ...
            for run in self.runs() {
                for (r, row) in tiles.iter_mut().take(alpha).enumerate() {
                    let iy = (M * run.ty + r) as isize - 1;
                    tile_row::<M>(g, plane, iy, run, row);
                }
            }
            // ... column q of d B for each row r, at db[q][r] ...
            for (r, row) in tiles.iter().take(alpha).enumerate() {
                let row = row.each_ref().map(|k| k[..GROUP].try_into().unwrap());
                for (q, column) in db.iter_mut().take(alpha).enumerate() {
                    b_row::<M>(q, row, &mut column[r]);
                }
            }
            // ... then Bᵀ over the rows, into whole panel rows.
            for (q, column) in db.iter().take(alpha).enumerate() {
                let column = column.each_ref();
                for p in 0..alpha {
                    let dst = panels[alpha * p + q].padded_row(c).try_into();
                    b_row::<M>(p, column, dst.expect("winograd: panels GROUP wide"));
                }
            }
        }
    }

    /// `Y = Aᵀ M A` of every tile and output channel (`a_row`), stored (or added) into the
    /// output's M×M blocks, cut at the image's edge.
    #[inline(always)]
    pub(crate) fn transform_outputs(&self, m: &[f32]) {
        let g = self.g;
        let (alpha, c_out) = (Self::ALPHA, g.c_out);
        let plane = g.ho * g.wo;
        // Written before read, as in `transform_inputs`.
        let mut s = [[[0f32; GROUP]; MAX_ALPHA]; M];
        let mut columns = [[0f32; GROUP]; M];
        for k in 0..c_out {
            let offset = self.store.offsets.map(|o| o[k]);
            let product = |xi: usize| -> &[f32; GROUP] {
                m[(xi * c_out + k) * GROUP..]
                    .first_chunk()
                    .expect("winograd: a whole group of products")
            };
            // Aᵀ M over each tile's rows: s[i][q] ...
            for q in 0..alpha {
                let column = std::array::from_fn(|r| product(alpha * r.min(alpha - 1) + q));
                for (i, s) in s.iter_mut().enumerate() {
                    a_row::<M>(i, column, &mut s[q]);
                }
            }
            for (i, s) in s.iter().enumerate() {
                // ... then over its columns: output row i of each tile, M pixels a tile.
                for (j, column) in columns.iter_mut().enumerate() {
                    a_row::<M>(j, s.each_ref(), column);
                }
                let mut pixels = [[0f32; M]; GROUP];
                for (t, pixel) in pixels.iter_mut().enumerate() {
                    for (j, v) in pixel.iter_mut().enumerate() {
                        *v = columns[j][t];
                    }
                }
                let pixels = pixels.as_flattened();
                for run in self.runs() {
                    let oy = M * run.ty + i;
                    if oy >= g.ho {
                        continue;
                    }
                    let ox0 = M * run.tx0;
                    let width = (M * run.len).min(g.wo - ox0);
                    let values = &pixels[M * run.j..][..width];
                    // SAFETY: these pixels belong to this group's tiles only, and nothing reads
                    // the output while the groups run.
                    let dst = unsafe { self.out.slice(k * plane + oy * g.wo + ox0, width) };
                    match (self.store.onto, offset) {
                        (false, None) => dst.copy_from_slice(values),
                        (false, Some(b)) => {
                            dst.iter_mut().zip(values).for_each(|(d, v)| *d = b + v)
                        }
                        (true, None) => dst.iter_mut().zip(values).for_each(|(d, v)| *d += v),
                        (true, Some(b)) => dst
                            .iter_mut()
                            .zip(values)
                            .for_each(|(d, v)| *d = (*d + b) + v),
                    }
                }
            }
        }
    }
}

/// Row `iy` of the run's tiles: `tiles[k][j + u]` = value k of tile u's row, the input at
/// column M(tx0 + u) − 1 + k (0 in the padding; read through the nearest-neighbour
/// upsampling), for u < GROUP (past `len`: whatever the columns there hold).
#[inline(always)]
fn tile_row<const M: usize>(
    g: &Geometry,
    plane: &[f32],
    iy: isize,
    run: Run,
    tiles: &mut [[f32; 2 * GROUP]; MAX_ALPHA],
) {
    let lanes = run.j..run.j + GROUP;
    if iy < 0 || iy >= g.h as isize {
        tiles.iter_mut().for_each(|k| k[lanes.clone()].fill(0.0));
        return;
    }
    let sw = g.w / g.up;
    let src = &plane[(iy as usize / g.up) * sw..][..sw];
    // The run's columns from M·tx0 − 1 in a row of their own, padding and upsampling
    // resolved, then apart into phases, then into the tiles' values: passes that each
    // vectorise (one value at a time straight into the tiles, the scattered stores and the
    // vector loads stalled behind them were the input transform's largest cost).
    let mut row = [0f32; MAX_ROW];
    let first = (M * run.tx0) as isize - 1;
    let len = M * run.len + 2;
    let inside = first.max(0) as usize..((first + len as isize) as usize).min(g.w);
    let dst = &mut row[(inside.start as isize - first) as usize..][..inside.len()];
    match g.up {
        1 => dst.copy_from_slice(&src[inside]),
        up => dst
            .iter_mut()
            .zip(inside)
            .for_each(|(d, x)| *d = src[x / up]),
    }
    let mut phases = [[0f32; GROUP + 1]; M];
    for (u, values) in row.chunks_exact(M).take(GROUP + 1).enumerate() {
        for (phase, &v) in phases.iter_mut().zip(values) {
            phase[u] = v;
        }
    }
    // Values M and M + 1 of a tile are phases 0 and 1 of the next.
    for (k, values) in tiles.iter_mut().take(M + 2).enumerate() {
        let (phase, next) = (k % M, k / M);
        values[lanes.clone()].copy_from_slice(&phases[phase][next..next + GROUP]);
    }
}

/// Columns of a run's row: M(GROUP + 1) for M = 4.
const MAX_ROW: usize = 4 * (GROUP + 1);

/// Row `p` of Bᵀ applied to the values `d` of each tile (a row of d for d B, a column of d B
/// for Bᵀ (d B)). F(2×2, 3×3): Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]];
/// F(4×4, 3×3): Bᵀ = [[4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0],
/// [0, −2, −1, 2, 1, 0], [0, 2, −1, −2, 1, 0], [0, 4, 0, −5, 0, 1]].
#[inline(always)]
fn b_row<const M: usize>(p: usize, d: TileValues, out: &mut [f32; GROUP]) {
    let [d0, d1, d2, d3, d4, d5] = d;
    match (M, p) {
        (2, 0) => each(out, |t| d0[t] - d2[t]),
        (2, 1) => each(out, |t| d1[t] + d2[t]),
        (2, 2) => each(out, |t| d2[t] - d1[t]),
        (2, _) => each(out, |t| d1[t] - d3[t]),
        (_, 0) => each(out, |t| (4.0 * d0[t] - 5.0 * d2[t]) + d4[t]),
        (_, 1) => each(out, |t| (d3[t] + d4[t]) - 4.0 * (d1[t] + d2[t])),
        (_, 2) => each(out, |t| (d4[t] - d3[t]) + 4.0 * (d1[t] - d2[t])),
        (_, 3) => each(out, |t| (d4[t] - d2[t]) + 2.0 * (d3[t] - d1[t])),
        (_, 4) => each(out, |t| (d4[t] - d2[t]) + 2.0 * (d1[t] - d3[t])),
        _ => each(out, |t| (4.0 * d1[t] - 5.0 * d3[t]) + d5[t]),
    }
}

/// Row `i` of Aᵀ applied to the values `d` of each tile (a column of M for Aᵀ M, a row of
/// Aᵀ M for (Aᵀ M) A). F(2×2, 3×3): Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]; F(4×4, 3×3):
/// Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0], [0, 1, −1, 8, −8, 1]].
#[inline(always)]
fn a_row<const M: usize>(i: usize, d: TileValues, out: &mut [f32; GROUP]) {
    let [d0, d1, d2, d3, d4, d5] = d;
    match (M, i) {
        (2, 0) => each(out, |t| d0[t] + d1[t] + d2[t]),
        (2, _) => each(out, |t| d1[t] - d2[t] - d3[t]),
        (_, 0) => each(out, |t| d0[t] + (d1[t] + d2[t]) + (d3[t] + d4[t])),
        (_, 1) => each(out, |t| (d1[t] - d2[t]) + 2.0 * (d3[t] - d4[t])),
        (_, 2) => each(out, |t| (d1[t] + d2[t]) + 4.0 * (d3[t] + d4[t])),
        _ => each(out, |t| ((d1[t] - d2[t]) + 8.0 * (d3[t] - d4[t])) + d5[t]),
    }
}

/// `out = [f(0), …, f(GROUP − 1)]`, written as a loop the compiler turns into vector
/// operations.
#[inline(always)]
fn each(out: &mut [f32; GROUP], f: impl Fn(usize) -> f32) {
    (0..GROUP).for_each(|t| out[t] = f(t));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 1-D identity behind the 2-D one, on one row: F(m, 3) gives the m outputs of a 3-tap
    /// correlation, exactly for F(2, 3) on small integers, to rounding for F(4, 3) (1/6, 1/24).
    #[test]
    fn one_dimensional_minimal_filtering() {
        let d = [1.0, -2.0, 3.0, 5.0, -4.0, 7.0];
        let g = [2.0, -1.0, 4.0];
        let want: Vec<f32> = (0..4)
            .map(|i| d[i] * g[0] + d[i + 1] * g[1] + d[i + 2] * g[2])
            .collect();
        assert_eq!(one_dimensional::<2>(&d, &g), want[..2]);
        let got = one_dimensional::<4>(&d, &g);
        for (got, want) in got.iter().zip(&want) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
    }

    /// Aᵀ [(G g) ⊙ (Bᵀ d)] for F(M, 3), through the kernels' own rows (lane 0).
    fn one_dimensional<const M: usize>(d: &[f32; 6], g: &[f32; 3]) -> Vec<f32> {
        let alpha = M + 2;
        let lanes = |v: f32| [v; LANES];
        let (a, b, c) = (lanes(g[0]), lanes(g[1]), lanes(g[2]));
        let rows: Vec<[f32; GROUP]> = d.iter().map(|&v| [v; GROUP]).collect();
        let values: TileValues = std::array::from_fn(|k| &rows[k]);
        let products: Vec<[f32; GROUP]> = (0..alpha)
            .map(|q| {
                let gg = g_row::<M>(q, &a, &b, &c)[0];
                let mut bd = [0f32; GROUP];
                b_row::<M>(q, values, &mut bd);
                [gg * bd[0]; GROUP]
            })
            .collect();
        let column: TileValues = std::array::from_fn(|k| &products[k.min(alpha - 1)]);
        (0..M)
            .map(|i| {
                let mut y = [0f32; GROUP];
                a_row::<M>(i, column, &mut y);
                y[0]
            })
            .collect()
    }
}
