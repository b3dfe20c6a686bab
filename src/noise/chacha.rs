//! `chacha` noise, spec version `chacha-v1` (`docs/NOISE_SPEC.md`): our default stream.
//!
//! * ChaCha20 (Bernstein 2008; RFC 8439 block function) keyed by the seed as 8 little-endian
//!   bytes followed by 24 zero bytes, nonce/stream 0, block counter starting at 0. Every bit of
//!   the 64-bit seed is in the key, and the key is the seed itself (no seed expansion), so any
//!   ChaCha20 implementation reproduces the stream.
//! * The stream defines one infinite sequence of normals `z[0], z[1], ...`: pair `p` reads the
//!   keystream words `w[4p..4p+4]`, builds two 53-bit uniforms and makes `z[2p]`, `z[2p+1]` by
//!   Box–Muller. `randn(n)` returns the next `n` values of that sequence, so call boundaries do
//!   not matter: `randn(3)` then `randn(5)` equals `randn(8)`.
//! * The Box–Muller uses our own `ln`, `sin` and `cos` in f64 built from `+ - * /` and `sqrt`
//!   only (each correctly rounded by IEEE 754, no fma, no libm), evaluated in a fixed order, so
//!   the bits are the same on every platform and compiler; each value is rounded to f32 once at
//!   the end.

use super::NoiseSource;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// 2^-53: the step of the 53-bit uniform grid.
const TWO_POW_M53: f64 = 1.0 / (1u64 << 53) as f64;

/// The seeded `chacha-v1` stream of standard normals.
#[derive(Clone)]
pub(crate) struct ChaChaNoise {
    rng: ChaCha20Rng,
    /// `z[2p+1]` when the last call ended after `z[2p]` (odd number of values used so far).
    spare: Option<f32>,
}

impl ChaChaNoise {
    /// The stream for `seed`; all 64 bits of the seed count.
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha20Rng::from_seed(chacha_key(seed)),
            spare: None,
        }
    }

    /// The next pair `(z[2p], z[2p+1])` from keystream words `w[4p..4p+4]`.
    fn next_pair(&mut self) -> (f32, f32) {
        let k1 = bits53(self.rng.next_u32(), self.rng.next_u32());
        let k2 = bits53(self.rng.next_u32(), self.rng.next_u32());
        box_muller(k1, k2)
    }
}

impl NoiseSource for ChaChaNoise {
    fn randn(&mut self, n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n);
        if n == 0 {
            return out;
        }
        if let Some(spare) = self.spare.take() {
            out.push(spare);
        }
        while n - out.len() >= 2 {
            let (a, b) = self.next_pair();
            out.push(a);
            out.push(b);
        }
        if out.len() < n {
            let (a, b) = self.next_pair();
            out.push(a);
            self.spare = Some(b);
        }
        out
    }
}

/// The 256-bit ChaCha20 key of `seed`: its 8 little-endian bytes, then 24 zero bytes.
/// (So key word 0 is the low half of the seed and key word 1 the high half.)
fn chacha_key(seed: u64) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key
}

/// The top 53 bits of the 64-bit number whose high word is `hi` (the first keystream word
/// read) and low word is `lo`: an integer uniform on [0, 2^53).
fn bits53(hi: u32, lo: u32) -> u64 {
    ((u64::from(hi) << 32) | u64::from(lo)) >> 11
}

/// Box–Muller (Box & Muller 1958) from two 53-bit integers:
/// `u1 = (k1 + 1) * 2^-53` in (0, 1] (never 0, so `ln u1` is finite; the largest radius is
/// `sqrt(106 ln 2) = 8.57`), `theta = 2 pi k2 / 2^53` in [0, 2 pi),
/// `z0 = sqrt(-2 ln u1) cos theta`, `z1 = sqrt(-2 ln u1) sin theta`, each rounded to f32 once.
fn box_muller(k1: u64, k2: u64) -> (f32, f32) {
    let u1 = (k1 + 1) as f64 * TWO_POW_M53;
    // `0.0 - x` rather than `-x`: for u1 = 1 the radius is +0.0 rather than sqrt(-0.0) = -0.0.
    let radius = (0.0 - 2.0 * ln_unit(u1)).sqrt();
    let (sin, cos) = sincos_turn(k2);
    ((radius * cos) as f32, (radius * sin) as f32)
}

