//! ComfyUI's schedulers: the sigma schedules of comfy/samplers.py (`SCHEDULER_HANDLERS`,
//! `calculate_sigmas`, `KSampler.calculate_sigmas`) and comfy/k_diffusion/sampling.py
//! (`get_sigmas_karras`, `get_sigmas_exponential`), written in the float32 ops ComfyUI uses
//! so that the schedules are bit-identical (see `sigmas.rs` for the table they read).
//!
//! Each returns `steps + 1` sigmas (or fewer for `beta`, which drops repeats), descending, the
//! last 0, as float32 values (ComfyUI returns a `torch.FloatTensor`).

use super::sigmas::{linspace_f32, ModelSampling};
use crate::{Error, Result};

/// A ComfyUI scheduler name (the KSampler node's `scheduler` input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheduler {
    Normal,
    Karras,
    Exponential,
    SgmUniform,
    Simple,
    DdimUniform,
    Beta,
}

impl Scheduler {
    pub(crate) const ALL: [Scheduler; 7] = [
        Scheduler::Normal,
        Scheduler::Karras,
        Scheduler::Exponential,
        Scheduler::SgmUniform,
        Scheduler::Simple,
        Scheduler::DdimUniform,
        Scheduler::Beta,
    ];

    /// ComfyUI's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scheduler::Normal => "normal",
            Scheduler::Karras => "karras",
            Scheduler::Exponential => "exponential",
            Scheduler::SgmUniform => "sgm_uniform",
            Scheduler::Simple => "simple",
            Scheduler::DdimUniform => "ddim_uniform",
            Scheduler::Beta => "beta",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// comfy/samplers.py `calculate_sigmas(model_sampling, scheduler_name, steps)`.
    pub(crate) fn sigmas(self, ms: &ModelSampling, steps: usize) -> Result<Vec<f32>> {
        if steps == 0 {
            return Err(Error::Invalid("a schedule needs at least 1 step".into()));
        }
        Ok(match self {
            Scheduler::Normal => normal(ms, steps, false),
            Scheduler::SgmUniform => normal(ms, steps, true),
            // k-diffusion's schedulers get float(sigma_min), float(sigma_max).
            Scheduler::Karras => karras(steps, ms.sigma_min().into(), ms.sigma_max().into(), 7.0),
            Scheduler::Exponential => {
                exponential(steps, ms.sigma_min().into(), ms.sigma_max().into())
            }
            Scheduler::Simple => simple(ms, steps),
            Scheduler::DdimUniform => ddim_uniform(ms, steps),
            Scheduler::Beta => beta(ms, steps, 0.6, 0.6),
        })
    }
}

/// comfy/samplers.py `KSampler.calculate_sigmas`: the samplers of
/// `DISCARD_PENULTIMATE_SIGMA_SAMPLERS` (dpm_2, dpm_2_ancestral, uni_pc, uni_pc_bh2) get a
/// schedule of `steps + 1` whose second-to-last sigma is dropped. Denoise 1 only.
pub(crate) fn ksampler_sigmas(
    ms: &ModelSampling,
    scheduler: Scheduler,
    steps: usize,
    discard_penultimate: bool,
) -> Result<Vec<f32>> {
    if !discard_penultimate {
        return scheduler.sigmas(ms, steps);
    }
    let mut sigmas = scheduler.sigmas(ms, steps + 1)?;
    if sigmas.len() >= 2 {
        let last = sigmas.len() - 1;
        sigmas.remove(last - 1);
    }
    Ok(sigmas)
}

/// `normal_scheduler(model_sampling, steps, sgm)`: timesteps linspace'd (float32) from
/// t(σ_max) to t(σ_min) — `steps` points, or for sgm_uniform `steps + 1` points with the last
/// dropped — each mapped through `sigma(t)`, then 0. (When σ(t_end) is ~0, which no ε model
/// has, ComfyUI takes one more point instead of appending 0.)
fn normal(ms: &ModelSampling, steps: usize, sgm: bool) -> Vec<f32> {
    let start = ms.timestep(ms.sigma_max()) as f32;
    let end = ms.timestep(ms.sigma_min()) as f32;
    let mut append_zero = true;
    let timesteps = if sgm {
        let mut t = linspace_f32(start, end, steps + 1);
        t.pop();
        t
    } else {
        let mut n = steps;
        if ms.sigma(end).abs() <= 1e-5 {
            n += 1;
            append_zero = false;
        }
        linspace_f32(start, end, n)
    };
    let mut sigmas: Vec<f32> = timesteps.iter().map(|t| ms.sigma(*t)).collect();
    if append_zero {
        sigmas.push(0.0);
    }
    sigmas
}

