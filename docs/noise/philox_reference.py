#!/usr/bin/env python3
"""Independent reference for the `philox` noise stream (docs/NOISE_SPEC.md, section `philox`).

What it reproduces: torch's CUDA generator as AUTOMATIC1111's "NV" random source imitates it on
the host (A1111 modules/rng_philox.py and modules/rng.py), written here from those semantics and
from the published algorithm, not from seedling's Rust code:

* Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
  SC'11), with the round constants, key schedule and counter/key word layout of torch's
  `at::philox_engine` (aten/src/ATen/core/PhiloxRNGEngine.h) and cuRAND's curand_init:
  key = (seed low 32 bits, seed high 32 bits); counter = (offset low, offset high,
  element index low, element index high). Done here with Python integers.
* One draw of n values is one "call": element i uses the counter (call number, 0, i, 0) and
  keeps output words 0 and 1; the call number starts at 0 and grows by 1 per call (A1111's
  Generator.offset; torch advances its philox offset by 4 = one 128-bit block per thread).
* Box-Muller exactly as rng_philox.box_muller computes it with numpy: the uint32 words times
  float32 constants promote to float64, so u = x * 2^-32 + 2^-33 and
  v = y * c + c/2 (c = float32(2.3283064e-10 * 6.2831855)) in float64, then
  float32(sqrt(-2 log u) * sin v) with numpy's float64 log and sin. Every value is also
  recomputed with Python's math.log / math.sin (the C libm) and the two must agree in float32.

Run:  python3 docs/noise/philox_reference.py     (needs numpy)
It checks its Philox against Random123's known-answer vectors and A1111's documented example (seed 0, shape (3, 4)), then prints the golden values
pinned in src/noise/philox.rs: for each seed a sequence of calls, each with its first/last 8
float32 bit patterns and the sha256 of the little-endian float32 bytes of the whole draw.
It also derives the pi/2 split constants the Rust code uses for its own sin (from 60 digits
of pi) so they are checked against more than the Rust file itself.
"""
import decimal
import hashlib
import math
import struct

import numpy as np

M32 = 0xFFFFFFFF
# Philox4x32 multipliers and Weyl key increments (Salmon et al. 2011, table 2 / section 4.1).
MUL_A, MUL_B = 0xD2511F53, 0xCD9E8D57
WEYL_A, WEYL_B = 0x9E3779B9, 0xBB67AE85


def philox_round(c0, c1, c2, c3, k0, k1):
    pa = MUL_A * c0  # 64-bit product; hi and lo halves
    pb = MUL_B * c2
    return ((pb >> 32) ^ c1 ^ k0, pb & M32, (pa >> 32) ^ c3 ^ k1, pa & M32)


def philox4x32_10(counter, key):
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(10):
        if r > 0:  # the key is bumped between rounds (nine times in all)
            k0, k1 = (k0 + WEYL_A) & M32, (k1 + WEYL_B) & M32
        c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    return c0, c1, c2, c3


# Random123's published known-answer vectors for Philox4x32-10 (its tests/kat_vectors; the
# same triples are in TensorFlow's Philox tests): (counter, key) -> output.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M32,) * 4, (M32,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def words(seed, call, n):
    """Output words 0 and 1 of element i = 0..n-1 of draw number `call`."""
    key = (seed & M32, seed >> 32)
    xs, ys = [], []
    for i in range(n):
        out = philox4x32_10((call & M32, call >> 32, i & M32, i >> 32), key)
        xs.append(out[0])
        ys.append(out[1])
    return xs, ys


# The float32 constants of rng_philox.py, as numpy rounds them.
INV32 = np.float32(2.3283064e-10)            # == 2^-32 exactly
INV32_2PI = np.float32(2.3283064e-10 * 6.2831855)


def box_muller_numpy(xs, ys):
    x = np.array(xs, dtype=np.uint32)
    y = np.array(ys, dtype=np.uint32)
    inv = np.array([INV32], dtype=np.float32)
    inv2pi = np.array([INV32_2PI], dtype=np.float32)
    u = x * inv + inv / 2        # uint32 * float32 -> float64 (numpy promotion)
    v = y * inv2pi + inv2pi / 2
    assert u.dtype == np.float64 and v.dtype == np.float64
    s = np.sqrt(-2.0 * np.log(u))
    return (s * np.sin(v)).astype(np.float32)


def box_muller_libm(xs, ys):
    inv = float(INV32)
    inv2pi = float(INV32_2PI)
    out = []
    for x, y in zip(xs, ys):
        u = float(x) * inv + inv / 2
        v = float(y) * inv2pi + inv2pi / 2
        out.append(np.float32(math.sqrt(-2.0 * math.log(u)) * math.sin(v)))
    return np.array(out, dtype=np.float32)


