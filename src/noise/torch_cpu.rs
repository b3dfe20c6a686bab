//! `torch-cpu` noise: bit-exact with `torch.Generator("cpu").manual_seed(seed)` followed by
//! `torch.randn(n, generator=g, dtype=torch.float32)`, so a seed means the same noise here as in
//! diffusers and ComfyUI run on the CPU.
//!
//! The algorithm is written down in `../shared/spec/TORCH_CPU_RANDN.md` (section numbers below
//! refer to it); it was read from ATen's `CPUGeneratorImpl.cpp`, `MT19937RNGEngine.h`,
//! `DistributionsHelper.h`, `cpu/DistributionTemplates.h` and `cpu/avx_mathfun.h`. In short:
//!
//! * mt19937 seeded with the low 32 bits of the seed (§1);
//! * a call of `n < 16` values runs torch's serial double Box–Muller, whose spare value is cached
//!   in the generator across calls (§4a);
//! * a call of `n >= 16` values runs `normal_fill`: `n` float uniforms, a 16-wide Box–Muller that
//!   pairs element `j` with `j + 8`, and a redraw of the last 16 when `16` does not divide `n`
//!   (§4b).
//!
//! For `n >= 16` torch's result depends on the ATen CPU kernel that runs. We reproduce the
//! **AVX2 kernel** (§5: the Cephes `log`/`sincos` polynomials of `avx_mathfun.h` with the fused
//! multiply-adds GCC contracts them into), written as portable scalar Rust with `f32::mul_add`
//! (a correctly rounded fma on every platform), so the values are the same on every host and
//! match torch on AVX2 machines — the common case (most x86-64 desktops and cloud CPUs).
//! torch's scalar kernel (AVX-512 hosts, aarch64, `ATEN_CPU_CAPABILITY=default`) uses libm and
//! differs from it by 1-2 ulp in about a third of the values.
//!
//! The serial path (`n < 16`) needs the double-precision `log1p`, `sin` and `cos` of the C
//! library, exactly as torch calls them; Rust's `f64::ln_1p/sin/cos` call the same functions, so
//! those values are bit-exact where the libm agrees with glibc's (the vectors were made with
//! glibc). Another platform's libm may differ in the last bit of a double, which changes the f32
//! result only when the value lies within that bit of an f32 rounding boundary (rarely).

use super::NoiseSource;

/// `normal_fill` works on blocks of this many values (ATen `normal_fill_16`).
const BLOCK: usize = 16;
/// Inside a block, element `j` pairs with `j + HALF` (§4b).
const HALF: usize = BLOCK / 2;

/// Standard MT19937 (Matsumoto & Nishimura 1998), as `at::mt19937` implements it (§1): the same
/// raw output as C++ `std::mt19937` and numpy's `RandomState`.
#[derive(Clone)]
struct Mt19937 {
    state: [u32; Self::N],
    /// Next word of `state` to temper and return; `N` means "twist first".
    index: usize,
}

impl Mt19937 {
    const N: usize = 624;
    const M: usize = 397;
    const MATRIX_A: u32 = 0x9908_B0DF;
    const UPPER_MASK: u32 = 0x8000_0000;
    const LOWER_MASK: u32 = 0x7FFF_FFFF;

    /// `init_genrand`: `mt[i] = 1812433253 * (mt[i-1] ^ (mt[i-1] >> 30)) + i (mod 2^32)`.
    fn new(seed: u32) -> Self {
        let mut state = [0u32; Self::N];
        state[0] = seed;
        for i in 1..Self::N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        // The first twist happens before the first output.
        Self {
            state,
            index: Self::N,
        }
    }