/// k_diffusion `get_sigmas_karras(n, sigma_min, sigma_max, rho)` (Karras et al. 2022, eq. 5):
/// `ramp = linspace(0, 1, n)` (float32); `min_inv_rho`, `max_inv_rho` are Python floats; the
/// tensor expression `(max_inv_rho + ramp·(min_inv_rho − max_inv_rho)) ** rho` runs in float32
/// with each Python scalar rounded to float32 (torch's wrapped-number rule), `** 7` as a
/// double `pow` rounded to float32 (ATen `pow_tensor_scalar_optimized_kernel`); then 0.
pub(crate) fn karras(n: usize, sigma_min: f64, sigma_max: f64, rho: f64) -> Vec<f32> {
    let min_inv_rho = sigma_min.powf(1.0 / rho);
    let max_inv_rho = sigma_max.powf(1.0 / rho);
    let span = (min_inv_rho - max_inv_rho) as f32;
    let mut sigmas: Vec<f32> = linspace_f32(0.0, 1.0, n)
        .into_iter()
        .map(|r| {
            let base = max_inv_rho as f32 + r * span;
            f64::from(base).powf(rho) as f32
        })
        .collect();
    sigmas.push(0.0);
    sigmas
}

/// k_diffusion `get_sigmas_exponential`: `linspace(log σ_max, log σ_min, n).exp()` in float32
/// (the logs are Python floats, rounded to float32 by linspace), then 0.
pub(crate) fn exponential(n: usize, sigma_min: f64, sigma_max: f64) -> Vec<f32> {
    let mut sigmas: Vec<f32> = linspace_f32(sigma_max.ln() as f32, sigma_min.ln() as f32, n)
        .into_iter()
        .map(f32::exp)
        .collect();
    sigmas.push(0.0);
    sigmas
}

/// `simple_scheduler`: every (T/steps)-th table sigma from the top,
/// `sigmas[-(1 + int(x · T/steps))]` for x in 0..steps, then 0.
fn simple(ms: &ModelSampling, steps: usize) -> Vec<f32> {
    let table = ms.sigmas();
    let ss = table.len() as f64 / steps as f64;
    let mut sigmas: Vec<f32> = (0..steps)
        .map(|x| table[table.len() - 1 - (x as f64 * ss) as usize])
        .collect();
    sigmas.push(0.0);
    sigmas
}

/// `ddim_scheduler`: table sigmas 1, 1 + T//steps, 1 + 2·(T//steps), … (< T), reversed, after
/// a 0 (or, when sigmas[1] is ~0, one more step and no 0).
fn ddim_uniform(ms: &ModelSampling, steps: usize) -> Vec<f32> {
    let table = ms.sigmas();
    let mut steps = steps;
    let mut sigmas = Vec::new();
    if table[1].abs() <= 1e-5 {
        steps += 1;
    } else {
        sigmas.push(0.0);
    }
    let ss = (table.len() / steps).max(1);
    sigmas.extend(table.iter().skip(1).step_by(ss).copied());
    sigmas.reverse();
    sigmas
}

/// `beta_scheduler(model_sampling, steps, alpha, beta)` (Lee et al. 2024, arXiv:2407.12173):
/// ts = 1 − linspace(0, 1, steps, endpoint=False), mapped through the Beta(α, β) quantile
/// (`scipy.stats.beta.ppf`), times T − 1 and rounded half to even (`numpy.rint`); the table
/// sigma of each distinct consecutive timestep, then 0.
fn beta(ms: &ModelSampling, steps: usize, alpha: f64, beta: f64) -> Vec<f32> {
    let table = ms.sigmas();
    let total = (table.len() - 1) as f64;
    let mut sigmas = Vec::new();
    let mut last = -1.0;
    for i in 0..steps {
        let ts = 1.0 - i as f64 * (1.0 / steps as f64);
        let t = (beta_ppf(ts, alpha, beta) * total).round_ties_even();
        if t != last {
            sigmas.push(table[t as usize]);
        }
        last = t;
    }
    sigmas.push(0.0);
    sigmas
}

