#!/usr/bin/env python3
"""Rounding of Winograd's F(2×2, 3×3) and F(4×4, 3×3) in f32, against a direct convolution.

Why: `crates/seedling-kernels/src/conv/winograd.rs` uses F(2×2, 3×3) at 16×16 pixels and F(4×4, 3×3) from
32×32; F(4×4) needs 36 multiplies per 16 outputs instead of 64, but its transforms have
constants up to 8 (and 1/24) and round more.
This measures how much, on random tiles summed over C input channels (outputs of unit scale),
each computed in f32 and compared with the same sum in f64 (numpy sums the C channels pairwise;
seedling's products sum them in order, which rounds somewhat more on every path):

    python3 bench/winograd_rounding.py

Transform matrices: Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR
2016), both as in winograd.rs (F(4×4, 3×3) with interpolation points 0, ±1, ±2, ∞).
Needs numpy.
"""
import numpy as np


def matrices(m):
    if m == 2:
        bt = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        g = [[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]]
        at = [[1, 1, 1, 0], [0, 1, -1, -1]]
    else:
        bt = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
              [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
        g = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
             [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]
        at = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    return (np.array(x, np.float32) for x in (bt, g, at))


def winograd(d, g, m):
    """The m×m outputs of tiles d [C, m+2, m+2] under filters g [C, 3, 3], all in f32."""
    bt, gm, at = matrices(m)
    v = np.einsum("ij,cjk,lk->cil", bt, d, bt)
    u = np.einsum("ij,cjk,lk->cil", gm, g, gm)
    return at @ (u * v).sum(0, dtype=np.float32) @ at.T


def direct(d, g, m, dtype):
    out = np.zeros((m, m), dtype)
    for y in range(m):
        for x in range(m):
            out[y, x] = (d[:, y:y + 3, x:x + 3].astype(dtype) * g.astype(dtype)).sum(dtype=dtype)
    return out


def main():
    rng = np.random.default_rng(0)
    for c in (320, 1280):
        for m in (2, 4):
            wino, plain = [], []
            for _ in range(200):
                d = rng.standard_normal((c, m + 2, m + 2)).astype(np.float32)
                g = (rng.standard_normal((c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
                exact = direct(d, g, m, np.float64)
                wino.append(np.abs(winograd(d, g, m) - exact).max())
                plain.append(np.abs(direct(d, g, m, np.float32) - exact).max())
            print(f"C={c:5} F({m}x{m}, 3x3): max error {max(wino):.1e}, mean {np.mean(wino):.1e}; "
                  f"direct f32: max {max(plain):.1e}, mean {np.mean(plain):.1e}")


if __name__ == "__main__":
    main()
