// The four-planes-per-vector loops of the CPU's window templates (pool_fast.cpp): forward and
// backward. Internal header of pool_fast.cpp and pool_fast_lists.cpp, which shares the choice
// of planes (planes_per_vector) and their transposed copies.
#pragma once
#include <algorithm>
#include <vector>

#include "pool_window_simd.h"

namespace convpool::cpu::pool_window {

// ---- four planes per vector ----
//
// Four planes' windows at the same position fill every lane, whatever the row length, and a
// position is padding in all four lanes or in none, so masks cost nothing where windows cross
// the edge and loads are whole vectors at any stride. The planes are read through a transposed
// copy (element i of each plane in one vector, made with 4x4 shuffles); backward adds into a
// transposed dx in window order and stores it back. Timed against four windows of a row per
// vector with `convpool bench pool` on 128 x 32 x 32 x 32 while this was written (2 threads;
// those side-by-side times are not in docs/benchmarks.md), it was faster at every geometry of
// the benchmark matrix but whole 2x2/2 windows, whose row loads split by shuffles need no
// transposition, as long as a row has four windows to fill a vector (on rows of fewer, half
// the lanes or more would be empty). Planes above 64 x 64 keep the row path, whose working
// set does not grow with the plane (not measured).

inline bool planes_per_vector(const PoolGeom& g) {
  const bool whole_2x2 = g.KH == 2 && g.KW == 2 && g.SH == 2 && g.SW == 2 && !g.PH && !g.PW;
  return (!whole_2x2 || g.OW < kLanes) && g.H * g.W <= 64 * 64;
}

// Four transposed planes in this thread's buffer (relu applied when fused).
inline const vf* transposed_group(const PoolGeom& g, const float* first_plane, int cnt) {
  const int HW = g.H * g.W;
  thread_local std::vector<vf> buffer;
  if (buffer.size() < size_t(HW)) buffer.resize(HW);
  transpose_planes(first_plane, size_t(HW), HW, cnt, buffer.data());
  if (g.relu_in)
    for (int i = 0; i < HW; ++i) buffer[i] = relu_lanes(buffer[i]);
  return buffer.data();
}

// The window whose element (0, 0) is at (h0, w0), from transposed planes T; true if it
// crosses the plane's edge or is smaller than its template, ok then saying which positions
// are elements (the same in every lane).
template <int K>
inline bool load_plane_window(const PoolGeom& g, const vf* T, int h0, int w0, vf (&v)[K * K],
                              vi (&ok)[K * K]) {
  const bool inside =
      g.KH == K && g.KW == K && h0 >= 0 && h0 + K <= g.H && w0 >= 0 && w0 + K <= g.W;
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < K; ++j) {
      const int h = h0 + i, w = w0 + j;
      const bool e = inside || (i < g.KH && j < g.KW && h >= 0 && h < g.H && w >= 0 && w < g.W);
      v[i * K + j] = e ? T[h * g.W + w] : vf{};
      ok[i * K + j] = vi{} - int(e);
    }
  return !inside;
}

// ---- SoftPool: each element's exp once ----
//
// SoftPool weighs a window's elements by exp(v - m), m the window's max; overlapping windows
// would take each element's exp once per window covering it (about six times at 5x5 stride
// 2). The weights' ratios do not depend on the shift, so a lane whose plane is finite takes
// exp(v - M) once per element, M the plane's max. Where a window's largest weight is below
// 2^-60 (its max more than 41 below the plane's: its smaller weights could lose precision)
// or the plane holds a NaN or an infinity, the lane takes the window math (its own shift).
// Either way the result is the generic path's within float rounding, as softpool's window
// math already is.
struct SharedExp {
  const vf* E = nullptr;  // exp(v - M), transposed as the planes
  vi finite{};            // lanes whose plane is finite
};

inline SharedExp shared_exp(const PoolGeom& g, const vf* T) {
  const int HW = g.H * g.W;
  thread_local std::vector<vf> buffer;
  if (buffer.size() < size_t(HW)) buffer.resize(HW);
  vf m = T[0];
  vi finite = vi{} - 1;
  for (int i = 0; i < HW; ++i) {
    finite &= vabs(T[i]) <= kPoolFloatMax;  // false for NaN too
    m = sel(T[i] > m, T[i], m);
  }
  m = sel(finite, m, splat(0.f));  // a lane that falls back must not make NaNs from its inf
  for (int i = 0; i < HW; ++i) buffer[i] = exp_nonpositive(sel(finite, T[i] - m, splat(0.f)));
  return {buffer.data(), finite};
}

inline bool lanes_all(vi m, int cnt) {
  for (int l = 0; l < cnt; ++l)
    if (!m[l]) return false;
  return true;
}

// The window's weights e (0 where not an element) and whether each lane can use them.
template <int N>
inline vi shared_weights_usable(const SharedExp& sx, const vf (&e)[N], vf& den) {
  vf top = vf{};
  den = vf{};
  for (int i = 0; i < N; ++i) {
    den += e[i];
    top = sel(e[i] > top, e[i], top);
  }
  return sx.finite & (top >= 0x1p-60f);
}