    /// Regenerates all N words (the "twist" of the reference `genrand_int32`).
    fn twist(&mut self) {
        for i in 0..Self::N {
            let y = (self.state[i] & Self::UPPER_MASK)
                | (self.state[(i + 1) % Self::N] & Self::LOWER_MASK);
            let mag = if y & 1 == 0 { 0 } else { Self::MATRIX_A };
            self.state[i] = self.state[(i + Self::M) % Self::N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// Next tempered 32-bit output.
    fn next_u32(&mut self) -> u32 {
        if self.index >= Self::N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9D2C_5680;
        y ^= (y << 15) & 0xEFC6_0000;
        y ^= y >> 18;
        y
    }
}

/// The torch CPU generator: the mt19937 engine plus the cached second value of the serial
/// double Box–Muller (`next_double_normal_sample`), which lives in the generator across calls.
#[derive(Clone)]
pub(crate) struct TorchCpuNoise {
    mt: Box<Mt19937>,
    cached_normal: Option<f64>,
}

impl TorchCpuNoise {
    /// `torch.Generator("cpu").manual_seed(seed)`. torch keeps only the low 32 bits of the seed
    /// on the CPU (§1): seeds 42 and 2^32 + 42 give the same stream. A negative Python seed `s`
    /// is `s mod 2^64` here (`-1` is `u64::MAX`).
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            mt: Box::new(Mt19937::new(seed as u32)),
            cached_normal: None,
        }
    }

    /// `random()`: one raw 32-bit output (§2).
    fn random(&mut self) -> u32 {
        self.mt.next_u32()
    }

    /// `random64()`: two outputs, the first one is the high word (§2).
    fn random64(&mut self) -> u64 {
        let hi = u64::from(self.random());
        let lo = u64::from(self.random());
        (hi << 32) | lo
    }

    /// Float uniform in [0, 1) on a 2^-24 grid, one u32 (§3; also exactly `torch.rand` f32).
    fn float_uniform(&mut self) -> f32 {
        const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
        (self.random() & 0x00FF_FFFF) as f32 * SCALE
    }

    /// Double uniform in [0, 1) on a 2^-53 grid, two u32 (§3).
    fn double_uniform(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.random64() & ((1u64 << 53) - 1)) as f64 * SCALE
    }

