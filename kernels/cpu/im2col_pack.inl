// Packing the implicit im2col matrix B of one image's group into SGEMM panels, written once over
// a SIMD type V and compiled per ISA (im2col_pack__<isa>.cpp).
//
// B(k, j): k = (c*R + r)*S + s, j = oh*Wo + ow; value x[c, oh*sh - pt + r*dh, ow*sw - pl + s*dw]
// or 0 in the padding. Panel layout: dst[p*kc*NR + (k - k0)*NR + jj] = B(k, j0 + p*NR + jj).
// Four paths:
//  * whole rows (windows as wide as the input, Wo = 1: Kim's CNN): each column's k-sequence is
//    one run of x; W runs are transposed in registers (pack_whole_rows_impl, also used alone by
//    conv2d_rows_bank.cpp);
//  * pointwise (1x1, stride 1, no padding): B is x itself, rows copied with vector loads;
//  * row runs (the usual case): a panel's columns are split into runs sharing an output row;
//    the in-image span is a vector copy (stride 1) or vector gather (other strides), with zeros
//    at the padded ends;
//  * columns (output width < 8 otherwise): runs would be a column each, so each column walks its
//    k sequence instead.
#pragma once
#include <algorithm>

#include "pycnn/shapes.h"
#include "sgemm_pack.inl"
#include "simd.h"