template <PoolMethod M, int K, LpKind L>
void forward_planes(const PoolGeom& g, const PoolWindowParams& P, const PoolRng& rng, int n,
                    const float* x, float* y) {
  constexpr int N = K * K;
  const int planes = n * g.C, OHW = g.OH * g.OW, groups = (planes + kLanes - 1) / kLanes;
#pragma omp parallel for schedule(static)
  for (int grp = 0; grp < groups; ++grp) {
    const int p0 = grp * kLanes, cnt = std::min(kLanes, planes - p0);
    const vf* T = transposed_group(g, x + size_t(p0) * g.H * g.W, cnt);
    [[maybe_unused]] SharedExp sx;
    if constexpr (M == PoolMethod::softpool) sx = shared_exp(g, T);
    for (int oh = 0; oh < g.OH; ++oh)
      for (int ow = 0; ow < g.OW; ++ow) {
        vf v[N], r;
        vi ok[N];
        const uint64_t out = uint64_t(p0) * OHW + oh * g.OW + ow;
        const int h0 = oh * g.SH - g.PH, w0 = ow * g.SW - g.PW;
        const bool masked = load_plane_window<K>(g, T, h0, w0, v, ok);
        auto window_math = [&] {
          if (!masked) {
            auto ws = window_shape<false, N>(P, N, true, nullptr);
            draw<M>(ws, P, rng, out, cnt, OHW);
            return window_forward<M, false, N, L>(P, ws, v);
          }
          auto ws = window_shape<true, N>(P, g.KH * g.KW, g.include_pad, ok);
          draw<M>(ws, P, rng, out, cnt, OHW);
          return window_forward<M, true, N, L>(P, ws, v);
        };
        if constexpr (M == PoolMethod::softpool) {
          vf e[N], num = vf{}, den;
          vi e_ok[N];
          load_plane_window<K>(g, sx.E, h0, w0, e, e_ok);
          const vi use = shared_weights_usable(sx, e, den);
          for (int i = 0; i < N; ++i) num += e[i] * v[i];
          r = num / den;
          if (!lanes_all(use, cnt)) r = sel(use, r, window_math());
        } else {
          r = window_math();
        }
        for (int l = 0; l < cnt; ++l) y[out + size_t(l) * OHW] = r[l];
      }
  }
}

template <PoolMethod M, int K, LpKind L>
void backward_planes(const PoolGeom& g, const PoolWindowParams& P, const PoolRng& rng, int n,
                     const float* x, const float* y, const float* dy, float* dx) {
  constexpr int N = K * K;
  const int planes = n * g.C, HW = g.H * g.W, OHW = g.OH * g.OW;
  const int groups = (planes + kLanes - 1) / kLanes;
#pragma omp parallel for schedule(static)
  for (int grp = 0; grp < groups; ++grp) {
    const int p0 = grp * kLanes, cnt = std::min(kLanes, planes - p0);
    const vf* T = transposed_group(g, x + size_t(p0) * HW, cnt);
    [[maybe_unused]] SharedExp sx;
    if constexpr (M == PoolMethod::softpool) sx = shared_exp(g, T);
    thread_local std::vector<vf> grads;
    if (grads.size() < size_t(HW)) grads.resize(HW);
    vf* D = grads.data();
    std::fill(D, D + HW, vf{});
    for (int oh = 0; oh < g.OH; ++oh)
      for (int ow = 0; ow < g.OW; ++ow) {
        vf v[N], gr[N] = {};
        vi ok[N];
        const uint64_t out = uint64_t(p0) * OHW + oh * g.OW + ow;
        vf yv, dyv;
        for (int l = 0; l < kLanes; ++l) {
          const size_t at = out + size_t(l < cnt ? l : 0) * OHW;
          yv[l] = y[at];
          dyv[l] = dy[at];
        }
        const int h0 = oh * g.SH - g.PH, w0 = ow * g.SW - g.PW;
        const bool masked = load_plane_window<K>(g, T, h0, w0, v, ok);
        auto window_math = [&](vf (&out_gr)[N]) {
          if (!masked) {
            auto ws = window_shape<false, N>(P, N, true, nullptr);
            draw<M>(ws, P, rng, out, cnt, OHW);
            window_backward<M, false, N, L>(P, ws, v, yv, dyv, out_gr);
          } else {
            auto ws = window_shape<true, N>(P, g.KH * g.KW, g.include_pad, ok);
            draw<M>(ws, P, rng, out, cnt, OHW);
            window_backward<M, true, N, L>(P, ws, v, yv, dyv, out_gr);
          }
        };
        if constexpr (M == PoolMethod::softpool) {
          vf e[N], den;
          vi e_ok[N];
          load_plane_window<K>(g, sx.E, h0, w0, e, e_ok);
          const vi use = shared_weights_usable(sx, e, den);
          const vf scale = dyv / den;
          for (int i = 0; i < N; ++i) gr[i] = scale * e[i] * (1.f + v[i] - yv);
          if (!lanes_all(use, cnt)) {
            vf exact[N] = {};
            window_math(exact);
            for (int i = 0; i < N; ++i) gr[i] = sel(use, gr[i], exact[i]);
          }
        } else {
          window_math(gr);
        }
        for (int i = 0; i < K; ++i)
          for (int j = 0; j < K; ++j)
            if (!masked || ok[i * K + j][0]) D[(h0 + i) * g.W + w0 + j] += gr[i * K + j];
      }
    float* dxp = dx + size_t(p0) * HW;
    untranspose_planes(D, HW, cnt, dxp, size_t(HW));
    if (g.relu_in) {
      const float* xp = x + size_t(p0) * HW;
      for (size_t i = 0; i < size_t(cnt) * HW; ++i) dxp[i] = pool_input_grad(g, xp[i], dxp[i]);
    }
  }
}

}  // namespace convpool::cpu::pool_window