    /// One value of `at::normal_distribution<double>` with mean 0, std 1 (§4a): a double
    /// Box–Muller that returns `r cos(theta)` and caches `r sin(theta)` for the next value.
    fn serial_normal(&mut self) -> f64 {
        if let Some(value) = self.cached_normal.take() {
            return value;
        }
        let u1 = self.double_uniform();
        let u2 = self.double_uniform();
        let radius = (-2.0 * (-u2).ln_1p()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u1;
        self.cached_normal = Some(radius * theta.sin());
        radius * theta.cos()
    }

    /// `normal_fill` for float32 (§4b): `n` uniforms, Box–Muller on each full block of 16, and
    /// if `n % 16 != 0` a redraw of the last 16 positions from 16 fresh uniforms.
    fn normal_fill_f32(&mut self, n: usize) -> Vec<f32> {
        debug_assert!(n >= BLOCK);
        let mut data: Vec<f32> = (0..n).map(|_| self.float_uniform()).collect();
        for block in data.chunks_exact_mut(BLOCK) {
            box_muller16_avx2(block.try_into().expect("chunks_exact gives 16"));
        }
        if !n.is_multiple_of(BLOCK) {
            let tail = &mut data[n - BLOCK..];
            for value in tail.iter_mut() {
                *value = self.float_uniform();
            }
            box_muller16_avx2(tail.try_into().expect("tail is 16 long"));
        }
        data
    }
}

impl NoiseSource for TorchCpuNoise {
    /// One `torch.randn(n, dtype=torch.float32, generator=g)` call.
    fn randn(&mut self, n: usize) -> Vec<f32> {
        if n < BLOCK {
            // §4a: the double value rounded to f32 (round to nearest even).
            (0..n).map(|_| self.serial_normal() as f32).collect()
        } else {
            self.normal_fill_f32(n)
        }
    }
}

/// `normal_fill_16` on the AVX2 kernel (§4b, §5): pairs element `j` with `j + 8`;
/// `u1 = 1 - d[j]` is in (0, 1] so the log is finite.
fn box_muller16_avx2(d: &mut [f32; BLOCK]) {
    for j in 0..HALF {
        let u1 = 1.0f32 - d[j];
        let u2 = d[j + HALF];
        let radius = (-2.0f32 * cephes_log_avx2(u1)).sqrt();
        let theta = TWO_PI_F32 * u2;
        let (sin, cos) = cephes_sincos_avx2(theta);
        // `fma(n, std, mean)` with std = 1, mean = 0: turns -0.0 into +0.0, nothing else.
        d[j] = (radius * cos).mul_add(1.0, 0.0);
        d[j + HALF] = (radius * sin).mul_add(1.0, 0.0);
    }
}

/// `(float)(2.0f * c10::pi<double>)` (§5 table): 0x40C90FDB.
const TWO_PI_F32: f32 = std::f32::consts::TAU;

// Cephes single-precision constants of `avx_mathfun.h` (§5 table), given by their f32 bit
// patterns; the decimal literal of the C source is in each comment (the tests check that each
// literal rounds to these bits).
/// sqrt(1/2): 0.707106781186547524.
const SQRTHF: f32 = f32::from_bits(0x3F35_04F3);
/// `cephes_log_p0..p8`: 7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1,
/// 1.4249322787E-1, -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1.
const LOG_P: [f32; 9] = [
    f32::from_bits(0x3D90_21BB),
    f32::from_bits(0xBDEB_D1B8),
    f32::from_bits(0x3DEF_251A),
    f32::from_bits(0xBDFE_5D4F),
    f32::from_bits(0x3E11_E9BF),
    f32::from_bits(0xBE2A_AE50),
    f32::from_bits(0x3E4C_CEAC),
    f32::from_bits(0xBE7F_FFFC),
    f32::from_bits(0x3EAA_AAAA),
];
/// `cephes_log_q1`: -2.12194440e-4 (ln 2 = Q2 - Q1 split so that e * Q2 is exact).
const LOG_Q1: f32 = f32::from_bits(0xB95E_8083);
/// `cephes_log_q2`: 0.693359375.
const LOG_Q2: f32 = f32::from_bits(0x3F31_8000);
/// `cephes_FOPI` = 4/pi: 1.27323954473516.
const FOPI: f32 = f32::from_bits(0x3FA2_F983);
/// `minus_cephes_DP1..DP3`: -pi/4 in three parts for the extended-precision reduction
/// x - j*pi/4: -0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8.
const DP1: f32 = f32::from_bits(0xBF49_0000);
const DP2: f32 = f32::from_bits(0xB97D_A000);
const DP3: f32 = f32::from_bits(0xB322_2169);
/// `sincof_p0..p2`: -1.9515295891E-4, 8.3321608736E-3, -1.6666654611E-1.
const SIN_P: [f32; 3] = [
    f32::from_bits(0xB94C_A1F9),
    f32::from_bits(0x3C08_839E),
    f32::from_bits(0xBE2A_AAA3),
];
/// `coscof_p0..p2`: 2.443315711809948E-005, -1.388731625493765E-003, 4.166664568298827E-002.
const COS_P: [f32; 3] = [
    f32::from_bits(0x37CC_F5CE),
    f32::from_bits(0xBAB6_061A),
    f32::from_bits(0x3D2A_AAA5),
];

/// `log256_ps` of `avx_mathfun.h` as GCC compiles it with FMA contraction (§5 `LOG`).
/// Valid for positive normal inputs (here `x` is in [2^-24, 1]).
fn cephes_log_avx2(x: f32) -> f32 {
    let x = x.max(f32::MIN_POSITIVE);
    let bits = x.to_bits();
    let mut e = ((bits >> 23) as i32 - 127) as f32 + 1.0;
    // Mantissa in [0.5, 1).
    let m = f32::from_bits((bits & 0x807F_FFFF) | 0x3F00_0000);
    let t = if m < SQRTHF {
        e -= 1.0;
        m
    } else {
        0.0
    };
    let x = (m - 1.0) + t;
    let z = x * x;
    let mut y = LOG_P[0];
    for &p in &LOG_P[1..] {
        y = y.mul_add(x, p);
    }
    y *= x;
    y = y.mul_add(z, e * LOG_Q1);
    y -= z * 0.5;
    e.mul_add(LOG_Q2, x + y)
}

/// `sincos256_ps` of `avx_mathfun.h` as GCC compiles it with FMA contraction (§5 `SINCOS`).
/// Returns `(sin x, cos x)`; valid for the finite inputs used here (`x` in [0, 2 pi)).
fn cephes_sincos_avx2(x: f32) -> (f32, f32) {
    let sign_sin = x.to_bits() & 0x8000_0000;
    let x = x.abs();
    // Octant: j = (trunc(x * 4/pi) + 1) & !1, so x - j*pi/4 is in [-pi/4, pi/4].
    let mut j = (x * FOPI) as i32;
    j = (j + 1) & !1;
    let y = j as f32;
    let swap_sin = (j & 4) != 0;
    let poly_is_sin = (j & 2) == 0;
    let cos_neg = (!(j - 2) & 4) != 0;

    let x = y.mul_add(DP1, x);
    let x = y.mul_add(DP2, x);
    let x = y.mul_add(DP3, x);
    let z = x * x;

    let mut yc = COS_P[0].mul_add(z, COS_P[1]);
    yc = yc.mul_add(z, COS_P[2]);
    yc *= z;
    yc = yc.mul_add(z, -(z * 0.5));
    yc += 1.0;

    let mut ys = SIN_P[0].mul_add(z, SIN_P[1]);
    ys = ys.mul_add(z, SIN_P[2]);
    ys *= z;
    ys = ys.mul_add(x, x);

    let (sin, cos) = if poly_is_sin { (ys, yc) } else { (yc, ys) };
    let sin_flip = sign_sin ^ if swap_sin { 0x8000_0000 } else { 0 };
    let cos_flip = if cos_neg { 0x8000_0000 } else { 0 };
    (
        f32::from_bits(sin.to_bits() ^ sin_flip),
        f32::from_bits(cos.to_bits() ^ cos_flip),
    )
}

#[cfg(test)]
mod tests {
    //! Golden values: `../shared/spec/torch_randn_vectors.json`, generated by torch 2.15.0 itself
    //! (`cpu_capability` AVX2) and cross-checked there against a numpy emulation of the spec.
    use super::*;
    use serde_json::Value;
    use sha2::{Digest, Sha256};

