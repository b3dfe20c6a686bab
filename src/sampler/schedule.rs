//! Schedule math shared by the samplers, in f64: betas, `alphas_cumprod`, sigmas, the three
//! timestep spacings and numpy-style interpolation, each written to reproduce what diffusers 0.42
//! computes in `<Scheduler>.__init__` and `set_timesteps`.
//!
//! Precision. diffusers keeps `betas`, `alphas` and `alphas_cumprod` as float32 torch tensors.
//! We compute in f64 but round to f32 at exactly the points where diffusers stores a float32
//! tensor (betas, alphas = 1 - betas, each `alphas_cumprod` element; torch's CPU `cumprod`
//! accumulates in double and rounds each output, so we do the same). This matters: in pure f64
//! the smallest sigma of SD's schedule (t = 0, sigma ≈ 0.0292) differs from diffusers' by 1.3e-5
//! relative, because `1 - alphas_cumprod[0]` = 0.00085 inherits the 6e-8 float32 rounding of
//! `alphas_cumprod[0]`. With the rounding the fixture sigmas agree to 2.2e-7 relative.
//! Everything after `alphas_cumprod` (sigmas, interpolation, step coefficients) is plain f64,
//! where diffusers uses float32; that differs by a few float32 ulps (< 5e-7 relative).

use crate::{Error, Result};

/// `beta_schedule` / `trained_betas` of a diffusers scheduler config.
#[derive(Debug, Clone, PartialEq)]
pub enum BetaSchedule {
    /// `torch.linspace(beta_start, beta_end, T)`.
    Linear { start: f64, end: f64 },
    /// `torch.linspace(beta_start**0.5, beta_end**0.5, T) ** 2` (latent diffusion's schedule).
    ScaledLinear { start: f64, end: f64 },
    /// Glide's cosine schedule (`betas_for_alpha_bar`, alpha_transform_type "cosine").
    SquaredCosCapV2,
    /// Betas given in the config (`trained_betas`); one per training timestep.
    Trained(Vec<f64>),
}

impl BetaSchedule {
    /// The diffusers name of the schedule (`beta_schedule`; "trained_betas" for given betas).
    pub fn name(&self) -> &'static str {
        match self {
            BetaSchedule::Linear { .. } => "linear",
            BetaSchedule::ScaledLinear { .. } => "scaled_linear",
            BetaSchedule::SquaredCosCapV2 => "squaredcos_cap_v2",
            BetaSchedule::Trained(_) => "trained_betas",
        }
    }
}

/// `timestep_spacing`: Table 2 of Lin et al. 2023, "Common Diffusion Noise Schedules and Sample
/// Steps are Flawed".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestepSpacing {
    Leading,
    Trailing,
    Linspace,
}

impl TimestepSpacing {
    pub fn name(self) -> &'static str {
        match self {
            TimestepSpacing::Leading => "leading",
            TimestepSpacing::Trailing => "trailing",
            TimestepSpacing::Linspace => "linspace",
        }
    }
}

/// `final_sigmas_type` (Euler, DPM-Solver, UniPC): the sigma after the last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalSigmas {
    Zero,
    /// The sigma of training timestep 0 (UniPC with Karras sigmas: the last Karras sigma).
    SigmaMin,
}

impl FinalSigmas {
    pub fn name(self) -> &'static str {
        match self {
            FinalSigmas::Zero => "zero",
            FinalSigmas::SigmaMin => "sigma_min",
        }
    }
}

/// What `set_timesteps` reads of a scheduler class's settings, as plain values, so that the
/// schedule math needs nothing of the config it came from (`ResolvedConfig::schedule_params`
/// builds it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScheduleParams {
    pub num_train_timesteps: usize,
    pub timestep_spacing: TimestepSpacing,
    pub steps_offset: i64,
    /// The class's `alphas_cumprod`, one per training timestep (`ResolvedConfig::alphas_cumprod`).
    pub alphas_cumprod: Vec<f64>,
    /// Karras sigmas (diffusers `use_karras_sigmas`).
    pub karras: bool,
    /// Fixed ends of the Karras range (`sigma_min` / `sigma_max`), else the schedule's own.
    pub karras_sigma_min: Option<f64>,
    pub karras_sigma_max: Option<f64>,
    pub final_sigmas: FinalSigmas,
}