class Generator:
    """One image's stream: every randn(n) is one draw at the next call number."""

    def __init__(self, seed):
        self.seed = seed
        self.call = 0

    def randn(self, n):
        if n == 0:
            # torch launches no kernel for an empty tensor and so does not advance its
            # offset (A1111's Python would still count the call; nothing ever draws 0).
            return np.zeros(0, dtype=np.float32)
        xs, ys = words(self.seed, self.call, n)
        self.call += 1
        a = box_muller_numpy(xs, ys)
        b = box_muller_libm(xs, ys)
        diff = int(np.count_nonzero(a.view(np.uint32) != b.view(np.uint32)))
        assert diff == 0, f"numpy and libm disagree on {diff} values"
        return a


def hexbits(v):
    return [f"0x{b:08x}" for b in v.view(np.uint32)]


def sha256_le(v):
    return hashlib.sha256(v.astype("<f4").tobytes()).hexdigest()


def check_a1111_example():
    # The example in the docstring of A1111's modules/rng_philox.py,
    # Generator(seed=0).randn(shape=(3, 4)). Those digits are not what rng_philox.py itself
    # computes: they match torch.randn(3, 4, device="cuda") after torch.manual_seed(0) (cuRAND
    # evaluates the Box-Muller in float32 with the approximate __sincosf), and the float64
    # Box-Muller of rng_philox.py lands within a few float32 ulp of them (3e-7 at most here).
    # So: the same Philox words, a slightly different last digit.
    want = np.array([-0.92466259, -0.42534415, -2.6438457, 0.14518388,
                     -0.12086647, -0.57972564, -0.62285122, -0.32838709,
                     -1.07454231, -0.36314407, -1.67105067, 2.26550497])
    got = Generator(0).randn(12)
    worst = float(np.max(np.abs(got.astype(np.float64) - want)))
    assert worst < 5e-7, got
    return got, worst


def pi_half_split():
    """pi/2 = P1 + P2 + P2T: P1, P2 the leading 33-bit pieces (trailing 20 bits zero), P2T the
    float64 nearest the rest. From 60 digits of pi with Python's decimal module."""
    decimal.getcontext().prec = 80
    pi = decimal.Decimal("3.14159265358979323846264338327950288419716939937510582097494459")
    half = pi / 2

    def top33(d):
        f = float(d)  # nearest double, then drop the low 20 of its 52 fraction bits
        bits = struct.unpack("<Q", struct.pack("<d", f))[0] & ~0xFFFFF
        return struct.unpack("<d", struct.pack("<Q", bits))[0]

    p1 = top33(half)
    p2 = top33(half - decimal.Decimal(p1))
    p2t = float(half - decimal.Decimal(p1) - decimal.Decimal(p2))
    return {k: f"0x{struct.unpack('<Q', struct.pack('<d', x))[0]:016x}"
            for k, x in (("P1", p1), ("P2", p2), ("P2T", p2t))}


def edge_words():
    """Word pairs (x, y) at the ends of the uniform grids, and the angles nearest pi and 2 pi
    (where sin is smallest and the argument reduction loses most)."""
    c = float(INV32_2PI)
    near = []
    for target in (math.pi, 2 * math.pi):
        y0 = round(target / c - 0.5)
        near += [y for y in (y0 - 1, y0, y0 + 1) if 0 <= y <= M32]
    xs = [0, 1, 0x80000000, M32 - 1, M32]
    ys = [0, 1, 0x40000000, 0x80000000, 0xC0000000, M32] + near
    return [(x, y) for x in xs for y in ys]


# Seeds, and the calls made on each one's stream (one Generator per seed). 16384 = 4*64*64,
# the SD 1.x latent at 512x512.
CASES = [
    (0, [16384, 16384, 5]),
    (1, [16384]),
    (42, [16384, 16384, 16384]),
    ((1 << 32) + 42, [16384, 16384]),
    ((1 << 64) - 1, [16384, 7, 16384]),
]

if __name__ == "__main__":
    for counter, key, want in KAT:
        assert philox4x32_10(counter, key) == want, (counter, key)
    example, worst = check_a1111_example()
    print("A1111 example (seed 0, randn(12)):", hexbits(example))
    print("  as decimals:", [float(x) for x in example])
    print(f"  largest difference from the docstring's (CUDA) digits: {worst:.3g}")
    print("float32 constants:", hexbits(np.array([INV32, INV32_2PI], dtype=np.float32)))
    print("pi/2 split:", pi_half_split())
    pairs = edge_words()
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    edge = box_muller_numpy(xs, ys)
    assert (edge.view(np.uint32) == box_muller_libm(xs, ys).view(np.uint32)).all()
    print("edge word pairs (x, y) -> float32 bits:")
    for (x, y), b in zip(pairs, hexbits(edge)):
        print(f"  (0x{x:08x}, 0x{y:08x}, {b}),")
    for seed, calls in CASES:
        g = Generator(seed)
        for k, n in enumerate(calls):
            v = g.randn(n)
            print(f"seed {seed} call {k} randn({n}):")
            print("  first8", ", ".join(hexbits(v[:8])))
            print("  last8 ", ", ".join(hexbits(v[-8:])))
            print("  sha256", sha256_le(v))
            print(f"  mean {float(np.mean(v, dtype=np.float64)):.6f}"
                  f" std {float(np.std(v, dtype=np.float64)):.6f}")