/// ln 2, the f64 nearest to it.
const LN_2: f64 = std::f64::consts::LN_2;
/// sqrt 2, the f64 nearest to it.
const SQRT_2: f64 = std::f64::consts::SQRT_2;
/// Coefficients `1 / (2k + 1)`, k = 0..=11, of `atanh(s) / s = sum s^(2k) / (2k + 1)`, each a
/// correctly rounded IEEE division. 12 terms: with |s| <= 0.1716 (s^2 <= 0.02944) the first
/// term left out is below 1e-18 relative.
const ATANH_C: [f64; 12] = [
    1.0,
    1.0 / 3.0,
    1.0 / 5.0,
    1.0 / 7.0,
    1.0 / 9.0,
    1.0 / 11.0,
    1.0 / 13.0,
    1.0 / 15.0,
    1.0 / 17.0,
    1.0 / 19.0,
    1.0 / 21.0,
    1.0 / 23.0,
];

/// Natural log of `u` for a normal positive f64 (here u in [2^-53, 1]), with basic IEEE
/// operations only:
/// `u = m * 2^e` with m in (sqrt(2)/2, sqrt(2)] (exact, from the bits), then
/// `ln u = e ln 2 + 2 atanh(s)`, `s = (m - 1) / (m + 1)`, atanh by its Taylor series in s^2
/// (Horner, highest term first). Error: a few f64 ulp (about 1e-16 relative).
pub(super) fn ln_unit(u: f64) -> f64 {
    const EXP_MASK: u64 = 0x7FF0_0000_0000_0000;
    const ONE_BITS: u64 = 0x3FF0_0000_0000_0000;
    let bits = u.to_bits();
    let mut e = ((bits & EXP_MASK) >> 52) as i64 - 1023;
    let mut m = f64::from_bits((bits & !EXP_MASK) | ONE_BITS); // in [1, 2)
    if m > SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = ATANH_C[ATANH_C.len() - 1];
    for &c in ATANH_C[..ATANH_C.len() - 1].iter().rev() {
        p = p * s2 + c;
    }
    e as f64 * LN_2 + 2.0 * s * p
}

/// Factorials up to 18! are integers below 2^53, exact in f64, so `1.0 / n!` below is one
/// correctly rounded division.
const F3: f64 = 6.0;
const F5: f64 = 120.0;
const F7: f64 = 5_040.0;
const F9: f64 = 362_880.0;
const F11: f64 = 39_916_800.0;
const F13: f64 = 6_227_020_800.0;
const F15: f64 = 1_307_674_368_000.0;
const F17: f64 = 355_687_428_096_000.0;
const F2: f64 = 2.0;
const F4: f64 = 24.0;
const F6: f64 = 720.0;
const F8: f64 = 40_320.0;
const F10: f64 = 3_628_800.0;
const F12: f64 = 479_001_600.0;
const F14: f64 = 87_178_291_200.0;
const F16: f64 = 20_922_789_888_000.0;
const F18: f64 = 6_402_373_705_728_000.0;
/// Taylor coefficients of `(sin x - x) / x^3` in x^2: `(-1)^k / (2k+1)!`, k = 1..=8. On
/// |x| <= pi/4 the first term left out (x^19 / 19!) is below 1e-19.
pub(super) const SIN_C: [f64; 8] = [
    -1.0 / F3,
    1.0 / F5,
    -1.0 / F7,
    1.0 / F9,
    -1.0 / F11,
    1.0 / F13,
    -1.0 / F15,
    1.0 / F17,
];
/// Taylor coefficients of `(cos x - 1) / x^2` in x^2: `(-1)^k / (2k)!`, k = 1..=9. On
/// |x| <= pi/4 the first term left out (x^20 / 20!) is below 1e-20.
pub(super) const COS_C: [f64; 9] = [
    -1.0 / F2,
    1.0 / F4,
    -1.0 / F6,
    1.0 / F8,
    -1.0 / F10,
    1.0 / F12,
    -1.0 / F14,
    1.0 / F16,
    -1.0 / F18,
];
/// pi/2 * 2^-51 (an exact power-of-two scaling of the f64 nearest pi/2): converts a
/// quarter-turn fraction in units of 2^-51 to radians with one rounding.
const HALF_PI_SCALED: f64 = std::f64::consts::FRAC_PI_2 / (1u64 << 51) as f64;

