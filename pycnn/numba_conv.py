"""algo='numba' and 'numba_im2col': convolution JIT-compiled by numba (@njit(parallel=True)), to
show what a JIT gets against the hand-written C++ kernels on the same problems.

  numba         direct loops: prange over (image, output channel), the output plane accumulated
                tap by tap (the inner loop over output columns is what LLVM vectorizes);
  numba_im2col  each image's column matrix (Cg*R*S, Ho*Wo) built in parallel, then a matrix
                product with prange over output channels.
Both take x (N, C, H, W) float32, any stride, 4-sided padding, dilation and groups, fused bias
and ReLU. Compiled on first use (seconds), cached on disk by numba (cache=True).
"""

from __future__ import annotations

import numpy as np

try:
    import numba
    from numba import njit, prange
except ImportError:  # numba is in the [test] and [bench] extras; without it the algos are not listed
    numba = None

ALGOS = ("numba", "numba_im2col")


def available() -> bool:
    return numba is not None


if numba is not None:

    @njit(parallel=True, cache=True)
    def _direct(xp, w, b, y, sh, sw, dh, dw, groups, relu):
        N, _, _, _ = xp.shape
        K, Cg, R, S = w.shape
        Ho, Wo = y.shape[2], y.shape[3]
        Kg = K // groups
        for nk in prange(N * K):
            n = nk // K
            k = nk % K
            g = k // Kg
            acc = np.zeros((Ho, Wo), np.float32)
            for c in range(Cg):
                for r in range(R):
                    for s in range(S):
                        wv = w[k, c, r, s]
                        for oh in range(Ho):
                            row = xp[n, g * Cg + c, oh * sh + r * dh]
                            for ow in range(Wo):
                                acc[oh, ow] += wv * row[ow * sw + s * dw]
            for oh in range(Ho):
                for ow in range(Wo):
                    v = acc[oh, ow] + b[k]
                    y[n, k, oh, ow] = 0.0 if (relu and v < 0.0) else v

    @njit(parallel=True, cache=True)
    def _im2col(xp, w2, b, y, R, S, sh, sw, dh, dw, groups, relu):
        N, C, _, _ = xp.shape
        K, CRS = w2.shape
        Ho, Wo = y.shape[2], y.shape[3]
        Cg = C // groups
        Kg = K // groups
        cols = np.empty((CRS, Ho * Wo), np.float32)
        for n in range(N):
            for g in range(groups):
                for q in prange(CRS):  # column matrix of this image and group
                    c = q // (R * S)
                    r = (q // S) % R
                    s = q % S
                    for oh in range(Ho):
                        for ow in range(Wo):
                            cols[q, oh * Wo + ow] = xp[n, g * Cg + c, oh * sh + r * dh, ow * sw + s * dw]
                for kk in prange(Kg):  # (Kg, CRS) x (CRS, Ho*Wo)
                    k = g * Kg + kk
                    acc = np.zeros(Ho * Wo, np.float32)
                    for q in range(CRS):
                        a = w2[k, q]
                        for j in range(Ho * Wo):
                            acc[j] += a * cols[q, j]
                    for j in range(Ho * Wo):
                        v = acc[j] + b[k]
                        y[n, k, j // Wo, j % Wo] = 0.0 if (relu and v < 0.0) else v


def conv2d(x, weight, bias, shape, algo, relu):
    """Run one of ALGOS on validated float32 inputs (shape is an ops.ConvShape)."""
    if numba is None:
        raise ValueError(f"algo: {algo!r} needs numba (pip install numba, or the [test]/[bench] extras)")
    pt, pl, pb, pr = shape.pad
    xp = np.ascontiguousarray(np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))))
    b = bias if bias is not None else np.zeros(shape.K, np.float32)
    y = np.empty((shape.N, shape.K, shape.Ho, shape.Wo), np.float32)
    sh, sw = shape.stride
    dh, dw = shape.dilation
    if algo == "numba":
        _direct(xp, weight, b, y, sh, sw, dh, dw, shape.groups, relu)
    else:
        w2 = np.ascontiguousarray(weight.reshape(shape.K, -1))
        _im2col(xp, w2, b, y, shape.R, shape.S, sh, sw, dh, dw, shape.groups, relu)
    return y
