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
}


def alpha(m: int, r: int = 3) -> int:
    """The input tile's side for output tile m and kernel r."""
    return m + r - 1


def matrices(m: int, r: int = 3):
    """(BT, G, AT) as float64 arrays for output tile m and kernel r (3: m in TILES, 5: m in TILES_5X5)."""
    if (r, m) not in {(3, t) for t in TILES} | {(5, t) for t in TILES_5X5}:
        raise ValueError(f"m, r: no Winograd F({m}x{m},{r}x{r}) here")
    a = alpha(m, r)
    pts, scale, inf_sign, BT = _POINTS[a]
    G = [[Fr(scale[j]) * Fr(p) ** k for k in range(r)] for j, p in enumerate(pts)] + [[0] * (r - 1) + [1]]
    AT = [[Fr(p) ** i for p in pts] + [inf_sign if i == m - 1 else 0] for i in range(m)]
    return tuple(np.array(t, np.float64) for t in (BT, G, AT))


def filter_transform(w, m):
    """(K, C, r, r) -> U (alpha^2, K, C), U[i*alpha + j] = (G g G^T)[i, j]."""
    _, G, _ = matrices(m, w.shape[-1])
    U = np.einsum("ir,kcrs,js->ijkc", G, np.asarray(w, np.float64), G)
    return U.reshape(-1, *w.shape[:2])


def input_tiles(x, m, pad_t, pad_l, Ho, Wo, r=3):
    """x (N, C, H, W) -> the alpha x alpha input tiles d, shape (N, C, TH, TW, alpha, alpha)."""
    a = alpha(m, r)
    N, C, H, W = x.shape
    TH, TW = -(-Ho // m), -(-Wo // m)
    xp = np.zeros((N, C, TH * m + r - 1, TW * m + r - 1), np.float64)
    h = min(H, TH * m + r - 1 - pad_t)
    w = min(W, TW * m + r - 1 - pad_l)
    xp[:, :, pad_t : pad_t + h, pad_l : pad_l + w] = x[:, :, :h, :w]
    d = np.empty((N, C, TH, TW, a, a))
    for th in range(TH):
        for tw in range(TW):
            d[:, :, th, tw] = xp[:, :, th * m : th * m + a, tw * m : tw * m + a]
    return d


def input_transform(x, m, pad_t, pad_l, Ho, Wo, r=3):
    """x -> V (alpha^2, C, N*TH*TW), tiles in (n, th, tw) order."""
    BT, _, _ = matrices(m, r)
    d = input_tiles(x, m, pad_t, pad_l, Ho, Wo, r)
    V = np.einsum("ia,nchwab,jb->ijcnhw", BT, d, BT)
    a = alpha(m, r)
    return V.reshape(a * a, x.shape[1], -1)


def output_transform(M, m, N, Ho, Wo, r=3):
    """M (alpha^2, K, N*TH*TW) -> y (N, K, Ho, Wo) = A^T M A per tile, edges clipped."""
    _, _, AT = matrices(m, r)
    a = alpha(m, r)
    K = M.shape[1]
    TH, TW = -(-Ho // m), -(-Wo // m)
    Mt = np.asarray(M, np.float64).reshape(a, a, K, N, TH, TW)
    Y = np.einsum("ia,abknhw,jb->nkhiwj", AT, Mt, AT).reshape(N, K, TH * m, TW * m)
    return Y[:, :, :Ho, :Wo]