/// `(sin theta, cos theta)` for `theta = 2 pi k / 2^53`, k in [0, 2^53).
///
/// The range reduction is exact integer arithmetic on `k` (theta is `k / 2^51` quarter turns):
/// `q = round(k / 2^51)` is the nearest quarter turn (0..=4) and `f = k - q 2^51` is in
/// [-2^50, 2^50), so `x = f * (pi/2) / 2^51` is in [-pi/4, pi/4) and `theta = q pi/2 + x`.
/// sin x and cos x come from their Taylor polynomials, then the quadrant `q mod 4` rotates them.
fn sincos_turn(k: u64) -> (f64, f64) {
    const QUARTER: i64 = 1 << 51;
    let k = k as i64;
    let q = (k + QUARTER / 2) >> 51;
    let f = k - q * QUARTER;
    let x = f as f64 * HALF_PI_SCALED;
    let x2 = x * x;

    let mut ps = SIN_C[SIN_C.len() - 1];
    for &c in SIN_C[..SIN_C.len() - 1].iter().rev() {
        ps = ps * x2 + c;
    }
    let sin_x = x + x * x2 * ps;

    let mut pc = COS_C[COS_C.len() - 1];
    for &c in COS_C[..COS_C.len() - 1].iter().rev() {
        pc = pc * x2 + c;
    }
    let cos_x = 1.0 + x2 * pc;

    match q & 3 {
        0 => (sin_x, cos_x),
        1 => (cos_x, -sin_x),
        2 => (-sin_x, -cos_x),
        _ => (-cos_x, sin_x),
    }
}

#[cfg(test)]
mod tests {
    //! Golden numbers come from two independent sources:
    //! * the ChaCha20 keystream: RFC 8439 (section 2.3.2 and appendix A.1 test vector #1);
    //! * the normals: `docs/noise/chacha_v1_reference.py`, a pure-Python ChaCha20 written from
    //!   RFC 8439 (it checks itself against the same RFC vectors) plus the chacha-v1 Box–Muller
    //!   in Python floats, written from `docs/NOISE_SPEC.md`. It also compares every value with a
    //!   libm-based Box–Muller (math.log/sin/cos): worst f64 difference 2.4e-15, and 0 of the
    //!   5 x 16384 f32 values below differ.
    use super::*;
    use sha2::{Digest, Sha256};