/// Which multistep solver's `set_timesteps` [`multistep_schedule`] follows: they differ in
/// how Karras timesteps are rounded and in a `sigma_min` final sigma.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Multistep {
    /// `DPMSolverMultistepScheduler`; `cosine_betas`: its beta schedule is squaredcos_cap_v2.
    DpmSolver { cosine_betas: bool },
    /// `UniPCMultistepScheduler`.
    UniPc,
}

/// Rounds to the nearest float32, where diffusers stores a float32 tensor.
fn f32_round(x: f64) -> f64 {
    x as f32 as f64
}

/// The betas as diffusers stores them (float32 values), one per training timestep.
pub(crate) fn betas(schedule: &BetaSchedule, num_train_timesteps: usize) -> Vec<f64> {
    let n = num_train_timesteps;
    match schedule {
        // torch.linspace in float32; we take the correctly rounded f64 linspace, which can differ
        // from torch's float32 arithmetic by an ulp of beta (≈1e-10): far below any tolerance.
        BetaSchedule::Linear { start, end } => np_linspace(*start, *end, n)
            .into_iter()
            .map(f32_round)
            .collect(),
        BetaSchedule::ScaledLinear { start, end } => np_linspace(start.powf(0.5), end.powf(0.5), n)
            .into_iter()
            .map(|s| {
                let s = f32_round(s);
                f32_round(s * s)
            })
            .collect(),
        BetaSchedule::SquaredCosCapV2 => betas_for_alpha_bar_cosine(n, 0.999)
            .into_iter()
            .map(f32_round)
            .collect(),
        BetaSchedule::Trained(b) => b.iter().copied().map(f32_round).collect(),
    }
}

/// diffusers `betas_for_alpha_bar` with the cosine transform (Nichol & Dhariwal 2021, eq. 17):
/// beta_i = min(1 - alpha_bar((i+1)/T) / alpha_bar(i/T), max_beta). Python computes i / T as a
/// true division; candle's port divides integers, which makes every t1 = 0 (a bug we avoid).
fn betas_for_alpha_bar_cosine(n: usize, max_beta: f64) -> Vec<f64> {
    let alpha_bar = |t: f64| {
        ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
            .cos()
            .powi(2)
    };
    (0..n)
        .map(|i| {
            let t1 = i as f64 / n as f64;
            let t2 = (i + 1) as f64 / n as f64;
            (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(max_beta)
        })
        .collect()
}

/// diffusers `rescale_zero_terminal_snr` (Lin et al. 2023, Algorithm 1): shifts and scales
/// sqrt(alphas_cumprod) so the last timestep has zero SNR and the first keeps its value.
/// The last beta becomes exactly 1.
pub(crate) fn rescale_zero_terminal_snr(betas: &[f64]) -> Vec<f64> {
    let mut sqrt_bar: Vec<f64> = alphas_cumprod(betas).iter().map(|a| a.sqrt()).collect();
    let (Some(&first), Some(&last)) = (sqrt_bar.first(), sqrt_bar.last()) else {
        return Vec::new();
    };
    for s in &mut sqrt_bar {
        *s = (*s - last) * (first / (first - last));
    }
    let bar: Vec<f64> = sqrt_bar.iter().map(|s| s * s).collect();
    let mut out = Vec::with_capacity(bar.len());
    out.push(f32_round(1.0 - bar[0]));
    for w in bar.windows(2) {
        out.push(f32_round(1.0 - w[1] / w[0]));
    }
    out
}

/// `alphas_cumprod = cumprod(1 - betas)` as diffusers holds it: alphas rounded to float32, the
/// product accumulated in f64 (torch CPU `cumprod` uses a double accumulator for float) and each
/// element rounded to float32.
pub(crate) fn alphas_cumprod(betas: &[f64]) -> Vec<f64> {
    let mut acc = 1.0f64;
    betas
        .iter()
        .map(|b| {
            acc *= f32_round(1.0 - b);
            f32_round(acc)
        })
        .collect()
}

/// Karras-style sigma of each training timestep: sqrt((1 - alphas_cumprod) / alphas_cumprod).
pub(crate) fn sigmas_from_alphas_cumprod(alphas_cumprod: &[f64]) -> Vec<f64> {
    alphas_cumprod
        .iter()
        .map(|a| ((1.0 - a) / a).sqrt())
        .collect()
}

/// `numpy.linspace(start, stop, num)` (endpoint=True) value by value: `i * step + start` with
/// `step = (stop - start) / (num - 1)`, the last element set to `stop`; `[start]` for num = 1.
pub(crate) fn np_linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut y: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = y.last_mut() {
        *last = stop;
    }
    y
}

