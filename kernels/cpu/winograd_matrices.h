// Winograd minimal filtering F(m, r) matrices, one axis (a 2-D tile F(mh x mw, rh x rw) takes
// one per axis) (Lavin & Gray 2015; the interpolation
// points 0, +-1, +-2, +-1/2, infinity as in wincnn, NNPACK and ncnn). alpha = m + r - 1.
//   U = G g G^T (filter, alpha x alpha), V = B^T d B (input tile), Y = A^T (U .* V) A (m x m).
// B^T depends only on the points (alpha of them) and the scale of G's rows, so the tiles of one
// alpha share it: F(2,3) alpha 4; F(4,3) and F(2,5) alpha 6; F(6,3) and F(4,5) alpha 8. With
// points p_j (the last one infinity) and row scales s_j: G[j][k] = s_j p_j^k (G's last row picks
// g's last tap), A^T[i][j] = p_j^i (its last column picks row m - 1).
// pycnn/winograd.py holds the same matrices for the tests; tests/test_winograd.py checks both
// against each other and the identity Y == correlation.
#pragma once

namespace pycnn {

struct WinogradPoints4 {
  static constexpr int a = 4;
  static constexpr float BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
};

struct WinogradPoints6 {  // 0, 1, -1, 2, -2, inf; G row scales 1/4, -1/6, -1/6, 1/24, 1/24, 1
  static constexpr int a = 6;
  static constexpr float BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                     {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
};

struct WinogradPoints8 {  // 0, 1, -1, 2, -2, 1/2, -1/2, inf; G row scales 1, -2/9, -2/9, 1/90, 1/90, 32/45, 32/45, 1
  static constexpr int a = 8;
  static constexpr float BT[8][8] = {
      {1, 0, -21.f / 4, 0, 21.f / 4, 0, -1, 0},  {0, 1, 1, -17.f / 4, -17.f / 4, 1, 1, 0},
      {0, -1, 1, 17.f / 4, -17.f / 4, -1, 1, 0}, {0, .5f, .25f, -2.5f, -1.25f, 2, 1, 0},
      {0, -.5f, .25f, 2.5f, -1.25f, -2, 1, 0},   {0, 2, 4, -2.5f, -5, .5f, 1, 0},
      {0, -2, 4, 2.5f, -5, -.5f, 1, 0},          {0, -1, 0, 21.f / 4, 0, -21.f / 4, 0, 1}};
};

// 0, +-1, +-2, +-1/2, +-3/2, inf (one-dimensional tiles only); G row scales 1 / prod_{i != j}(p_j - p_i)
// (Lagrange's): the float32 error of these points measured lowest of +-3, +-1/3, +-1/4, +-3/2.
struct WinogradPoints10 {
  static constexpr int a = 10;
  static constexpr float BT[10][10] = {{9.f / 4, 0, -205.f / 16, 0, 273.f / 16, 0, -15.f / 2, 0, 1, 0},
                                       {0, -9.f / 4, -9.f / 4, 169.f / 16, 169.f / 16, -13.f / 2, -13.f / 2, 1, 1, 0},
                                       {0, 9.f / 4, -9.f / 4, -169.f / 16, 169.f / 16, 13.f / 2, -13.f / 2, -1, 1, 0},
                                       {0, -9.f / 8, -9.f / 16, 49.f / 8, 49.f / 16, -7, -7.f / 2, 2, 1, 0},
                                       {0, 9.f / 8, -9.f / 16, -49.f / 8, 49.f / 16, 7, -7.f / 2, -2, 1, 0},
                                       {0, -9.f / 2, -9, 61.f / 8, 61.f / 4, -29.f / 8, -29.f / 4, 1.f / 2, 1, 0},
                                       {0, 9.f / 2, -9, -61.f / 8, 61.f / 4, 29.f / 8, -29.f / 4, -1.f / 2, 1, 0},
                                       {0, -3.f / 2, -1, 63.f / 8, 21.f / 4, -63.f / 8, -21.f / 4, 3.f / 2, 1, 0},
                                       {0, 3.f / 2, -1, -63.f / 8, 21.f / 4, 63.f / 8, -21.f / 4, -3.f / 2, 1, 0},
                                       {0, 9.f / 4, 0, -205.f / 16, 0, 273.f / 16, 0, -15.f / 2, 0, 1}};
};

template <int m, int r>
struct WinogradMatrices;

// F(1, 1): the axis a one-dimensional tile does not transform (1 x r and r x 1 kernels).
template <>
struct WinogradMatrices<1, 1> {
  static constexpr int a = 1;
  static constexpr float BT[1][1] = {{1}};
  static constexpr double G[1][1] = {{1}};
  static constexpr float AT[1][1] = {{1}};
};

template <>
struct WinogradMatrices<2, 3> : WinogradPoints4 {
  static constexpr double G[4][3] = {{1, 0, 0}, {.5, .5, .5}, {.5, -.5, .5}, {0, 0, 1}};
  static constexpr float AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
};

template <>
struct WinogradMatrices<4, 3> : WinogradPoints6 {
  static constexpr double G[6][3] = {{1.0 / 4, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                     {0, 0, 1}};
  static constexpr float AT[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
};

template <>
struct WinogradMatrices<6, 3> : WinogradPoints8 {
  static constexpr double G[8][3] = {{1, 0, 0},
                                     {-2.0 / 9, -2.0 / 9, -2.0 / 9},
                                     {-2.0 / 9, 2.0 / 9, -2.0 / 9},
                                     {1.0 / 90, 1.0 / 45, 2.0 / 45},
                                     {1.0 / 90, -1.0 / 45, 2.0 / 45},
                                     {32.0 / 45, 16.0 / 45, 8.0 / 45},
                                     {32.0 / 45, -16.0 / 45, 8.0 / 45},
                                     {0, 0, 1}};
  static constexpr float AT[6][8] = {{1, 1, 1, 1, 1, 1, 1, 0},
                                     {0, 1, -1, 2, -2, .5f, -.5f, 0},
                                     {0, 1, 1, 4, 4, .25f, .25f, 0},
                                     {0, 1, -1, 8, -8, .125f, -.125f, 0},
                                     {0, 1, 1, 16, 16, 1.f / 16, 1.f / 16, 0},
                                     {0, 1, -1, 32, -32, 1.f / 32, -1.f / 32, 1}};
};

template <>
struct WinogradMatrices<2, 5> : WinogradPoints6 {
  static constexpr double G[6][5] = {{1.0 / 4, 0, 0, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3},
                                     {0, 0, 0, 0, 1}};
  static constexpr float AT[2][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 1}};
};

template <>
struct WinogradMatrices<4, 5> : WinogradPoints8 {
  static constexpr double G[8][5] = {{1, 0, 0, 0, 0},
                                     {-2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9},
                                     {-2.0 / 9, 2.0 / 9, -2.0 / 9, 2.0 / 9, -2.0 / 9},
                                     {1.0 / 90, 1.0 / 45, 2.0 / 45, 4.0 / 45, 8.0 / 45},
                                     {1.0 / 90, -1.0 / 45, 2.0 / 45, -4.0 / 45, 8.0 / 45},
                                     {32.0 / 45, 16.0 / 45, 8.0 / 45, 4.0 / 45, 2.0 / 45},
                                     {32.0 / 45, -16.0 / 45, 8.0 / 45, -4.0 / 45, 2.0 / 45},
                                     {0, 0, 0, 0, 1}};
  static constexpr float AT[4][8] = {{1, 1, 1, 1, 1, 1, 1, 0},
                                     {0, 1, -1, 2, -2, .5f, -.5f, 0},
                                     {0, 1, 1, 4, 4, .25f, .25f, 0},
                                     {0, 1, -1, 8, -8, .125f, -.125f, 1}};
};

template <>
struct WinogradMatrices<3, 4> : WinogradPoints6 {  // one-dimensional only (F(3, 4) under winograd_f2)
  static constexpr double G[6][4] = {{1.0 / 4, 0, 0, 0},
                                     {-1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6},
                                     {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3},
                                     {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3},
                                     {0, 0, 0, 1}};
  static constexpr float AT[3][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 1}};
};

template <>
struct WinogradMatrices<5, 4> : WinogradPoints8 {  // one-dimensional only (F(5, 4) under winograd_f4)
  static constexpr double G[8][4] = {{1, 0, 0, 0},
                                     {-2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9},
                                     {-2.0 / 9, 2.0 / 9, -2.0 / 9, 2.0 / 9},
                                     {1.0 / 90, 1.0 / 45, 2.0 / 45, 4.0 / 45},
                                     {1.0 / 90, -1.0 / 45, 2.0 / 45, -4.0 / 45},
                                     {32.0 / 45, 16.0 / 45, 8.0 / 45, 4.0 / 45},
                                     {32.0 / 45, -16.0 / 45, 8.0 / 45, -4.0 / 45},
                                     {0, 0, 0, 1}};
  static constexpr float AT[5][8] = {{1, 1, 1, 1, 1, 1, 1, 0},
                                     {0, 1, -1, 2, -2, .5f, -.5f, 0},
                                     {0, 1, 1, 4, 4, .25f, .25f, 0},
                                     {0, 1, -1, 8, -8, .125f, -.125f, 0},
                                     {0, 1, 1, 16, 16, 1.f / 16, 1.f / 16, 1}};
};

template <>
struct WinogradMatrices<2, 7> : WinogradPoints8 {  // one-dimensional only (Inception's 1x7 and 7x1)
  static constexpr double G[8][7] = {{1, 0, 0, 0, 0, 0, 0},
                                     {-2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9},
                                     {-2.0 / 9, 2.0 / 9, -2.0 / 9, 2.0 / 9, -2.0 / 9, 2.0 / 9, -2.0 / 9},
                                     {1.0 / 90, 1.0 / 45, 2.0 / 45, 4.0 / 45, 8.0 / 45, 16.0 / 45, 32.0 / 45},
                                     {1.0 / 90, -1.0 / 45, 2.0 / 45, -4.0 / 45, 8.0 / 45, -16.0 / 45, 32.0 / 45},
                                     {32.0 / 45, 16.0 / 45, 8.0 / 45, 4.0 / 45, 2.0 / 45, 1.0 / 45, 1.0 / 90},
                                     {32.0 / 45, -16.0 / 45, 8.0 / 45, -4.0 / 45, 2.0 / 45, -1.0 / 45, 1.0 / 90},
                                     {0, 0, 0, 0, 0, 0, 1}};
  static constexpr float AT[2][8] = {{1, 1, 1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, .5f, -.5f, 1}};
};

template <>
struct WinogradMatrices<4, 7> : WinogradPoints10 {  // one-dimensional only
  static constexpr double G[10][7] = {
      {4.0 / 9, 0, 0, 0, 0, 0, 0},
      {8.0 / 45, 8.0 / 45, 8.0 / 45, 8.0 / 45, 8.0 / 45, 8.0 / 45, 8.0 / 45},
      {8.0 / 45, -8.0 / 45, 8.0 / 45, -8.0 / 45, 8.0 / 45, -8.0 / 45, 8.0 / 45},
      {2.0 / 315, 4.0 / 315, 8.0 / 315, 16.0 / 315, 32.0 / 315, 64.0 / 315, 128.0 / 315},
      {2.0 / 315, -4.0 / 315, 8.0 / 315, -16.0 / 315, 32.0 / 315, -64.0 / 315, 128.0 / 315},
      {-16.0 / 45, -8.0 / 45, -4.0 / 45, -2.0 / 45, -1.0 / 45, -1.0 / 90, -1.0 / 180},
      {-16.0 / 45, 8.0 / 45, -4.0 / 45, 2.0 / 45, -1.0 / 45, 1.0 / 90, -1.0 / 180},
      {-16.0 / 315, -8.0 / 105, -4.0 / 35, -6.0 / 35, -9.0 / 35, -27.0 / 70, -81.0 / 140},
      {-16.0 / 315, 8.0 / 105, -4.0 / 35, 6.0 / 35, -9.0 / 35, 27.0 / 70, -81.0 / 140},
      {0, 0, 0, 0, 0, 0, 1}};
  static constexpr float AT[4][10] = {{1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
                                      {0, 1, -1, 2, -2, 1.f / 2, -1.f / 2, 3.f / 2, -3.f / 2, 0},
                                      {0, 1, 1, 4, 4, 1.f / 4, 1.f / 4, 9.f / 4, 9.f / 4, 0},
                                      {0, 1, -1, 8, -8, 1.f / 8, -1.f / 8, 27.f / 8, -27.f / 8, 1}};
};

// A tile F(mh x mw, rh x rw) as a type, for with_winograd_tile.
template <int mh_, int rh_, int mw_, int rw_>
struct WinogradTile {
  static constexpr int mh = mh_, rh = rh_, mw = mw_, rw = rw_;
};

// One axis of r taps of a one-dimensional tile of size m (m = 2 or 4): F(m, r) for odd r, F(m + 1,
// r) for even r (alpha stays 6 or 8 and shares those points; pycnn/winograd.py's axis_m).
template <int m, int r, class F>
bool winograd_1d(long long R, long long S, F&& f) {
  constexpr int ma = r % 2 == 0 ? m + 1 : m;
  if (R == 1 && S == r) return f(WinogradTile<1, 1, ma, r>()), true;
  if (R == r && S == 1) return f(WinogradTile<ma, r, 1, 1>()), true;
  return false;
}

// The tiles pycnn runs: for output tile m along the long axis of an R x S kernel, calls
// f(WinogradTile<...>()) and returns true, or returns false where there is none. Square: 3x3 (m =
// 2, 4, 6), 5x5 (m = 2, 4); one-dimensional: 1 x r and r x 1 for r = 3, 4, 5, 7 (m = 2, 4; winograd_1d),
// the other axis F(1, 1).
template <class F>
bool with_winograd_tile(int m, long long R, long long S, F&& f) {
  if (R == 3 && S == 3) {
    if (m == 2) return f(WinogradTile<2, 3, 2, 3>()), true;
    if (m == 4) return f(WinogradTile<4, 3, 4, 3>()), true;
    if (m == 6) return f(WinogradTile<6, 3, 6, 3>()), true;
  } else if (R == 5 && S == 5) {
    if (m == 2) return f(WinogradTile<2, 5, 2, 5>()), true;
    if (m == 4) return f(WinogradTile<4, 5, 4, 5>()), true;
  } else if (m == 2) {
    return winograd_1d<2, 3>(R, S, f) || winograd_1d<2, 4>(R, S, f) || winograd_1d<2, 5>(R, S, f) ||
           winograd_1d<2, 7>(R, S, f);
  } else if (m == 4) {
    return winograd_1d<4, 3>(R, S, f) || winograd_1d<4, 4>(R, S, f) || winograd_1d<4, 5>(R, S, f) ||
           winograd_1d<4, 7>(R, S, f);
  }
  return false;
}

}  // namespace pycnn