    const VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/spec/torch_randn_vectors.json"
    );

    fn load_vectors() -> Value {
        let text = std::fs::read_to_string(VECTORS).expect("read torch_randn_vectors.json");
        serde_json::from_str(&text).expect("parse torch_randn_vectors.json")
    }

    fn as_u64(v: &Value) -> u64 {
        v.as_u64().expect("unsigned integer in the vectors file")
    }

    /// A `calls_before_on_same_generator` entry is either `n` or a shape list.
    fn numel(call: &Value) -> usize {
        match call {
            Value::Array(dims) => dims.iter().map(|d| as_u64(d) as usize).product(),
            n => as_u64(n) as usize,
        }
    }

    fn hex_bits(v: &Value) -> u64 {
        u64::from_str_radix(v.as_str().expect("hex string"), 16).expect("hex bits")
    }

    // ---- test-only f64 and f16 draws (§4c, §4d), so that every vector in the file is checked.

    /// `torch.randn(n, dtype=torch.float64)`.
    fn randn_f64(g: &mut TorchCpuNoise, n: usize) -> Vec<f64> {
        if n < BLOCK {
            return (0..n).map(|_| g.serial_normal()).collect();
        }
        let mut data: Vec<f64> = (0..n).map(|_| g.double_uniform()).collect();
        for block in data.chunks_exact_mut(BLOCK) {
            box_muller16_f64(block);
        }
        if !n.is_multiple_of(BLOCK) {
            let tail = &mut data[n - BLOCK..];
            for value in tail.iter_mut() {
                *value = g.double_uniform();
            }
            box_muller16_f64(tail);
        }
        data
    }