/// `numpy.arange(start, stop, step)` for floats, value by value: numpy sizes it as
/// `ceil((stop - start) / step)` and fills `start + i * delta` with `delta = (start + step) -
/// start` (numpy's `DOUBLE_fill`), which is not always `step`. Checked against numpy 2 for
/// `arange(T, 0, -T/n)`, every n in 1..=T, T in {999, 1000, 1100}.
pub(crate) fn np_arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil();
    if len.is_nan() || len <= 0.0 {
        return Vec::new();
    }
    let len = len as usize;
    let mut out = Vec::with_capacity(len);
    out.push(start);
    if len > 1 {
        let second = start + step;
        let delta = second - start;
        out.push(second);
        out.extend((2..len).map(|i| start + i as f64 * delta));
    }
    out
}

/// `numpy.interp(x, arange(len(fp)), fp)`: piecewise linear, clamped to the end values.
pub(crate) fn np_interp(x: f64, fp: &[f64]) -> f64 {
    let last = fp.len() - 1;
    if x <= 0.0 {
        return fp[0];
    }
    if x >= last as f64 {
        return fp[last];
    }
    let j = x.floor() as usize;
    let slope = fp[j + 1] - fp[j];
    slope * (x - j as f64) + fp[j]
}

/// The inference timesteps of `set_timesteps(steps)`, descending, before any class-specific
/// rounding: integers for leading and trailing, `np.linspace(0, T-1, steps)` (fractional) for
/// linspace — DDIM rounds those, the Euler samplers keep them. `steps_offset` counts for leading
/// only, as in diffusers.
pub(crate) fn spaced_timesteps(
    spacing: TimestepSpacing,
    num_train_timesteps: usize,
    steps: usize,
    steps_offset: i64,
) -> Result<Vec<f64>> {
    let t_max = num_train_timesteps;
    if steps == 0 || steps > t_max {
        return Err(Error::Invalid(format!(
            "{steps} steps is out of range for this scheduler: use 1 to {t_max} steps \
             (its num_train_timesteps)"
        )));
    }
    let timesteps: Vec<f64> = match spacing {
        TimestepSpacing::Linspace => {
            let mut t = np_linspace(0.0, (t_max - 1) as f64, steps);
            t.reverse();
            t
        }
        TimestepSpacing::Leading => {
            // np.arange(0, steps) * (T // steps), reversed, + steps_offset.
            let ratio = (t_max / steps) as i64;
            (0..steps as i64)
                .rev()
                .map(|i| (i * ratio + steps_offset) as f64)
                .collect()
        }
        TimestepSpacing::Trailing => trailing(t_max, steps)?,
    };
    let out_of_range = timesteps
        .iter()
        .find(|t| **t < 0.0 || **t > (t_max - 1) as f64);
    if let Some(t) = out_of_range {
        return Err(Error::Model(format!(
            "steps_offset {steps_offset} puts timestep {t} outside the trained range 0..={}; \
             fix steps_offset in scheduler_config.json (usually 0 or 1)",
            t_max - 1
        )));
    }
    Ok(timesteps)
}

/// `np.round(np.arange(T, 0, -T / steps)) - 1`. numpy's arange makes one element too many for
/// some step counts (61, 103, 121, … for T = 1000): diffusers then runs steps + 1 steps, the last
/// at timestep -1 (which DDIM reads as `alphas_cumprod[-1]`, Python's last element). We refuse
/// those step counts instead of reproducing that.
fn trailing(t_max: usize, steps: usize) -> Result<Vec<f64>> {
    let ratio = t_max as f64 / steps as f64;
    let raw = np_arange(t_max as f64, 0.0, -ratio);
    if raw.len() != steps {
        let ok = |n: usize| np_arange(t_max as f64, 0.0, -(t_max as f64 / n as f64)).len() == n;
        let below = (1..steps).rev().find(|n| ok(*n));
        let above = (steps + 1..=t_max).find(|n| ok(*n));
        let suggest: Vec<String> = below
            .into_iter()
            .chain(above)
            .map(|n| n.to_string())
            .collect();
        return Err(Error::Invalid(format!(
            "{steps} steps with timestep_spacing 'trailing' is not supported: diffusers 0.42 \
             makes {} timesteps for it (a float rounding quirk of numpy.arange), the last one -1; \
             use {} steps instead",
            raw.len(),
            suggest.join(" or ")
        )));
    }
    Ok(raw.iter().map(|t| t.round_ties_even() - 1.0).collect())
}