    fn words_le(hex: &str) -> Vec<u32> {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn keystream_matches_rfc8439_vectors() {
        // RFC 8439 A.1, test vector #1: all-zero key, nonce and block counter.
        let mut rng = ChaCha20Rng::from_seed([0u8; 32]);
        let got: Vec<u32> = (0..16).map(|_| rng.next_u32()).collect();
        let want = words_le(
            "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7\
             da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586",
        );
        assert_eq!(got, want);

        // RFC 8439 2.3.2: key 00..1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00, block 1.
        // rand_chacha's state words 12-13 are a 64-bit block counter and 14-15 the stream, so
        // the RFC's (counter = 1, nonce word 0 = 0x09000000) is block 0x09000000_00000001 and
        // its nonce words 1-2 are stream 0x4a000000.
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let mut rng = ChaCha20Rng::from_seed(key);
        rng.set_stream(0x4a00_0000);
        rng.set_word_pos(u128::from(0x0900_0000_0000_0001u64) * 16);
        let got: Vec<u32> = (0..16).map(|_| rng.next_u32()).collect();
        let want = words_le(
            "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e\
             d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn keying_is_seed_le_bytes_stream_0_counter_0() {
        let noise = ChaChaNoise::new(42);
        assert_eq!(noise.rng.get_stream(), 0);
        assert_eq!(noise.rng.get_word_pos(), 0);
        let mut key = [0u8; 32];
        key[0] = 42;
        assert_eq!(noise.rng.get_seed(), key);
        // From the Python reference ("keystream seed 42, words 0..8").
        let mut rng = noise.rng.clone();
        let got: Vec<u32> = (0..8).map(|_| rng.next_u32()).collect();
        let want = [
            0x26e5761f, 0x6ae30a51, 0x5c8b5c62, 0xb4eb7f59, 0xce2c0416, 0xb389b53d, 0xf7a882dc,
            0x2666a8a4,
        ];
        assert_eq!(got, want);
    }

    struct Golden {
        seed: u64,
        first8: [u32; 8],
        last8: [u32; 8],
        sha256: &'static str,
    }

    /// One `randn(4 * 64 * 64)` per seed, from `docs/noise/chacha_v1_reference.py`.
    const GOLDEN: [Golden; 5] = [
        Golden {
            seed: 0,
            first8: [
                0x3f32ea7f, 0xbf08b6fe, 0x3e81c7b2, 0xbf457dd2, 0x3b708c49, 0x3f99d264, 0xbe8347c6,
                0x3e1fe5bc,
            ],
            last8: [
                0xbff99d18, 0x3d45b553, 0x3c8247b3, 0xbfdd8c6f, 0x3da67f1f, 0x3df9370b, 0x3f314596,
                0xbfd6d074,
            ],
            sha256: "eff4e0d238f5e59ea6dcff0cf78e2c87e681b0e1289cf4218e234ace99b8f04b",
        },
        Golden {
            seed: 1,
            first8: [
                0xbe79b985, 0x3f96e3d9, 0xbf248d4d, 0xbe0d54f6, 0x3ed76ea1, 0x3ef7ede5, 0x3fa73e59,
                0xbf38b4ef,
            ],
            last8: [
                0xbf57d864, 0x3ceb15e6, 0x3f128f0d, 0xbf5e8f4d, 0xbf71dc7c, 0xbf9bd1d2, 0x3f894afd,
                0xbf6f82a7,
            ],
            sha256: "03b102a83d72785cc0f60aa6390f606f4e267791d399acc5e5369143132b2684",
        },
        Golden {
            seed: 42,
            first8: [
                0xbfa0303e, 0x3fbdf4fe, 0x3f24ec94, 0xbe08fbe4, 0x3fc4a34d, 0x3f9429a2, 0xbe2335bc,
                0xbe950495,
            ],
            last8: [
                0x3cb13491, 0xbf227b12, 0x3e8a1b93, 0xbfc7c7b4, 0xbfe53aea, 0xbf66efc7, 0x3cc2b693,
                0x3f75e6c5,
            ],
            sha256: "47e119041b3a3d2cc98c1a316e36f3f0681ca0601e7f77eb3474610a76f08896",
        },
        Golden {
            seed: (1 << 32) + 42,
            first8: [
                0xbfb9c9b1, 0x3e1d8797, 0x3fe69f42, 0x3fc543df, 0xbe9df8dd, 0x3f1b6b07, 0xbfeca19d,
                0xbfa5b8ab,
            ],
            last8: [
                0xbf842234, 0x3e56df61, 0x3de94e55, 0x3df7bb18, 0x3ec07c6b, 0x3fd9c7f2, 0x3f743cdd,
                0xbf8978f5,
            ],
            sha256: "55ee8bffda4f73814adca6b14edab513808dff4e3aaef45975d846c06801a9c4",
        },
        Golden {
            seed: u64::MAX,
            first8: [
                0x3fa79f5a, 0xbde44caa, 0xbe78faac, 0xbe56b8f3, 0xbf09769b, 0xbea7e48c, 0x3ff70120,
                0x3e8a788d,
            ],
            last8: [
                0xbefa2c01, 0xbf236b29, 0xbe5fc862, 0x3ec738bd, 0x3f39239e, 0x3efa36d2, 0x3ef81ee6,
                0xbf29264a,
            ],
            sha256: "9d0f6f850a6ca74b324e13951a5e82c2f0073da4bfd1f3d04cc7159911d910b0",
        },
    ];

    fn sha256_le(values: &[f32]) -> String {
        let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
        format!("{:x}", Sha256::digest(&bytes))
    }

    #[test]
    fn golden_draws_match_the_python_reference() {
        for g in &GOLDEN {
            let v = ChaChaNoise::new(g.seed).randn(4 * 64 * 64);
            let bits: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
            assert_eq!(bits[..8], g.first8, "seed {}: first 8", g.seed);
            assert_eq!(bits[bits.len() - 8..], g.last8, "seed {}: last 8", g.seed);
            assert_eq!(sha256_le(&v), g.sha256, "seed {}: sha256", g.seed);
        }
    }

    #[test]
    fn all_64_seed_bits_count() {
        let a = ChaChaNoise::new(42).randn(64);
        let b = ChaChaNoise::new((1 << 32) + 42).randn(64);
        let c = ChaChaNoise::new((1 << 63) + 42).randn(64);
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
        assert!(a.iter().zip(&c).all(|(x, y)| x != y));
        assert_ne!(GOLDEN[2].sha256, GOLDEN[3].sha256);
    }

    #[test]
    fn call_boundaries_do_not_matter() {
        let whole = ChaChaNoise::new(9).randn(41);
        let mut noise = ChaChaNoise::new(9);
        let mut parts = Vec::new();
        for n in [3, 0, 5, 1, 1, 16, 15] {
            parts.extend(noise.randn(n));
        }
        assert_eq!(parts, whole);
    }

    #[test]
    fn uniform_edges() {
        // k1 = 2^53 - 1: u1 = 1, radius +0.0 (no NaN); theta in the first quadrant: +0.0, +0.0.
        let (a, b) = box_muller((1 << 53) - 1, 12345);
        assert_eq!((a.to_bits(), b.to_bits()), (0, 0));
        // k1 = 0: u1 = 2^-53, the largest radius sqrt(106 ln 2); theta = 0.
        let (a, b) = box_muller(0, 0);
        assert_eq!(f64::from(a), (106.0 * LN_2).sqrt() as f32 as f64);
        assert_eq!(b, 0.0);
        // Exact quarter turns.
        assert_eq!(sincos_turn(0), (0.0, 1.0));
        assert_eq!(sincos_turn(1 << 51), (1.0, -0.0));
        assert_eq!(sincos_turn(1 << 52), (-0.0, -1.0));
        assert_eq!(sincos_turn(3 << 51), (-1.0, 0.0));
    }

    #[test]
    fn ln_and_sincos_are_accurate() {
        // Against the platform libm (f64::ln/sin/cos): only an accuracy bound, the golden
        // values above pin the bits. Points spread over the whole 53-bit grid.
        let mut worst_ln: f64 = 0.0;
        let mut worst_trig: f64 = 0.0;
        for i in 1..=100_000u64 {
            let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
            let u = (k + 1) as f64 * TWO_POW_M53;
            let want = u.ln();
            if want != 0.0 {
                worst_ln = worst_ln.max(((ln_unit(u) - want) / want).abs());
            }
            let (s, c) = sincos_turn(k);
            let theta = std::f64::consts::TAU * (k as f64 * TWO_POW_M53);
            worst_trig = worst_trig.max((s - theta.sin()).abs().max((c - theta.cos()).abs()));
        }
        assert!(worst_ln < 1e-15, "ln: {worst_ln:e}");
        assert!(worst_trig < 1e-15, "sin/cos: {worst_trig:e}");
        // Tiny arguments of ln (the tail of the normal) are as accurate.
        for k in 0..1000u64 {
            let u = (k + 1) as f64 * TWO_POW_M53;
            assert!(((ln_unit(u) - u.ln()) / u.ln()).abs() < 1e-15, "ln({u:e})");
        }
    }

    #[test]
    fn statistics_of_1e5_values() {
        let n = 100_000;
        let v = ChaChaNoise::new(2024).randn(n);
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        // Standard errors: mean 0.0032, std 0.0022; bounds are about 6 of them.
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var.sqrt() - 1.0).abs() < 0.015, "std {}", var.sqrt());
        // Tails: P(|z| > 3) = 0.0027, so about 270 of 1e5.
        let tails = v.iter().filter(|x| x.abs() > 3.0).count();
        assert!((170..=370).contains(&tails), "tails {tails}");
        // The halves (cos and sin) are each normal: a broken sin/cos would skew one of them.
        for half in 0..2 {
            let m = v
                .iter()
                .skip(half)
                .step_by(2)
                .map(|&x| f64::from(x))
                .sum::<f64>()
                / (n / 2) as f64;
            let positive = v.iter().skip(half).step_by(2).filter(|&&x| x > 0.0).count();
            assert!(m.abs() < 0.03, "half {half} mean {m}");
            assert!(
                (24_000..=26_000).contains(&positive),
                "half {half}: {positive}"
            );
        }
    }
}
