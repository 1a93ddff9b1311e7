"""Winograd F(m x m, 3 x 3) matrices (Lavin & Gray 2015) in NumPy, for the tests and for anyone
checking the C++ transforms (kernels/cpu/winograd_matrices.h holds the same numbers).

    U = G g G^T        filter transform (alpha x alpha per (k, c)), alpha = m + 2
    V = B^T d B        input transform of an alpha x alpha input tile d
    Y = A^T (U * V) A  output transform to an m x m output tile
"""

from __future__ import annotations

import numpy as np

TILES = (2, 4, 6)

_F = {
    2: dict(
        BT=[[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        G=[[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
        AT=[[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    4: dict(
        BT=[
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
        G=[
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ],
        AT=[[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
    6: dict(
        BT=[
            [1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0],
            [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
            [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0],
            [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
            [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0],
            [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
            [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0],
            [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1],
        ],
        G=[
            [1, 0, 0],
            [-2 / 9, -2 / 9, -2 / 9],
            [-2 / 9, 2 / 9, -2 / 9],
            [1 / 90, 1 / 45, 2 / 45],
            [1 / 90, -1 / 45, 2 / 45],
            [32 / 45, 16 / 45, 8 / 45],
            [32 / 45, -16 / 45, 8 / 45],
            [0, 0, 1],
        ],
        AT=[
            [1, 1, 1, 1, 1, 1, 1, 0],
            [0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0],
            [0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0],
            [0, 1, -1, 8, -8, 1 / 8, -1 / 8, 0],
            [0, 1, 1, 16, 16, 1 / 16, 1 / 16, 0],
            [0, 1, -1, 32, -32, 1 / 32, -1 / 32, 1],
        ],
    ),
}


def matrices(m: int):
    """(BT, G, AT) as float64 arrays for tile size m."""
    f = _F[m]
    return tuple(np.array(f[k], np.float64) for k in ("BT", "G", "AT"))


def filter_transform(w, m):
    """(K, C, 3, 3) -> U (alpha^2, K, C), U[i*alpha + j] = (G g G^T)[i, j]."""
    _, G, _ = matrices(m)
    U = np.einsum("ir,kcrs,js->ijkc", G, np.asarray(w, np.float64), G)
    return U.reshape(-1, *w.shape[:2])


def input_tiles(x, m, pad_t, pad_l, Ho, Wo):
    """x (N, C, H, W) -> the alpha x alpha input tiles d, shape (N, C, TH, TW, alpha, alpha)."""
    a = m + 2
    N, C, H, W = x.shape
    TH, TW = -(-Ho // m), -(-Wo // m)
    xp = np.zeros((N, C, TH * m + 2, TW * m + 2), np.float64)
    h = min(H, TH * m + 2 - pad_t)
    w = min(W, TW * m + 2 - pad_l)
    xp[:, :, pad_t : pad_t + h, pad_l : pad_l + w] = x[:, :, :h, :w]
    d = np.empty((N, C, TH, TW, a, a))
    for th in range(TH):
        for tw in range(TW):
            d[:, :, th, tw] = xp[:, :, th * m : th * m + a, tw * m : tw * m + a]
    return d


def input_transform(x, m, pad_t, pad_l, Ho, Wo):
    """x -> V (alpha^2, C, N*TH*TW), tiles in (n, th, tw) order."""
    BT, _, _ = matrices(m)
    d = input_tiles(x, m, pad_t, pad_l, Ho, Wo)
    V = np.einsum("ia,nchwab,jb->ijcnhw", BT, d, BT)
    a = m + 2
    return V.reshape(a * a, x.shape[1], -1)


def output_transform(M, m, N, Ho, Wo):
    """M (alpha^2, K, N*TH*TW) -> y (N, K, Ho, Wo) = A^T M A per tile, edges clipped."""
    _, _, AT = matrices(m)
    a = m + 2
    K = M.shape[1]
    TH, TW = -(-Ho // m), -(-Wo // m)
    Mt = np.asarray(M, np.float64).reshape(a, a, K, N, TH, TW)
    Y = np.einsum("ia,abknhw,jb->nkhiwj", AT, Mt, AT).reshape(N, K, TH * m, TW * m)
    return Y[:, :, :Ho, :Wo]
