#!/usr/bin/env python3
"""Independent reference for the `chacha-v1` noise stream (docs/NOISE_SPEC.md).

Written from the spec, not from the Rust code: a pure-Python ChaCha20 block function (RFC 8439
section 2.3, D. J. Bernstein's "ChaCha, a variant of Salsa20") and the chacha-v1 Box-Muller with
the same polynomial steps in Python floats (IEEE binary64; + - * / and math.sqrt are correctly
rounded, so the f64 results are bit-identical to any conforming implementation).

Run:  python3 docs/noise/chacha_v1_reference.py
It checks itself against the RFC 8439 test vectors and against math.log/sin/cos, then prints the
golden values pinned in src/noise/chacha.rs (first/last 8 f32 bit patterns and the sha256 of the
little-endian f32 bytes of one randn(4*64*64) draw per seed).
"""
import hashlib
import math
import struct
import sys

MASK32 = 0xFFFFFFFF


def rotl32(v, c):
    return ((v << c) & MASK32) | (v >> (32 - c))


def quarter_round(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & MASK32; s[d] = rotl32(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & MASK32; s[b] = rotl32(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & MASK32; s[d] = rotl32(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & MASK32; s[b] = rotl32(s[b] ^ s[c], 7)


def chacha20_block(key32, word12, word13, word14, word15):
    """RFC 8439 2.3: 16 output words for the state (constants, key, words 12..15)."""
    const = struct.unpack("<4I", b"expand 32-byte k")
    key = struct.unpack("<8I", key32)
    init = list(const) + list(key) + [word12, word13, word14, word15]
    s = init[:]
    for _ in range(10):
        quarter_round(s, 0, 4, 8, 12); quarter_round(s, 1, 5, 9, 13)
        quarter_round(s, 2, 6, 10, 14); quarter_round(s, 3, 7, 11, 15)
        quarter_round(s, 0, 5, 10, 15); quarter_round(s, 1, 6, 11, 12)
        quarter_round(s, 2, 7, 8, 13); quarter_round(s, 3, 4, 9, 14)
    return [(x + y) & MASK32 for x, y in zip(s, init)]


def serialize(words):
    return struct.pack("<16I", *words)


def rfc_self_test():
    # RFC 8439 2.3.2: key 00..1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00, block count 1.
    key = bytes(range(32))
    nonce = struct.unpack("<3I", bytes.fromhex("000000090000004a00000000"))
    out = serialize(chacha20_block(key, 1, *nonce))
    want = bytes.fromhex(
        "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
        "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e")
    assert out == want, "RFC 8439 2.3.2 block mismatch"
    # RFC 8439 A.1 test vector #1: all-zero key and nonce, block counter 0.
    out = serialize(chacha20_block(bytes(32), 0, 0, 0, 0))
    want = bytes.fromhex(
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
        "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586")
    assert out == want, "RFC 8439 A.1 #1 block mismatch"


class KeyStream:
    """chacha-v1 keying: key = seed as 8 little-endian bytes + 24 zero bytes; 64-bit block
    counter in words 12 (low) and 13 (high) starting at 0; stream/nonce words 14, 15 = 0."""

    def __init__(self, seed):
        self.key = struct.pack("<Q", seed) + bytes(24)
        self.block = 0
        self.buf = []

    def next_u32(self):
        if not self.buf:
            words = chacha20_block(self.key, self.block & MASK32, self.block >> 32, 0, 0)
            self.buf = words[::-1]
            self.block += 1
        return self.buf.pop()


# ---- the chacha-v1 transcendental functions, same steps as the spec -------------------------

LN_2 = 0.6931471805599453       # nearest f64 to ln 2 (0x3FE62E42FEFA39EF)
SQRT_2 = 1.4142135623730951     # nearest f64 to sqrt 2 (0x3FF6A09E667F3BCD)
FRAC_PI_2 = 1.5707963267948966  # nearest f64 to pi/2 (0x3FF921FB54442D18)
assert LN_2.hex() == "0x1.62e42fefa39efp-1"
assert SQRT_2.hex() == "0x1.6a09e667f3bcdp+0"
assert FRAC_PI_2.hex() == "0x1.921fb54442d18p+0"
ATANH_C = [1.0 / (2 * k + 1) for k in range(12)]
SIN_C = [(-1.0 if k % 2 else 1.0) / float(math.factorial(2 * k + 1)) for k in range(1, 9)]
COS_C = [(-1.0 if k % 2 else 1.0) / float(math.factorial(2 * k)) for k in range(1, 10)]
HALF_PI_SCALED = FRAC_PI_2 / float(1 << 51)


def horner(coeffs, x2):
    p = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        p = p * x2 + c
    return p


def ln_unit(u):
    m, e = math.frexp(u)   # u = m 2^e, m in [0.5, 1): exact
    m *= 2.0
    e -= 1                 # m in [1, 2)
    if m > SQRT_2:
        m *= 0.5
        e += 1
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = horner(ATANH_C, s2)
    return float(e) * LN_2 + 2.0 * s * p


def sincos_turn(k):
    quarter = 1 << 51
    q = (k + quarter // 2) >> 51
    f = k - q * quarter
    x = float(f) * HALF_PI_SCALED
    x2 = x * x
    sin_x = x + x * x2 * horner(SIN_C, x2)
    cos_x = 1.0 + x2 * horner(COS_C, x2)
    return [(sin_x, cos_x), (cos_x, -sin_x), (-sin_x, -cos_x), (-cos_x, sin_x)][q & 3]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def pair_f64(ks):
    w = [ks.next_u32() for _ in range(4)]
    k1 = ((w[0] << 32) | w[1]) >> 11
    k2 = ((w[2] << 32) | w[3]) >> 11
    u1 = float(k1 + 1) * 2.0 ** -53
    radius = math.sqrt(0.0 - 2.0 * ln_unit(u1))
    s, c = sincos_turn(k2)
    # libm-based value of the same pair, for the accuracy check.
    theta = 2.0 * math.pi * (k2 * 2.0 ** -53)
    r_libm = math.sqrt(-2.0 * math.log(u1))
    return (radius * c, radius * s), (r_libm * math.cos(theta), r_libm * math.sin(theta))


def randn(seed, n):
    ks = KeyStream(seed)
    ours, libm = [], []
    while len(ours) < n:
        a, b = pair_f64(ks)
        ours.extend(a)
        libm.extend(b)
    return ours[:n], libm[:n]


def accuracy_check():
    # ln and sincos against libm (correctly rounded to < 1 ulp in glibc) on many grid points.
    worst_ln = worst_trig = 0.0
    for i in range(1, 200001):
        u = (i * 45035996273) % (1 << 53) + 1
        u1 = u * 2.0 ** -53
        ref = math.log(u1)
        if ref != 0.0:
            worst_ln = max(worst_ln, abs(ln_unit(u1) - ref) / abs(ref))
        s, c = sincos_turn(u - 1)
        t = 2.0 * math.pi * ((u - 1) * 2.0 ** -53)
        worst_trig = max(worst_trig, abs(s - math.sin(t)), abs(c - math.cos(t)))
    return worst_ln, worst_trig


def main():
    rfc_self_test()
    worst_ln, worst_trig = accuracy_check()
    print(f"ln: worst relative difference to math.log {worst_ln:.3g}")
    print(f"sin/cos: worst absolute difference to math.sin/cos {worst_trig:.3g}")
    assert worst_ln < 1e-15 and worst_trig < 1e-15
    n = 4 * 64 * 64
    for seed in [0, 1, 42, (1 << 32) + 42, (1 << 64) - 1]:
        ours, libm = randn(seed, n)
        vals = [f32(x) for x in ours]
        worst = max(abs(a - b) for a, b in zip(ours, libm))
        differ = sum(f32(a) != f32(b) for a, b in zip(ours, libm))
        assert worst < 1e-13, worst
        digest = hashlib.sha256(struct.pack(f"<{n}f", *vals)).hexdigest()
        print(f"seed {seed}:")
        print(f"  f64 vs libm-based Box-Muller: worst {worst:.3g}, f32 values that differ: {differ}/{n}")
        print("  first8", ", ".join(f"0x{f32_bits(x):08x}" for x in vals[:8]))
        print("  last8 ", ", ".join(f"0x{f32_bits(x):08x}" for x in vals[-8:]))
        print("  sha256", digest)
        mean = sum(vals) / n
        print(f"  mean {mean:.4f} std {math.sqrt(sum((x - mean) ** 2 for x in vals) / n):.4f}")
    ks = KeyStream(42)
    print("keystream seed 42, words 0..8:", ", ".join(f"0x{ks.next_u32():08x}" for _ in range(8)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