/// Timesteps and sigmas of the Euler samplers after `set_timesteps(steps)`.
#[derive(Debug, Clone)]
pub(crate) struct EulerSchedule {
    /// UNet timesteps; fractional for "linspace" spacing and for Karras sigmas. diffusers holds
    /// them as float32 (the nearest float32 to these f64 values: numpy computes in f64, then
    /// casts).
    pub timesteps: Vec<f64>,
    /// `steps + 1` sigmas: np.interp of the training sigmas at each timestep (or the Karras
    /// sigmas), then the final one.
    pub sigmas: Vec<f64>,
    pub init_noise_sigma: f64,
}

/// `EulerDiscreteScheduler.set_timesteps` / `EulerAncestralDiscreteScheduler.set_timesteps`
/// (interpolation_type "linear"). With Karras sigmas (EulerDiscreteScheduler's
/// `use_karras_sigmas`), the Karras range runs between the first and last interpolated sigma
/// (or the config's `sigma_max` / `sigma_min`), and each timestep is recovered from its sigma
/// by log-sigma interpolation, unrounded.
pub(crate) fn euler_schedule(c: &ScheduleParams, steps: usize) -> Result<EulerSchedule> {
    let mut timesteps = spaced_timesteps(
        c.timestep_spacing,
        c.num_train_timesteps,
        steps,
        c.steps_offset,
    )?;
    let alphas_cumprod = &c.alphas_cumprod;
    let train_sigmas = sigmas_from_alphas_cumprod(alphas_cumprod);
    let mut sigmas: Vec<f64> = timesteps
        .iter()
        .map(|t| np_interp(*t, &train_sigmas))
        .collect();
    if c.karras {
        let sigma_min = c.karras_sigma_min.unwrap_or(sigmas[steps - 1]);
        let sigma_max = c.karras_sigma_max.unwrap_or(sigmas[0]);
        sigmas = karras_sigmas(sigma_min, sigma_max, steps);
        let log_sigmas = log_sigmas_f32(&train_sigmas_f32(alphas_cumprod));
        timesteps = sigmas.iter().map(|s| sigma_to_t(*s, &log_sigmas)).collect();
    }
    sigmas.push(match c.final_sigmas {
        FinalSigmas::Zero => 0.0,
        FinalSigmas::SigmaMin => train_sigmas[0],
    });
    check_sigmas(&sigmas)?;
    // `init_noise_sigma`: sigma_max for linspace/trailing, but sqrt(sigma_max² + 1) for leading
    // (diffusers' property, taken over the inference sigmas).
    let sigma_max = sigmas.iter().copied().fold(0.0, f64::max);
    let init_noise_sigma = match c.timestep_spacing {
        TimestepSpacing::Linspace | TimestepSpacing::Trailing => sigma_max,
        TimestepSpacing::Leading => (sigma_max * sigma_max + 1.0).sqrt(),
    };
    Ok(EulerSchedule {
        timesteps,
        sigmas,
        init_noise_sigma,
    })
}

fn check_sigmas(sigmas: &[f64]) -> Result<()> {
    match sigmas.iter().find(|s| !s.is_finite()) {
        Some(s) => Err(Error::Model(format!(
            "the scheduler config gives sigma {s}; check beta_start, beta_end and trained_betas"
        ))),
        None => Ok(()),
    }
}

/// The training sigmas as DPM-Solver, UniPC and Euler's Karras path hold them:
/// `((1 - alphas_cumprod) / alphas_cumprod) ** 0.5` evaluated in float32 torch ops. Each op is
/// done in f64 and rounded to f32, which gives the correctly rounded float32 result (f64 has
/// more than 2·24 + 2 bits, so the double rounding is exact for -, / and sqrt).
pub(crate) fn train_sigmas_f32(alphas_cumprod: &[f64]) -> Vec<f64> {
    alphas_cumprod
        .iter()
        .map(|a| f32_round(f32_round(f32_round(1.0 - a) / a).sqrt()))
        .collect()
}