/// The Beta(a, b) quantile: the x in [0, 1] with I_x(a, b) = p, by bisection on the
/// regularized incomplete beta function (monotone in x), to f64 resolution. scipy uses
/// Boost's `ibeta_inv`; both are accurate to a few ulps, far below the rounding to a timestep.
pub(crate) fn beta_ppf(p: f64, a: f64, b: f64) -> f64 {
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if regularized_incomplete_beta(mid, a, b) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// I_x(a, b), the Beta(a, b) CDF: the continued fraction of Numerical Recipes §6.4 (modified
/// Lentz), evaluated on the side where it converges fast (x < (a+1)/(a+b+2)), the symmetry
/// I_x(a, b) = 1 − I_{1−x}(b, a) for the other side.
pub(crate) fn regularized_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_continued_fraction(1.0 - x, b, a) / b
    }
}

fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    // Lentz's guard: a denominator that vanishes is replaced by a tiny one.
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - qab * x / qap);
    let mut h = d;
    // One modified-Lentz step with the fraction's next numerator `aa`: the factor on h.
    let mut step = |aa: f64| {
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        d * c
    };
    for m in 1..1000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        // The even and the odd term of the fraction (NR eq. 6.4.6).
        h *= step(m * (b - m) * x / ((qam + m2) * (a + m2)));
        let del = step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)));
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0: Lanczos (g = 7, n = 9), accurate to ~1e-15 relative.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    // normal, karras, exponential, sgm_uniform and simple are pinned bit for bit against the
    // ComfyUI fixtures in parity_tests.rs; these cover the two schedulers the fixtures lack.

    #[test]
    fn ddim_uniform_takes_every_hundredth_table_sigma() {
        // ddim_scheduler(10): [0.0] + sigmas[1, 101, ..., 901], reversed.
        let ms = ModelSampling::sd1();
        let got = Scheduler::DdimUniform.sigmas(&ms, 10).unwrap();
        let mut want: Vec<f32> = (0..10).rev().map(|k| ms.sigmas()[1 + 100 * k]).collect();
        want.push(0.0);
        assert_eq!(got, want);
        // 7 steps: stride 1000 // 7 = 142, indices 1, 143, ..., 995: 8 sigmas and 0, one step
        // more than asked, as ComfyUI does.
        let got = Scheduler::DdimUniform.sigmas(&ms, 7).unwrap();
        assert_eq!(got.len(), 9);
        assert_eq!(got[0], ms.sigmas()[995]);
    }

    #[test]
    fn beta_quantile_matches_closed_forms() {
        // Beta(1, 1) is uniform; Beta(2, 1) has CDF x², so its quantile is √p; Beta(a, a) is
        // symmetric about 1/2.
        for p in [0.1, 0.25, 0.5, 0.9] {
            assert!((beta_ppf(p, 1.0, 1.0) - p).abs() < 1e-12);
            assert!((beta_ppf(p, 2.0, 1.0) - f64::sqrt(p)).abs() < 1e-12);
            let q = beta_ppf(p, 0.6, 0.6);
            assert!((q + beta_ppf(1.0 - p, 0.6, 0.6) - 1.0).abs() < 1e-12);
        }
        assert_eq!(beta_ppf(0.5, 0.6, 0.6), 0.5);
        assert_eq!(
            (beta_ppf(0.0, 0.6, 0.6), beta_ppf(1.0, 0.6, 0.6)),
            (0.0, 1.0)
        );
    }

    #[test]
    fn beta_schedule_starts_at_sigma_max_and_dedupes() {
        let ms = ModelSampling::sd1();
        let got = Scheduler::Beta.sigmas(&ms, 10).unwrap();
        assert_eq!(got.len(), 11);
        assert_eq!(got[0], ms.sigma_max());
        assert_eq!(got[10], 0.0);
        assert!(got.windows(2).all(|w| w[0] > w[1]));
        // ts = 0.5 lands on timestep rint(0.5 · 999) = 500 (half to even).
        assert_eq!(got[5], ms.sigmas()[500]);
    }

    #[test]
    fn discarding_the_penultimate_sigma() {
        let ms = ModelSampling::sd1();
        let plain = Scheduler::Normal.sigmas(&ms, 11).unwrap();
        let got = ksampler_sigmas(&ms, Scheduler::Normal, 10, true).unwrap();
        assert_eq!(got.len(), 11);
        assert_eq!(&got[..10], &plain[..10]);
        assert_eq!(got[10], 0.0);
    }
}