    /// `normal_fill_16` in double with libm (§4c).
    fn box_muller16_f64(d: &mut [f64]) {
        for j in 0..HALF {
            let u1 = 1.0 - d[j];
            let u2 = d[j + HALF];
            let radius = (-2.0 * u1.ln()).sqrt();
            let theta = 2.0 * std::f64::consts::PI * u2;
            d[j] = radius * theta.cos();
            d[j + HALF] = radius * theta.sin();
        }
    }

    /// `torch.randn(n, dtype=torch.float16)` as bit patterns (§4d): float32 block by block.
    fn randn_f16_bits(g: &mut TorchCpuNoise, n: usize) -> Vec<u16> {
        if n < BLOCK {
            return (0..n)
                .map(|_| f32_to_f16_bits(g.serial_normal() as f32))
                .collect();
        }
        let block_of_fresh = |g: &mut TorchCpuNoise| {
            let mut buf = [0f32; BLOCK];
            for value in buf.iter_mut() {
                *value = g.float_uniform();
            }
            box_muller16_avx2(&mut buf);
            buf.map(f32_to_f16_bits)
        };
        let mut out = Vec::with_capacity(n);
        for _ in 0..n / BLOCK {
            out.extend(block_of_fresh(g));
        }
        if !n.is_multiple_of(BLOCK) {
            // The 16 fresh values overwrite positions n-16..n, as in float32.
            out.truncate(n - BLOCK);
            out.extend(block_of_fresh(g));
        }
        out
    }

    /// IEEE binary32 -> binary16, round to nearest even (what `.to(torch.float16)` does).
    fn f32_to_f16_bits(x: f32) -> u16 {
        let bits = x.to_bits();
        let sign = ((bits >> 16) & 0x8000) as u16;
        let exp = ((bits >> 23) & 0xFF) as i32;
        let man = bits & 0x007F_FFFF;
        if exp == 0xFF {
            return sign | 0x7C00 | if man != 0 { 0x0200 } else { 0 };
        }
        // Significand with the implicit bit, and the shift that makes its unit 2^-24 (the f16
        // subnormal step) or, for normal results, 2^(e-10).
        let half_exp = exp - 127 + 15;
        let (sig, shift, base) = if half_exp >= 1 {
            (man, 13u32, (half_exp as u32) << 10)
        } else {
            (man | 0x0080_0000, (14 - half_exp) as u32, 0)
        };
        if shift > 25 {
            return sign;
        }
        let kept = sig >> shift;
        let rest = sig & ((1 << shift) - 1);
        let halfway = 1 << (shift - 1);
        let round_up = rest > halfway || (rest == halfway && kept & 1 == 1);
        // Carries from the mantissa into the exponent (and to infinity) are correct as is.
        let result = base + kept + u32::from(round_up);
        if result >= 0x7C00 {
            return sign | 0x7C00;
        }
        sign | result as u16
    }

