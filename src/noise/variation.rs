//! Variation seeds: the noise of a second seed mixed into every draw by spherical linear
//! interpolation (Shoemake 1985), so an image can move smoothly from seed A (strength 0) to
//! seed B (strength 1).
//!
//! AUTOMATIC1111 mixes only the initial latent, so with an ancestral sampler its strength 1 is
//! not seed B (the later draws still come from A). Here every draw the sampler makes is mixed the
//! same way, so strength 1 reproduces seed B exactly, for every sampler.

use super::NoiseSource;

pub(crate) struct VariationNoise {
    base: Box<dyn NoiseSource>,
    variation: Box<dyn NoiseSource>,
    strength: f64,
}

impl VariationNoise {
    pub(crate) fn new(
        base: Box<dyn NoiseSource>,
        variation: Box<dyn NoiseSource>,
        strength: f64,
    ) -> Self {
        Self {
            base,
            variation,
            strength,
        }
    }
}

impl NoiseSource for VariationNoise {
    /// One draw from each stream (so both stay in step), mixed.
    fn randn(&mut self, n: usize) -> Vec<f32> {
        let a = self.base.randn(n);
        let b = self.variation.randn(n);
        slerp(self.strength, &a, &b)
    }
}

/// Spherical interpolation of two whole draws, treated as one vector each:
/// `sin((1−t)ω)/sin ω · a + sin(tω)/sin ω · b` with `cos ω = a·b / (|a||b|)`, which keeps the
/// result's norm near that of unit-variance noise (a linear mix would shrink it). Nearly
/// parallel draws (cos ω > 0.9995) mix linearly, as A1111's `slerp` does. The weights are
/// computed in f64 (the only libm calls: acos, sin), each value once rounded to f32;
/// t = 0 and t = 1 return `a` and `b` exactly.
pub(crate) fn slerp(t: f64, a: &[f32], b: &[f32]) -> Vec<f32> {
    if t <= 0.0 {
        return a.to_vec();
    }
    if t >= 1.0 {
        return b.to_vec();
    }
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let cos = (dot / (norm(a) * norm(b))).clamp(-1.0, 1.0);
    let (wa, wb) = if !cos.is_finite() || cos > 0.9995 {
        (1.0 - t, t)
    } else {
        let omega = cos.acos();
        let so = omega.sin();
        (((1.0 - t) * omega).sin() / so, (t * omega).sin() / so)
    };
    a.iter()
        .zip(b)
        .map(|(x, y)| (wa * f64::from(*x) + wb * f64::from(*y)) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::RngKind;

    #[test]
    fn endpoints_are_exactly_the_two_seeds_for_every_draw() {
        for rng in RngKind::ALL {
            for (t, want_seed) in [(0.0, 1), (1.0, 2)] {
                let mut mixed = VariationNoise::new(rng.source(1), rng.source(2), t);
                let mut plain = rng.source(want_seed);
                for n in [64, 16, 5, 64] {
                    assert_eq!(mixed.randn(n), plain.randn(n), "{rng} t={t} n={n}");
                }
            }
        }
    }

    #[test]
    fn halfway_differs_from_both_and_keeps_unit_variance() {
        let (a, b) = (
            RngKind::Chacha.source(1).randn(4096),
            RngKind::Chacha.source(2).randn(4096),
        );
        let m = slerp(0.5, &a, &b);
        assert_ne!(m, a);
        assert_ne!(m, b);
        let var = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64;
        // Independent normals are nearly orthogonal, so slerp keeps the norm (a linear mix at
        // t = 0.5 would halve the variance).
        assert!((var(&m) - 1.0).abs() < 0.1, "variance {}", var(&m));
        // Hand check of the weights for orthogonal unit vectors: sin(π/4)/sin(π/2) each.
        let m = slerp(0.5, &[1.0, 0.0], &[0.0, 1.0]);
        let w = std::f64::consts::FRAC_1_SQRT_2 as f32;
        assert_eq!(m, vec![w, w]);
    }
}