namespace pycnn {

// Windows that span whole input rows: column j's k-sequence within channel c is one contiguous
// run of x, x[c*HW + j*jstride + (k - c*RS)] (RS floats per channel), zero where the run passes
// the end of its plane (a bank of such convolutions packs one B for its deepest window:
// conv2d_rows_bank.cpp). W runs side by side are transposed in registers into W panel rows at a
// time (one float at a time, NR floats apart, took 36% of Kim's conv time).
template <class V>
void pack_whole_rows_impl(const float* x, int64_t HW, int64_t RS, int64_t jstride, int64_t k0, int64_t kc, int64_t j0,
                          int64_t nc, int NR, float* dst) {
  constexpr int W = V::W;
  for (int64_t pj = 0; pj * NR < nc; ++pj) {
    const int64_t jb = j0 + pj * NR, nr = std::min<int64_t>(NR, nc - pj * NR);
    float* d = dst + pj * kc * NR;
    for (int64_t jj0 = 0; jj0 < NR; jj0 += W) {
      const int64_t ncol = std::clamp<int64_t>(nr - jj0, 0, W);
      for (int64_t k = k0; k < k0 + kc;) {
        const int64_t c = k / RS, kend = std::min(k0 + kc, (c + 1) * RS);
        const float* xc = x + c * HW + (jb + jj0) * jstride - c * RS;
        // Column t's run is inside the plane for k < lim0 - t * jstride.
        const int64_t lim0 = HW + c * RS - (jb + jj0) * jstride;
        for (int64_t kk = k; kk < kend; kk += W) {
          const int cnt = (int)std::min<int64_t>(W, kend - kk);
          typename V::reg r[W];
          for (int t = 0; t < W; ++t) {
            const int n = t < ncol ? (int)std::clamp<int64_t>(lim0 - t * jstride - kk, 0, cnt) : 0;
            r[t] = n == W ? V::loadu(xc + t * jstride + kk) : n > 0 ? V::loadu_n(xc + t * jstride + kk, n) : V::zero();
          }
          V::transpose(r);
          for (int q = 0; q < cnt; ++q) V::storeu(d + (kk - k0 + q) * NR + jj0, r[q]);
        }
        k = kend;
      }
    }
  }
}

template <class V>
void im2col_pack_impl(const ConvParams& p, const float* x, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int NR,
                      float* dst) {
  // Windows that span whole input rows (Kim's CNN: a 3..5 x 300 kernel over 300-wide word
  // vectors, Wo = 1) and never leave the image.
  const bool whole_rows = p.Wo == 1 && p.S == p.W && p.pad_l == 0 && p.pad_t == 0 && p.dil_h == 1 && p.dil_w == 1 &&
                          (p.Ho - 1) * p.stride_h + p.R <= p.H && NR % V::W == 0;
  if (whole_rows) return pack_whole_rows_impl<V>(x, p.H * p.W, p.R * p.S, p.stride_h * p.W, k0, kc, j0, nc, NR, dst);
  const int64_t RS = p.R * p.S, HW = p.H * p.W;
  if (p.pointwise()) return pack_rows_impl<V>(x, HW, k0, kc, j0, nc, NR, dst);  // B is x itself
  for (int64_t pj = 0; pj * NR < nc; ++pj) {
    const int64_t jb = j0 + pj * NR;
    const int64_t nr = std::min<int64_t>(NR, nc - pj * NR);
    float* d = dst + pj * kc * NR;
    if (p.Wo < 8) {
      // Column by column: for each (c, r) the taps s form one segment whose in-image part is a
      // strided copy into the column (stride NR floats in the panel).
      for (int64_t jj = 0; jj < NR; ++jj) {
        if (jj >= nr) {
          for (int64_t k = 0; k < kc; ++k) d[k * NR + jj] = 0.0f;
          continue;
        }
        const int64_t j = jb + jj, oh = j / p.Wo, ow = j % p.Wo;
        const int64_t ihb = oh * p.stride_h - p.pad_t, iwb = ow * p.stride_w - p.pad_l;
        int64_t s_lo, s_hi;
        valid_range(iwb, p.dil_w, p.W, p.S, s_lo, s_hi);
        for (int64_t k = k0; k < k0 + kc;) {
          const int64_t c = k / RS, r = (k / p.S) % p.R, s0 = k % p.S;
          const int64_t s1 = std::min<int64_t>(p.S, s0 + (k0 + kc - k));  // segment [s0, s1)
          float* o = d + (k - k0) * NR + jj;
          const int64_t ih = ihb + r * p.dil_h;
          if (ih < 0 || ih >= p.H) {
            for (int64_t t = s0; t < s1; ++t) o[(t - s0) * NR] = 0.0f;
          } else {
            const float* xr = x + (c * p.H + ih) * p.W + iwb;
            const int64_t a = std::clamp(s_lo, s0, s1), b = std::clamp(s_hi, a, s1);
            for (int64_t t = s0; t < a; ++t) o[(t - s0) * NR] = 0.0f;
            for (int64_t t = a; t < b; ++t) o[(t - s0) * NR] = xr[t * p.dil_w];
            for (int64_t t = b; t < s1; ++t) o[(t - s0) * NR] = 0.0f;
          }
          k += s1 - s0;
        }
      }
      continue;
    }
    // Runs of columns that share an output row: (oh, first ow, length, offset in panel).
    struct Run {
      int64_t oh, ow, len, off;
    };
    Run runs[64];
    int nruns = 0;
    for (int64_t off = 0; off < nr;) {
      const int64_t j = jb + off, oh = j / p.Wo, ow = j % p.Wo;
      const int64_t len = std::min<int64_t>(nr - off, p.Wo - ow);
      runs[nruns++] = {oh, ow, len, off};
      off += len;
    }
    int64_t c = k0 / RS, r = (k0 / p.S) % p.R, s = k0 % p.S;
    for (int64_t k = 0; k < kc; ++k) {
      float* drow = d + k * NR;
      const float* xc = x + c * HW;
      for (int ri = 0; ri < nruns; ++ri) {
        const Run& run = runs[ri];
        float* o = drow + run.off;
        const int64_t ih = run.oh * p.stride_h - p.pad_t + r * p.dil_h;
        if (ih < 0 || ih >= p.H) {
          std::fill(o, o + run.len, 0.0f);
          continue;
        }
        const float* xr = xc + ih * p.W;
        const int64_t iw0 = run.ow * p.stride_w - p.pad_l + s * p.dil_w;
        if (p.stride_w == 1) {
          // Columns t with 0 <= iw0 + t < W are inside the image.
          const int64_t lo = std::clamp<int64_t>(-iw0, 0, run.len);
          const int64_t hi = std::clamp<int64_t>(p.W - iw0, lo, run.len);
          for (int64_t t = 0; t < lo; ++t) o[t] = 0.0f;
          copy_floats<V>(o + lo, xr + iw0 + lo, hi - lo);
          for (int64_t t = hi; t < run.len; ++t) o[t] = 0.0f;
        } else {
          int64_t lo, hi;
          valid_range(iw0, p.stride_w, p.W, run.len, lo, hi);
          for (int64_t t = 0; t < lo; ++t) o[t] = 0.0f;
          gather_floats<V>(o + lo, xr + iw0 + lo * p.stride_w, p.stride_w, hi - lo);
          for (int64_t t = hi; t < run.len; ++t) o[t] = 0.0f;
        }
      }
      std::fill(drow + nr, drow + NR, 0.0f);
      if (++s == p.S) {
        s = 0;
        if (++r == p.R) {
          r = 0;
          ++c;
        }
      }
    }
  }
}

}  // namespace pycnn