    #[test]
    fn f16_conversion_edge_cases() {
        let cases: [(f32, u16); 10] = [
            (1.0, 0x3C00),
            (-2.0, 0xC000),
            (65504.0, 0x7BFF),
            (65520.0, 0x7C00), // halfway to the next binade rounds to even: infinity
            (6.103_515_6e-5, 0x0400), // smallest normal 2^-14
            (5.960_464_5e-8, 0x0001), // smallest subnormal 2^-24
            (2.980_232_2e-8, 0x0000), // 2^-25: a tie, rounds to even zero
            (1.0 + 1.0 / 2048.0, 0x3C00), // tie between 1 and 1+2^-10: even
            (1.0 + 3.0 / 2048.0, 0x3C02), // tie between 1+2^-10 and 1+2^-9: even
            (0.333_333_34, 0x3555),
        ];
        for (x, want) in cases {
            assert_eq!(f32_to_f16_bits(x), want, "f16 of {x:e}");
        }
    }

    #[test]
    fn mt19937_raw_outputs_match_torch() {
        let file = load_vectors();
        let entries = file["mt19937_outputs"].as_array().expect("mt19937_outputs");
        assert_eq!(entries.len(), 5);
        for entry in entries {
            let seed = as_u64(&entry["seed"]);
            let mut g = TorchCpuNoise::new(seed);
            let first8: Vec<u64> = (0..8).map(|_| u64::from(g.random())).collect();
            let want: Vec<u64> = entry["first8_u32"]
                .as_array()
                .unwrap()
                .iter()
                .map(as_u64)
                .collect();
            assert_eq!(first8, want, "seed {seed}: first 8 u32");
            // u32 number 1000 (0-based), which needs a second twist of the state.
            let mut g = TorchCpuNoise::new(seed);
            let at_1000 = (0..=1000).map(|_| g.random()).last().unwrap();
            assert_eq!(
                u64::from(at_1000),
                as_u64(&entry["u32_index_1000"]),
                "seed {seed}"
            );
            // torch.rand(8) is exactly the float uniforms.
            let mut g = TorchCpuNoise::new(seed);
            for (i, v) in entry["torch_rand_first8_f32"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
            {
                let want = v.as_f64().unwrap() as f32;
                assert_eq!(g.float_uniform(), want, "seed {seed}: torch.rand[{i}]");
            }
        }
    }

    /// What one draw produced, as little-endian bytes and as (first8, last8) bit patterns.
    struct Draw {
        le_bytes: Vec<u8>,
        bits: Vec<u64>,
        values: Vec<f64>,
    }

    fn draw(g: &mut TorchCpuNoise, dtype: &str, n: usize) -> Draw {
        match dtype {
            "float32" => {
                let v = g.randn(n);
                Draw {
                    le_bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    bits: v.iter().map(|x| u64::from(x.to_bits())).collect(),
                    values: v.iter().map(|&x| f64::from(x)).collect(),
                }
            }
            "float64" => {
                let v = randn_f64(g, n);
                Draw {
                    le_bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    bits: v.iter().map(|x| x.to_bits()).collect(),
                    values: v,
                }
            }
            "float16" => {
                let v = randn_f16_bits(g, n);
                Draw {
                    le_bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    bits: v.iter().map(|&x| u64::from(x)).collect(),
                    values: v.iter().map(|&x| f16_bits_to_f64(x)).collect(),
                }
            }
            other => panic!("vectors file has an unexpected dtype {other}"),
        }
    }

    fn f16_bits_to_f64(h: u16) -> f64 {
        let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
        let exp = i32::from((h >> 10) & 0x1F);
        let man = f64::from(h & 0x03FF);
        match exp {
            0 => sign * man * 2f64.powi(-24),
            0x1F => sign * f64::INFINITY,
            e => sign * (1024.0 + man) * 2f64.powi(e - 25),
        }
    }

    /// Distance in units in the last place between two values of the same format, given as
    /// sign-magnitude bit patterns of `width` bits.
    fn ulps(a: u64, b: u64, width: u32) -> u64 {
        let sign = 1u64 << (width - 1);
        let key = |x: u64| -> i128 {
            if x & sign != 0 {
                -((x & (sign - 1)) as i128)
            } else {
                x as i128
            }
        };
        (key(a) - key(b)).unsigned_abs() as u64
    }

    #[test]
    fn every_vector_matches_torch() {
        let file = load_vectors();
        assert_eq!(file["cpu_capability"], "AVX2");
        let vectors = file["vectors"].as_array().expect("vectors");
        let mut failures = Vec::new();
        let mut checked = std::collections::BTreeMap::<String, usize>::new();
        for v in vectors {
            let seed = as_u64(&v["seed"]);
            let dtype = v["dtype"].as_str().unwrap();
            let n = as_u64(&v["numel"]) as usize;
            let shape_numel = numel(&v["shape"]);
            assert_eq!(n, shape_numel, "numel vs shape");
            let width = match dtype {
                "float32" => 32,
                "float64" => 64,
                _ => 16,
            };
            let mut g = TorchCpuNoise::new(seed);
            let mut before = Vec::new();
            if let Some(calls) = v.get("calls_before_on_same_generator") {
                for call in calls.as_array().unwrap() {
                    before.push(numel(call));
                    draw(&mut g, dtype, numel(call));
                }
            }
            let label = format!("seed {seed} {dtype} n={n} after {before:?}");
            let got = draw(&mut g, dtype, n);
            assert_eq!(got.bits.len(), n);

            let k = n.min(8);
            let pairs = v["first8_bits"]
                .as_array()
                .unwrap()
                .iter()
                .zip(&got.bits[..k])
                .chain(
                    v["last8_bits"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .zip(&got.bits[n - k..]),
                );
            for (want, &have) in pairs {
                let want = hex_bits(want);
                if want != have {
                    let d = ulps(want, have, width);
                    failures.push(format!("{label}: {have:x} vs torch {want:x} ({d} ulp)"));
                }
            }
            let sha = format!("{:x}", Sha256::digest(&got.le_bytes));
            if sha != v["sha256_le"].as_str().unwrap() {
                failures.push(format!("{label}: sha256 differs"));
            }
            // torch sums in its own order; ours is sequential. Both are f64 sums of the same
            // values, so they agree to rounding.
            let sum: f64 = got.values.iter().sum();
            let want_sum = v["sum_f64"].as_f64().unwrap();
            if (sum - want_sum).abs() > 1e-9 * (n as f64) {
                failures.push(format!("{label}: sum {sum} vs torch {want_sum}"));
            }
            *checked.entry(dtype.to_string()).or_default() += 1;
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        // Every vector in the file was checked (none skipped).
        assert_eq!(checked.get("float32"), Some(&105));
        assert_eq!(checked.get("float64"), Some(&12));
        assert_eq!(checked.get("float16"), Some(&12));
        assert_eq!(checked.values().sum::<usize>(), vectors.len());
    }

    #[test]
    fn only_the_low_32_bits_of_the_seed_count() {
        let a = TorchCpuNoise::new(42).randn(64);
        assert_eq!(a, TorchCpuNoise::new((1u64 << 32) + 42).randn(64));
        assert_eq!(a, TorchCpuNoise::new((1u64 << 63) + 42).randn(64));
        assert_ne!(a, TorchCpuNoise::new(43).randn(64));
    }

    #[test]
    fn serial_cache_survives_calls() {
        // §4a: randn(7); randn(7) == randn(14), and a 16+ call does not touch the cache.
        let mut g = TorchCpuNoise::new(7);
        let mut two = g.randn(7);
        two.extend(g.randn(7));
        assert_eq!(two, TorchCpuNoise::new(7).randn(14));

        let mut g = TorchCpuNoise::new(7);
        let first = g.randn(7);
        g.randn(16);
        let cached = g.randn(1);
        let mut fresh = TorchCpuNoise::new(7);
        let eight = fresh.randn(8);
        assert_eq!(first[..], eight[..7]);
        assert_eq!(cached[0], eight[7]);
    }

    #[test]
    fn tail_redraw_and_prefixes() {
        // §4b: randn(17)[0] == randn(16)[0], but the rest of randn(17) is redrawn.
        let a16 = TorchCpuNoise::new(3).randn(16);
        let a17 = TorchCpuNoise::new(3).randn(17);
        assert_eq!(a16[0], a17[0]);
        assert!(a16[1..].iter().zip(&a17[1..16]).all(|(x, y)| x != y));
        // And a draw of n >= 16 uses n (+16 for a tail) u32: the next draw starts there.
        let mut g = TorchCpuNoise::new(3);
        g.randn(17);
        let mut h = TorchCpuNoise::new(3);
        for _ in 0..17 + 16 {
            h.random();
        }
        assert_eq!(g.random(), h.random());
    }

    #[test]
    fn constants_are_the_literals_of_avx_mathfun() {
        let table: [(&str, f32, u32); 23] = [
            ("0.707106781186547524", SQRTHF, 0x3F3504F3),
            ("7.0376836292E-2", LOG_P[0], 0x3D9021BB),
            ("-1.1514610310E-1", LOG_P[1], 0xBDEBD1B8),
            ("1.1676998740E-1", LOG_P[2], 0x3DEF251A),
            ("-1.2420140846E-1", LOG_P[3], 0xBDFE5D4F),
            ("1.4249322787E-1", LOG_P[4], 0x3E11E9BF),
            ("-1.6668057665E-1", LOG_P[5], 0xBE2AAE50),
            ("2.0000714765E-1", LOG_P[6], 0x3E4CCEAC),
            ("-2.4999993993E-1", LOG_P[7], 0xBE7FFFFC),
            ("3.3333331174E-1", LOG_P[8], 0x3EAAAAAA),
            ("-2.12194440e-4", LOG_Q1, 0xB95E8083),
            ("0.693359375", LOG_Q2, 0x3F318000),
            ("1.27323954473516", FOPI, 0x3FA2F983),
            ("-0.78515625", DP1, 0xBF490000),
            ("-2.4187564849853515625e-4", DP2, 0xB97DA000),
            ("-3.77489497744594108e-8", DP3, 0xB3222169),
            ("-1.9515295891E-4", SIN_P[0], 0xB94CA1F9),
            ("8.3321608736E-3", SIN_P[1], 0x3C08839E),
            ("-1.6666654611E-1", SIN_P[2], 0xBE2AAAA3),
            ("2.443315711809948E-005", COS_P[0], 0x37CCF5CE),
            ("-1.388731625493765E-003", COS_P[1], 0xBAB6061A),
            ("4.166664568298827E-002", COS_P[2], 0x3D2AAAA5),
            ("6.283185307179586", TWO_PI_F32, 0x40C90FDB),
        ];
        for (literal, value, bits) in table {
            let parsed: f32 = literal.parse().unwrap();
            assert_eq!(parsed.to_bits(), bits, "{literal}");
            assert_eq!(value.to_bits(), bits, "{literal}");
        }
    }

    #[test]
    fn cephes_functions_are_accurate() {
        // Not a bit-exactness check (the vectors do that), a guard against a wrong formula:
        // the AVX2 polynomials are within a few f32 ulp of the true functions on the inputs used.
        for i in 1..=4096u32 {
            let u = i as f32 / 4096.0;
            let log = f64::from(cephes_log_avx2(u));
            assert!(
                (log - f64::from(u).ln()).abs() <= 4e-7 * (1.0 + log.abs()),
                "log {u}"
            );
            let theta = TWO_PI_F32 * (u - 1.0 / 4096.0);
            let (s, c) = cephes_sincos_avx2(theta);
            let t = f64::from(theta);
            assert!((f64::from(s) - t.sin()).abs() < 3e-7, "sin {theta}");
            assert!((f64::from(c) - t.cos()).abs() < 3e-7, "cos {theta}");
        }
    }
}
