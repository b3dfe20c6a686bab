//! Branch-free f32 approximations of exp and erf that vectorise inside a loop, where the
//! standard library's calls into libm stay scalar: the softmax of `sdpa` and the GELU of
//! `geglu` each evaluate one per activation (hundreds of millions per UNet step). Both are
//! within 2 f32 ulp (exp) or 5e-7 absolute (erf) of the exact function; the tests check
//! them against `std`'s.

/// e^x for x ≤ 0 (a shifted softmax argument), branch-free so loops over it vectorise.
/// Cephes' `expf` (S. Moshier, cephes/single/expf.c): x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split
/// into two parts for an exact product), e^r by its degree-7 minimax polynomial, 2^n put into
/// the exponent bits. Relative error ≤ 2 ulp on [−87, 0]; below −87 the result is 0 (the
/// softmax weight of such a score is below f32's normal range anyway).
#[inline(always)]
pub fn exp_approx(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer without a rounding op.
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // Cephes: 5.0000001201e-1, which rounds to 0.5 in f32
    let er = p * r * r + r + 1.0;
    // 2^n: t = 1.5·2^23 + n exactly, so n is the difference of the bit patterns (integer ops
    // only: a float-to-int `as` would not vectorise). n ∈ [−126, 0], so n + 127 is a valid
    // biased exponent.
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    let pow2 = f32::from_bits(n_bits.wrapping_add(127) << 23);
    er * pow2
}

/// erf(x), Abramowitz & Stegun 7.1.26: erf(x) = 1 − (a₁t + a₂t² + a₃t³ + a₄t⁴ + a₅t⁵)·e^(−x²) with
/// t = 1 / (1 + p·|x|), odd in x; absolute error ≤ 1.5e-7 in exact arithmetic (Handbook of
/// Mathematical Functions, 1964, §7.1.26), ≤ 5e-7 evaluated in f32.
#[inline(always)]
pub fn erf_approx(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_72,
        1.421_413_8,
        -1.453_152_1,
        1.061_405_4,
    ];
    // From |x| = 4 on, poly·e^(−x²) < 1.6e-8, under half an ulp of 1, so the result is exactly
    // ±1; clamping there gives the same bits and keeps poly·e^(−x²) out of f32's subnormal range
    // (from |x| ≈ 9.3 on), where each multiply takes a microcode assist on Intel cores (measured
    // on a Xeon: GEGLU over large gate values ran 5× slower).
    let ax = x.abs().min(4.0);
    let t = 1.0 / (1.0 + P * ax);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let y = 1.0 - poly * exp_approx(-ax * ax);
    y.copysign(x)
}

/// SiLU, x·σ(x) = x / (1 + e^−x) (Elfwing et al. 2018; torch `F.silu`), branch-free so loops
/// over it vectorise: with e = e^−|x| ≤ 1 (in `exp_approx`'s range), σ(x) = 1 / (1 + e) for
/// x ≥ 0 and e / (1 + e) below. Within a few f32 ulp of the exact function for x ≥ −87; below,
/// where the result is under 1e-35, `exp_approx`'s clamp at −87 leaves a tiny negative value.
#[inline(always)]
pub fn silu_approx(x: f32) -> f32 {
    let e = exp_approx(-x.abs());
    let numerator = if x >= 0.0 { x } else { x * e };
    numerator / (1.0 + e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_std() {
        let mut x = -87.0f32;
        while x <= 0.0 {
            let (got, want) = (exp_approx(x), x.exp());
            let ulp = (got.to_bits() as i64 - want.to_bits() as i64).abs();
            assert!(ulp <= 2, "exp({x}) = {got}, std {want}: {ulp} ulp");
            x += 0.001_37;
        }
        assert_eq!(exp_approx(0.0), 1.0);
        // Far below the range: clamped, a tiny positive weight rather than NaN or garbage.
        assert_eq!(exp_approx(-1000.0), exp_approx(-87.0));
    }

    #[test]
    fn erf_is_within_its_bound_of_libm() {
        let mut x = -6.0f64;
        while x <= 6.0 {
            let got = erf_approx(x as f32) as f64;
            // libm's erf in f64 (what candle's `gelu_erf` calls) as the reference.
            let want = candle_core::cpu::erf::erf_f64(x);
            // A&S's 1.5e-7, plus f32 rounding in `1 − poly·e^(−x²)` (measured worst: 4.4e-7).
            assert!((got - want).abs() < 5e-7, "erf({x}) = {got}, libm {want}");
            x += 0.000_73;
        }
        assert_eq!(erf_approx(0.0), 0.0);
        // The clamp at |x| = 4 changes no value: the unclamped formula is ±1 there too.
        let mut x = 3.9f32;
        while x < 20.0 {
            let t = 1.0 / (1.0 + 0.327_591_1 * x);
            let poly = t
                * (0.254_829_6
                    + t * (-0.284_496_72
                        + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
            let unclamped = 1.0 - poly * exp_approx(-x * x);
            assert_eq!(erf_approx(x), unclamped, "erf({x})");
            assert_eq!(erf_approx(-x), -unclamped, "erf(-{x})");
            x += 0.001_9;
        }
    }

    #[test]
    fn silu_is_within_a_few_ulp_of_the_exact_function() {
        let mut x = -100.0f64;
        while x <= 100.0 {
            // The exact function at the f32 input (e^x moves 1 ulp per ulp of x).
            let x32 = x as f32 as f64;
            let got = silu_approx(x as f32);
            let want = x32 / (1.0 + (-x32).exp());
            if x >= -87.0 {
                let ulp = (want as f32).abs().max(f32::MIN_POSITIVE) * f32::EPSILON;
                let err = (got as f64 - want).abs() / ulp as f64;
                // Measured worst: 1.7 (exp's 2 ulp, the product's and the quotient's roundings).
                assert!(err <= 3.0, "silu({x}) = {got}, exact {want}: {err} ulp");
            } else {
                assert!(got <= 0.0 && got > -1e-35, "silu({x}) = {got}");
            }
            x += 0.003_7;
        }
        assert_eq!(silu_approx(0.0), 0.0);
        assert_eq!(silu_approx(f32::INFINITY), f32::INFINITY);
        assert!(silu_approx(f32::NAN).is_nan());
    }
}
