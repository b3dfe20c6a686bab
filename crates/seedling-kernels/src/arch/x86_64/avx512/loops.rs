//! The portable loops of `norm`, `conv::winograd` and `sdpa` compiled with AVX-512F enabled,
//! so that the compiler vectorises them with 512-bit registers: the same Rust as the baseline
//! build, the same operations in the same order, so the same values (see `avx2::loops`).
//!
//! Safe functions, but calling one needs the CPU's AVX-512F: the callers ask `Isa::get` first,
//! in an `unsafe` block that says so.

use crate::conv::winograd::Group;
use crate::matmul::PanelMut;
use crate::norm::Normalise;
use crate::sdpa::{exp_columns_body, BLOCK};

/// `Normalise::group`.
#[target_feature(enable = "avx512f")]
pub(crate) fn norm_group(n: &Normalise, x: &[f32], y: &mut [f32]) {
    n.group_body(x, y)
}

/// `Normalise::group_in_place`.
#[target_feature(enable = "avx512f")]
pub(crate) fn norm_group_in_place(n: &Normalise, x: &mut [f32]) {
    n.group_in_place_body(x)
}

/// Winograd's input transforms for a group of tiles.
#[target_feature(enable = "avx512f")]
pub(crate) fn winograd_inputs<const M: usize>(g: &Group<M>, panels: &mut [PanelMut]) {
    g.transform_inputs(panels)
}

/// Winograd's output transforms for a group of tiles.
#[target_feature(enable = "avx512f")]
pub(crate) fn winograd_outputs<const M: usize>(g: &Group<M>, m: &[f32]) {
    g.transform_outputs(m)
}

/// Attention's exp of a block of score columns.
#[target_feature(enable = "avx512f")]
pub(crate) fn exp_columns(scores: &mut [f32], scale: f32) -> [f32; BLOCK] {
    exp_columns_body(scores, scale)
}