/// `np.log(sigmas)` of a float32 array (a float32 result).
pub(crate) fn log_sigmas_f32(sigmas: &[f64]) -> Vec<f64> {
    sigmas.iter().map(|s| f32_round(s.ln())).collect()
}

/// Karras et al. 2022, eq. (5) with ρ = 7, as diffusers' `_convert_to_karras`:
/// σ_i = (σ_max^(1/ρ) + i/(n−1) · (σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ for i in 0..n, in f64.
pub(crate) fn karras_sigmas(sigma_min: f64, sigma_max: f64, n: usize) -> Vec<f64> {
    const RHO: f64 = 7.0;
    let min_inv_rho = sigma_min.powf(1.0 / RHO);
    let max_inv_rho = sigma_max.powf(1.0 / RHO);
    np_linspace(0.0, 1.0, n)
        .into_iter()
        .map(|ramp| (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)).powf(RHO))
        .collect()
}

/// diffusers `_sigma_to_t`: the (fractional) training timestep of `sigma`, interpolating
/// linearly in log-sigma between the two neighbouring training timesteps and clamped to
/// 0..=T−1. `low` is the last index whose log-sigma is ≤ log(sigma) (numpy's
/// `cumsum(dists >= 0).argmax()`; 0 when there is none), at most T − 2.
pub(crate) fn sigma_to_t(sigma: f64, log_sigmas: &[f64]) -> f64 {
    let log_sigma = sigma.max(1e-10).ln();
    let n = log_sigmas.len();
    if n < 2 {
        return 0.0;
    }
    let low_idx = log_sigmas
        .iter()
        .rposition(|l| log_sigma - l >= 0.0)
        .unwrap_or(0)
        .min(n - 2);
    let (low, high) = (log_sigmas[low_idx], log_sigmas[low_idx + 1]);
    let w = ((low - log_sigma) / (low - high)).clamp(0.0, 1.0);
    (1.0 - w) * low_idx as f64 + w * (low_idx + 1) as f64
}

/// Timesteps and sigmas of the multistep solvers (DPM-Solver, UniPC) after `set_timesteps`.
#[derive(Debug, Clone)]
pub(crate) struct MultistepSchedule {
    /// Integer UNet timesteps, descending.
    pub timesteps: Vec<f64>,
    /// `steps + 1` sigmas, the last one 0 (or sigma_min), rounded to float32 as diffusers
    /// stores them.
    pub sigmas: Vec<f64>,
}

/// `DPMSolverMultistepScheduler.set_timesteps` / `UniPCMultistepScheduler.set_timesteps`
/// (lambda_min_clipped = −inf, so the last usable timestep is T). Their spacings differ from
/// the Euler/DDIM ones: "linspace" is `linspace(0, T−1, steps+1).round()` without its 0, and
/// "leading" uses the ratio `T // (steps + 1)`. Karras: the range is the whole training range
/// (σ at t = 0 and t = T−1), timesteps are rounded (DPM-Solver keeps them fractional for
/// squaredcos_cap_v2; UniPC always rounds), and a `sigma_min` final sigma is the training
/// sigma_min for DPM-Solver but the last Karras sigma for UniPC.
pub(crate) fn multistep_schedule(
    c: &ScheduleParams,
    steps: usize,
    solver: Multistep,
) -> Result<MultistepSchedule> {
    let t_max = c.num_train_timesteps;
    if steps == 0 || steps > t_max {
        return Err(Error::Invalid(format!(
            "{steps} steps is out of range for this scheduler: use 1 to {t_max} steps \
             (its num_train_timesteps)"
        )));
    }
    let train_sigmas = train_sigmas_f32(&c.alphas_cumprod);
    let unipc = solver == Multistep::UniPc;
    let (timesteps, mut sigmas) = if c.karras {
        let sigma_min = c.karras_sigma_min.unwrap_or(train_sigmas[0]);
        let sigma_max = c.karras_sigma_max.unwrap_or(train_sigmas[t_max - 1]);
        let sigmas = karras_sigmas(sigma_min, sigma_max, steps);
        let log_sigmas = log_sigmas_f32(&train_sigmas);
        let round = match solver {
            Multistep::UniPc => true,
            Multistep::DpmSolver { cosine_betas } => !cosine_betas,
        };
        let timesteps: Vec<f64> = sigmas
            .iter()
            .map(|s| sigma_to_t(*s, &log_sigmas))
            .map(|t| if round { t.round_ties_even() } else { t })
            .collect();
        (timesteps, sigmas)
    } else {
        let timesteps = multistep_timesteps(c, steps)?;
        let sigmas = timesteps
            .iter()
            .map(|t| np_interp(*t, &train_sigmas))
            .collect();
        (timesteps, sigmas)
    };
    let last = match c.final_sigmas {
        FinalSigmas::Zero => 0.0,
        FinalSigmas::SigmaMin if unipc && c.karras => sigmas[steps - 1],
        FinalSigmas::SigmaMin => train_sigmas[0],
    };
    sigmas.push(last);
    let sigmas: Vec<f64> = sigmas.into_iter().map(f32_round).collect();
    check_sigmas(&sigmas)?;
    Ok(MultistepSchedule { timesteps, sigmas })
}

