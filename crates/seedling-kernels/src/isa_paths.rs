//! The kernels' code paths against each other: every level this CPU has (`Isa::available`: the
//! baseline, AVX2, AVX-512) runs the same layers on the same inputs.
//!
//! The norms and GEGLU's gate are the same loops compiled for each level: the same bits on
//! every level. Everything with a product in it (convolutions direct and Winograd, linear layers
//! plain and gated, attention) gives the same bits on every level that has a micro-kernel, AVX2
//! and AVX-512 (`matmul::tiles`), so an image does not depend on which of the two a CPU has. The
//! baseline's products are the gemm crate's, summed in another order: each kernel's own tests,
//! which run at every level, hold them to candle's ops.

use crate::conv::{conv2d, Conv2d};
use crate::isa::{self, Isa};
use crate::linear::Linear;
use crate::norm::{group_norm, GroupNorm};
use crate::{geglu, sdpa};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder, VarMap};
use std::sync::Mutex;

/// The layers' outputs at one level, in a fixed order.
struct Outputs {
    /// Loops only: norm, norm + SiLU, GEGLU's gate.
    loops: Vec<Vec<f32>>,
    /// With products: convolution (direct, Winograd F(2×2), F(4×4)), linear, linear gated,
    /// attention.
    products: Vec<Vec<f32>>,
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn the_levels_give_the_same_bits() {
    let dev = Device::Cpu;
    let randn = |shape: &[usize]| Tensor::randn(0f32, 1.0, shape, &dev).unwrap();
    let map = VarMap::new();
    let vs = VarBuilder::from_varmap(&map, DType::F32, &dev);
    let pad1 = Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    let conv: Conv2d = conv2d(8, 12, 3, pad1, vs.pp("conv")).unwrap();
    let norm: GroupNorm = group_norm(4, 8, 1e-6, vs.pp("norm")).unwrap();
    // 12×12 pixels take the direct product, 20×20 F(2×2), 36×36 F(4×4).
    let images = [
        randn(&[2, 8, 12, 12]),
        randn(&[1, 8, 20, 20]),
        randn(&[1, 8, 36, 36]),
    ];
    let shifted = (&images[2] * 3.0).unwrap();
    let gate_input = (randn(&[2, 5, 2 * 37]) * 3.0).unwrap();
    // 128 outputs: halves of whole panels at every level, so the gated path runs where the
    // level has a micro-kernel.
    let (weight, bias) = (randn(&[128, 24]), randn(&[128]));
    let tokens = randn(&[2, 30, 24]);
    let (q, k, v) = (
        randn(&[2, 70, 80]),
        randn(&[2, 77, 80]),
        randn(&[2, 77, 80]),
    );

    let seen = Mutex::new(Vec::new());
    isa::each(|level| {
        let loops = vec![
            flat(&norm.forward(&shifted).unwrap()),
            flat(&norm.forward_silu(&shifted).unwrap()),
            flat(&geglu::geglu(&gate_input).unwrap()),
        ];
        // Packed for this level's panels.
        let linear = Linear::new(weight.clone(), Some(bias.clone())).unwrap();
        let mut products: Vec<Vec<f32>> = images
            .iter()
            .map(|x| flat(&conv.forward(x).unwrap()))
            .collect();
        products.push(flat(&linear.forward(&tokens).unwrap()));
        products.push(flat(&geglu::projected(&linear, &tokens).unwrap()));
        let attended = sdpa::attention(&q, &k, &v, 0.15, 2, sdpa::Scores::AsInputs).unwrap();
        products.push(flat(&attended));
        seen.lock()
            .unwrap()
            .push((level, Outputs { loops, products }));
    });
    let seen = seen.into_inner().unwrap();
    let (first, baseline) = &seen[0];
    assert_eq!(*first, Isa::Baseline);
    for (level, outputs) in &seen[1..] {
        for (i, (got, want)) in outputs.loops.iter().zip(&baseline.loops).enumerate() {
            assert!(
                got == want,
                "{level:?} loop output {i} differs from the baseline's"
            );
        }
    }
    let simd: Vec<&(Isa, Outputs)> = seen.iter().filter(|(l, _)| *l >= Isa::Avx2).collect();
    if let [(_, avx2), rest @ ..] = simd.as_slice() {
        for (level, outputs) in rest {
            for (i, (got, want)) in outputs.products.iter().zip(&avx2.products).enumerate() {
                assert!(
                    got == want,
                    "{level:?} product output {i} differs from AVX2's"
                );
            }
        }
    }
}
