"""Winograd F(m x m, r x r) matrices (Lavin & Gray 2015) in NumPy, for the tests and for anyone
checking the C++ transforms (kernels/cpu/winograd_matrices.h holds the same numbers, written out).

    U = G g G^T        filter transform (alpha x alpha per (k, c)), alpha = m + r - 1
    V = B^T d B        input transform of an alpha x alpha input tile d
    Y = A^T (U * V) A  output transform to an m x m output tile

The points are 0, +-1, +-2, +-1/2 and infinity (alpha of them); G and A^T follow from the points
and the row scales s_j here (G[j, k] = s_j p_j^k, A^T[i, j] = p_j^i, the infinity row and column
picking the last tap and the last output; F(2x2,3x3)'s B^T, Lavin & Gray's, wants that column
negated), B^T is the one table per alpha that makes
Y == correlation with those scales (the matrices of wincnn, NNPACK and ncnn).
"""

from __future__ import annotations

from fractions import Fraction as Fr

import numpy as np

TILES = (2, 4, 6)  # output tiles of the 3x3 algorithms winograd_f2, _f4, _f6
TILES_5X5 = (2, 4)  # the 5x5 ones: F(2x2,5x5) and F(4x4,5x5) under the names winograd_f2, _f4

# alpha -> (finite points, G row scales, the sign of A^T's infinity column, B^T)
_POINTS = {
    4: ([0, 1, -1], [1, Fr(1, 2), Fr(1, 2)], -1, [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
    6: (
        [0, 1, -1, 2, -2],
        [Fr(1, 4), Fr(-1, 6), Fr(-1, 6), Fr(1, 24), Fr(1, 24)],
        1,
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
    ),
    8: (
        [0, 1, -1, 2, -2, Fr(1, 2), Fr(-1, 2)],
        [1, Fr(-2, 9), Fr(-2, 9), Fr(1, 90), Fr(1, 90), Fr(32, 45), Fr(32, 45)],
        1,
        [
            [1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0],
            [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
            [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0],
            [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
            [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0],
            [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
            [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0],
            [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1],
        ],
    ),
    10: (  # one-dimensional tiles only; G row scales 1 / prod_{i != j} (p_j - p_i) (Lagrange's)
        [0, 1, -1, 2, -2, Fr(1, 2), Fr(-1, 2), Fr(3, 2), Fr(-3, 2)],
        [Fr(4, 9), Fr(8, 45), Fr(8, 45), Fr(2, 315), Fr(2, 315), Fr(-16, 45), Fr(-16, 45), Fr(-16, 315), Fr(-16, 315)],
        1,
        [
            [9 / 4, 0, -205 / 16, 0, 273 / 16, 0, -15 / 2, 0, 1, 0],
            [0, -9 / 4, -9 / 4, 169 / 16, 169 / 16, -13 / 2, -13 / 2, 1, 1, 0],
            [0, 9 / 4, -9 / 4, -169 / 16, 169 / 16, 13 / 2, -13 / 2, -1, 1, 0],
            [0, -9 / 8, -9 / 16, 49 / 8, 49 / 16, -7, -7 / 2, 2, 1, 0],
            [0, 9 / 8, -9 / 16, -49 / 8, 49 / 16, 7, -7 / 2, -2, 1, 0],
            [0, -9 / 2, -9, 61 / 8, 61 / 4, -29 / 8, -29 / 4, 1 / 2, 1, 0],
            [0, 9 / 2, -9, -61 / 8, 61 / 4, 29 / 8, -29 / 4, -1 / 2, 1, 0],
            [0, -3 / 2, -1, 63 / 8, 21 / 4, -63 / 8, -21 / 4, 3 / 2, 1, 0],
            [0, 3 / 2, -1, -63 / 8, 21 / 4, 63 / 8, -21 / 4, -3 / 2, 1, 0],
            [0, 9 / 4, 0, -205 / 16, 0, 273 / 16, 0, -15 / 2, 0, 1],
        ],
    ),
}


# One-dimensional kernels (1 x r and r x 1, the other axis F(1, 1)): r -> the tile sizes m of the
# names winograd_f2 and winograd_f4. An even r takes the tile one larger than the name, F(3, 4) and
# F(5, 4), so that alpha stays 6 or 8 and the tile shares those points (and fewer multiplications
# per output than F(2, 4) / F(4, 4): 6/12 and 8/20 against 5/8 and 7/16).
TILES_1D = {3: (2, 4), 4: (2, 4), 5: (2, 4), 7: (2, 4)}


def axis_m(m: int, r: int) -> int:
    """The output tile along a kernel axis of r taps for the tile size m of the name (1 for r = 1)."""
    return 1 if r == 1 else m + 1 if r % 2 == 0 else m


# (m, r) per axis: the 3x3 and 5x5 tiles on both axes, the one-dimensional ones on one axis of a
# 1 x r or r x 1 kernel (the other axis then F(1, 1)); kernels/cpu/winograd_matrices.h's
# with_winograd_tile.
_AXIS_TILES = (
    {(1, 1)}
    | {(m, 3) for m in TILES}
    | {(m, 5) for m in TILES_5X5}
    | {(axis_m(m, r), r) for r, ms in TILES_1D.items() for m in ms}
)


def alpha(m: int, r: int = 3) -> int:
    """The input tile's side for output tile m and kernel r."""
    return m + r - 1


def matrices(m: int, r: int = 3):
    """(BT, G, AT) as float64 arrays for output tile m and kernel r along one axis (3: m in
    TILES, 5: m in TILES_5X5, 4 and 7: axis_m of TILES_1D; F(1, 1) is the identity)."""
    if (m, r) not in _AXIS_TILES:
        raise ValueError(f"m, r: no Winograd F({m}, {r}) here")
    if (m, r) == (1, 1):
        return tuple(np.ones((1, 1)) for _ in range(3))
    a = alpha(m, r)
    pts, scale, inf_sign, BT = _POINTS[a]
    G = [[Fr(scale[j]) * Fr(p) ** k for k in range(r)] for j, p in enumerate(pts)] + [[0] * (r - 1) + [1]]
    AT = [[Fr(p) ** i for p in pts] + [inf_sign if i == m - 1 else 0] for i in range(m)]
    return tuple(np.array(t, np.float64) for t in (BT, G, AT))


def tile(m: int, R: int, S: int):
    """(mh, mw): the output tile of tile size m on an R x S kernel (1 along an axis of size 1, m + 1
    along an even one: axis_m)."""
    return axis_m(m, R), axis_m(m, S)


def filter_transform(w, m):
    """(K, C, R, S) -> U (ah aw, K, C), U[i*aw + j] = (G_h g G_w^T)[i, j]."""
    R, S = w.shape[-2:]
    mh, mw = tile(m, R, S)
    _, Gh, _ = matrices(mh, R)
    _, Gw, _ = matrices(mw, S)
    U = np.einsum("ir,kcrs,js->ijkc", Gh, np.asarray(w, np.float64), Gw)
    return U.reshape(-1, *w.shape[:2])


def input_tiles(x, m, pad_t, pad_l, Ho, Wo, R=3, S=None):
    """x (N, C, H, W) -> the ah x aw input tiles d, shape (N, C, TH, TW, ah, aw)."""
    S = R if S is None else S
    mh, mw = tile(m, R, S)
    ah, aw = alpha(mh, R), alpha(mw, S)
    N, C, H, W = x.shape
    TH, TW = -(-Ho // mh), -(-Wo // mw)
    xp = np.zeros((N, C, TH * mh + R - 1, TW * mw + S - 1), np.float64)
    h = min(H, TH * mh + R - 1 - pad_t)
    w = min(W, TW * mw + S - 1 - pad_l)
    xp[:, :, pad_t : pad_t + h, pad_l : pad_l + w] = x[:, :, :h, :w]
    d = np.empty((N, C, TH, TW, ah, aw))
    for th in range(TH):
        for tw in range(TW):
            d[:, :, th, tw] = xp[:, :, th * mh : th * mh + ah, tw * mw : tw * mw + aw]
    return d


def input_transform(x, m, pad_t, pad_l, Ho, Wo, R=3, S=None):
    """x -> V (ah aw, C, N*TH*TW), tiles in (n, th, tw) order."""
    S = R if S is None else S
    mh, mw = tile(m, R, S)
    BTh, _, _ = matrices(mh, R)
    BTw, _, _ = matrices(mw, S)
    d = input_tiles(x, m, pad_t, pad_l, Ho, Wo, R, S)
    V = np.einsum("ia,nchwab,jb->ijcnhw", BTh, d, BTw)
    return V.reshape(BTh.shape[0] * BTw.shape[0], x.shape[1], -1)


def output_transform(M, m, N, Ho, Wo, R=3, S=None):
    """M (ah aw, K, N*TH*TW) -> y (N, K, Ho, Wo) = A_h^T M A_w per tile, edges clipped."""
    S = R if S is None else S
    mh, mw = tile(m, R, S)
    _, _, ATh = matrices(mh, R)
    _, _, ATw = matrices(mw, S)
    K = M.shape[1]
    TH, TW = -(-Ho // mh), -(-Wo // mw)
    Mt = np.asarray(M, np.float64).reshape(ATh.shape[1], ATw.shape[1], K, N, TH, TW)
    Y = np.einsum("ia,abknhw,jb->nkhiwj", ATh, Mt, ATw).reshape(N, K, TH * mh, TW * mw)
    return Y[:, :, :Ho, :Wo]