/// The non-Karras timesteps of DPM-Solver and UniPC, descending.
fn multistep_timesteps(c: &ScheduleParams, steps: usize) -> Result<Vec<f64>> {
    let t_max = c.num_train_timesteps;
    let timesteps: Vec<f64> = match c.timestep_spacing {
        TimestepSpacing::Linspace => {
            let mut t: Vec<f64> = np_linspace(0.0, (t_max - 1) as f64, steps + 1)
                .into_iter()
                .map(f64::round_ties_even)
                .collect();
            t.reverse();
            t.pop();
            t
        }
        TimestepSpacing::Leading => {
            let ratio = (t_max / (steps + 1)) as i64;
            (1..=steps as i64)
                .rev()
                .map(|i| (i * ratio + c.steps_offset) as f64)
                .collect()
        }
        TimestepSpacing::Trailing => trailing(t_max, steps)?,
    };
    let out_of_range = timesteps
        .iter()
        .find(|t| **t < 0.0 || **t > (t_max - 1) as f64);
    if let Some(t) = out_of_range {
        return Err(Error::Model(format!(
            "steps_offset {} puts timestep {t} outside the trained range 0..={}; fix \
             steps_offset in scheduler_config.json (usually 0 or 1)",
            c.steps_offset,
            t_max - 1
        )));
    }
    Ok(timesteps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn np_linspace_matches_numpy_layout() {
        // numpy.linspace(0, 999, 4) = [0, 333, 666, 999]; num = 1 gives [start].
        assert_eq!(np_linspace(0.0, 999.0, 4), vec![0.0, 333.0, 666.0, 999.0]);
        assert_eq!(np_linspace(0.0, 999.0, 1), vec![0.0]);
        // 999 / 6 = 166.5 is exact in binary; the last element is set to stop exactly.
        assert_eq!(np_linspace(0.0, 999.0, 7)[3], 499.5);
        assert_eq!(np_linspace(0.1, 0.7, 3)[2], 0.7);
    }

    #[test]
    fn np_arange_has_numpys_extra_element() {
        // numpy 2.4: len(np.arange(1000, 0, -1000/61)) == 62, the last value ≈ -1e-13
        // (printed by np.round as -0.); 60 and 62 give 60 and 62 elements.
        let a = np_arange(1000.0, 0.0, -1000.0 / 61.0);
        assert_eq!(a.len(), 62);
        assert_eq!(a[61].round(), 0.0);
        assert_eq!(np_arange(1000.0, 0.0, -1000.0 / 60.0).len(), 60);
        assert_eq!(np_arange(1000.0, 0.0, -1000.0 / 62.0).len(), 62);
    }

    #[test]
    fn trailing_refuses_numpy_quirk_with_a_suggestion() {
        let err = spaced_timesteps(TimestepSpacing::Trailing, 1000, 61, 0).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("use 60 or 62 steps"), "{msg}");
    }

    #[test]
    fn spacings_match_numpy_reference() {
        // Expected values from numpy 2.4 running the diffusers 0.42 expressions:
        //   trailing: np.round(np.arange(1000, 0, -1000/3)) - 1
        //   leading:  (np.arange(0, 3) * (1000 // 3)).round()[::-1] + 1
        //   linspace: np.linspace(0, 999, 4)[::-1]
        assert_eq!(
            spaced_timesteps(TimestepSpacing::Trailing, 1000, 3, 1).unwrap(),
            vec![999.0, 666.0, 332.0]
        );
        assert_eq!(
            spaced_timesteps(TimestepSpacing::Leading, 1000, 3, 1).unwrap(),
            vec![667.0, 334.0, 1.0]
        );
        assert_eq!(
            spaced_timesteps(TimestepSpacing::Linspace, 1000, 4, 1).unwrap(),
            vec![999.0, 666.0, 333.0, 0.0]
        );
        // np.round(np.arange(1000, 0, -1000/16)) - 1: 937.5 and 812.5 are exact ties, which
        // numpy rounds to even (938, 812), not away from zero.
        let want = [
            999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61,
        ];
        let got = spaced_timesteps(TimestepSpacing::Trailing, 1000, 16, 0).unwrap();
        assert_eq!(got, want.map(f64::from).to_vec());
    }

    #[test]
    fn steps_out_of_range_are_refused() {
        assert!(spaced_timesteps(TimestepSpacing::Leading, 1000, 0, 0).is_err());
        assert!(spaced_timesteps(TimestepSpacing::Leading, 1000, 1001, 0).is_err());
        // leading 1 step with offset 1000 would be timestep 1000: outside 0..=999.
        assert!(spaced_timesteps(TimestepSpacing::Leading, 1000, 1, 1000).is_err());
    }

    #[test]
    fn np_interp_is_linear_and_clamped() {
        let fp = [1.0, 3.0, 7.0];
        assert_eq!(np_interp(0.5, &fp), 2.0);
        assert_eq!(np_interp(1.25, &fp), 4.0);
        assert_eq!(np_interp(-1.0, &fp), 1.0);
        assert_eq!(np_interp(2.0, &fp), 7.0);
        assert_eq!(np_interp(9.0, &fp), 7.0);
    }

    #[test]
    fn cosine_betas_use_true_division() {
        // First beta by hand: 1 - cos²((1/T + 0.008)/1.008·π/2) / cos²(0.008/1.008·π/2), T = 1000.
        let f = |t: f64| {
            ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
                .cos()
                .powi(2)
        };
        let b = betas(&BetaSchedule::SquaredCosCapV2, 1000);
        let want = (1.0 - f(0.001) / f(0.0)) as f32 as f64;
        assert_eq!(b[0], want);
        assert!(b[0] > 1e-5 && b[0] < 1e-4, "{}", b[0]);
        // capped at max_beta 0.999 at the end, and increasing
        assert_eq!(b[999], 0.999f32 as f64);
        assert!(b.windows(2).all(|w| w[1] >= w[0]));
    }

    #[test]
    fn karras_follows_eq_5() {
        // σ_i = (σ_max^(1/7) + i/(n−1)·(σ_min^(1/7) − σ_max^(1/7)))^7: ends exact, middle by hand.
        let s = karras_sigmas(0.1, 10.0, 3);
        assert!((s[0] - 10.0).abs() < 1e-12 && (s[2] - 0.1).abs() < 1e-12);
        let mid = ((10f64.powf(1.0 / 7.0) + 0.1f64.powf(1.0 / 7.0)) / 2.0).powi(7);
        assert!((s[1] - mid).abs() < 1e-12);
        let one = karras_sigmas(0.1, 10.0, 1);
        assert!(one.len() == 1 && (one[0] - 10.0).abs() < 1e-12);
    }

    #[test]
    fn sigma_to_t_inverts_the_training_sigmas_and_clamps() {
        let logs: Vec<f64> = [0.1f64, 0.2, 0.4, 0.8].iter().map(|s| s.ln()).collect();
        assert!((sigma_to_t(0.2, &logs) - 1.0).abs() < 1e-12);
        // halfway in log-sigma between 0.2 and 0.4
        assert!((sigma_to_t(0.08f64.sqrt(), &logs) - 1.5).abs() < 1e-12);
        assert_eq!(sigma_to_t(0.01, &logs), 0.0);
        assert_eq!(sigma_to_t(5.0, &logs), 3.0);
    }

    #[test]
    fn zero_snr_rescale_ends_at_zero_and_keeps_the_start() {
        let b = betas(
            &BetaSchedule::ScaledLinear {
                start: 0.00085,
                end: 0.012,
            },
            1000,
        );
        let r = rescale_zero_terminal_snr(&b);
        let ac = alphas_cumprod(&r);
        assert_eq!(*r.last().unwrap(), 1.0);
        assert_eq!(*ac.last().unwrap(), 0.0);
        let ac0 = alphas_cumprod(&b)[0];
        assert!((ac[0] - ac0).abs() < 1e-7, "{} vs {}", ac[0], ac0);
    }
}
