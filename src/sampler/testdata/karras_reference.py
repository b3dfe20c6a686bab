"""Independent reference for the Karras schedules of seedling's samplers (src/sampler tests).

Written from Karras et al. 2022, eq. (5) (rho = 7) and the documented behaviour of diffusers'
`use_karras_sigmas` (the timestep of a sigma by linear interpolation in log-sigma between the
training timesteps), with numpy only; float32 storage is emulated where diffusers keeps float32
tensors. Config: Stable Diffusion's scaled_linear betas 0.00085..0.012, 1000 training steps.

Usage: python3 karras_reference.py   (prints the values the Rust tests compare against)
"""
import numpy as np

T = 1000
betas = (np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, T, dtype=np.float64).astype(np.float32) ** 2).astype(np.float32)
alphas = (1.0 - betas).astype(np.float32)
acp = np.cumprod(alphas.astype(np.float64)).astype(np.float32)
train = (((1 - acp) / acp) ** 0.5).astype(np.float32)
log_train = np.log(train)


def karras(smin, smax, n, rho=7.0):
    ramp = np.linspace(0, 1, n)
    return (smax ** (1 / rho) + ramp * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho


def sigma_to_t(s):
    ls = np.log(s)
    below = np.nonzero(log_train <= ls)[0]
    lo = min(below[-1] if len(below) else 0, T - 2)
    w = np.clip((log_train[lo] - ls) / (log_train[lo] - log_train[lo + 1]), 0, 1)
    return (1 - w) * lo + w * (lo + 1)


# Euler, 6 steps, "leading" spacing with steps_offset 1: timesteps 834, 667, ..., 1; the Karras
# range runs between the interpolated sigmas of the first and last timestep (not t = 0).
lead = (np.arange(0, 6) * (T // 6))[::-1] + 1.0
interp = np.interp(lead, np.arange(T), train.astype(np.float64))
ks = karras(interp[-1], interp[0], 6)
print("euler leading karras sigmas", [float(x) for x in ks])
print("euler leading karras timesteps", [float(sigma_to_t(x)) for x in ks])
# DPM-Solver++ / UniPC, 5 steps: the range is the whole training range; timesteps rounded.
ks = karras(float(train[0]), float(train[-1]), 5)
print("multistep karras sigmas", [float(np.float32(x)) for x in ks])
print("multistep karras timesteps", [float(np.round(sigma_to_t(x))) for x in ks])
