// One input plane copied into a zero-padded plane: im2col's padded grid.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

namespace pycnn {

// dst (Hp, Wp) = src (H, W) shifted down by pad_t rows and right by pad_l columns, zero
// elsewhere; src rows or columns that fall past Hp / Wp are dropped.
inline void pad_plane(const float* src, int64_t H, int64_t W, int64_t pad_t, int64_t pad_l, float* dst, int64_t Hp,
                      int64_t Wp) {
  const int64_t lo = std::min<int64_t>(pad_l, Wp), hi = std::min<int64_t>(Wp, pad_l + W);
  for (int64_t hp = 0; hp < Hp; ++hp) {
    float* row = dst + hp * Wp;
    const int64_t ih = hp - pad_t;
    if (ih < 0 || ih >= H) {
      std::fill(row, row + Wp, 0.0f);
      continue;
    }
    std::fill(row, row + lo, 0.0f);
    if (hi > lo) std::memcpy(row + lo, src + ih * W, (size_t)(hi - lo) * sizeof(float));
    std::fill(row + std::max(lo, hi), row + Wp, 0.0f);
  }
}

}  // namespace pycnn
