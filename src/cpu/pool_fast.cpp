#include "pool_fast.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "pool_fast_planes.h"
#include "pool_simd.h"
#include "pool_window_simd.h"

namespace convpool::cpu {

namespace {

using namespace simd;
using namespace pool_window;

// ---- loading windows ----

// The K columns of four whole windows of one input row that starts at e, at stride S: from
// contiguous loads split by shuffles (building each vector from scalars costs 4 loads and 3
// inserts). Stride 1 at any K; 2x2/2, 3x3/3, 3x3/2, 4x4/2, 4x4/4 and 5x5/2; reads nothing past
// the fourth window's last element. False: not one of those.
template <int K>
inline bool load_row_columns(const float* e, int S, vf* col) {
  if (S == 1) {  // column j holds j .. j + 3
    for (int j = 0; j < K; ++j) col[j] = load4(e + j);
    return true;
  }
  if constexpr (K == 4) {
    if (S == 2) {  // elements 0..9: column j holds j, j + 2, j + 4, j + 6
      const vf a = load4(e), b = load4(e + 4), c = load4(e + 6);
      col[0] = __builtin_shufflevector(a, b, 0, 2, 4, 6);
      col[1] = __builtin_shufflevector(a, b, 1, 3, 5, 7);
      col[2] = __builtin_shufflevector(__builtin_shufflevector(a, b, 2, 4, 6, 6), c, 0, 1, 2, 6);
      col[3] = __builtin_shufflevector(__builtin_shufflevector(a, b, 3, 5, 7, 7), c, 0, 1, 2, 7);
      return true;
    }
    if (S == 4) {  // elements 0..15: a 4x4 transpose
      const vf a = load4(e), b = load4(e + 4), c = load4(e + 8), d = load4(e + 12);
      const vf ab_lo = __builtin_shufflevector(a, b, 0, 4, 1, 5);
      const vf ab_hi = __builtin_shufflevector(a, b, 2, 6, 3, 7);
      const vf cd_lo = __builtin_shufflevector(c, d, 0, 4, 1, 5);
      const vf cd_hi = __builtin_shufflevector(c, d, 2, 6, 3, 7);
      col[0] = __builtin_shufflevector(ab_lo, cd_lo, 0, 1, 4, 5);
      col[1] = __builtin_shufflevector(ab_lo, cd_lo, 2, 3, 6, 7);
      col[2] = __builtin_shufflevector(ab_hi, cd_hi, 0, 1, 4, 5);
      col[3] = __builtin_shufflevector(ab_hi, cd_hi, 2, 3, 6, 7);
      return true;
    }
    return false;
  } else if constexpr (K == 5) {
    if (S != 2) return false;
    // elements 0..10: column j holds j, j + 2, j + 4, j + 6
    const vf a = load4(e), b = load4(e + 4), c = load4(e + 7);
    col[0] = __builtin_shufflevector(a, b, 0, 2, 4, 6);
    col[1] = __builtin_shufflevector(a, b, 1, 3, 5, 7);
    col[2] = __builtin_shufflevector(__builtin_shufflevector(a, b, 2, 4, 6, 6), c, 0, 1, 2, 5);
    col[3] = __builtin_shufflevector(__builtin_shufflevector(a, b, 3, 5, 7, 7), c, 0, 1, 2, 6);
    col[4] = __builtin_shufflevector(b, c, 0, 2, 5, 7);
    return true;
  } else if constexpr (K == 2) {
    if (S != 2) return false;
    const vf a = load4(e), b = load4(e + 4);
    col[0] = __builtin_shufflevector(a, b, 0, 2, 4, 6);
    col[1] = __builtin_shufflevector(a, b, 1, 3, 5, 7);
    return true;
  } else if constexpr (K == 3) {
    if (S == 3) {  // elements 0..11: column j holds j, j + 3, j + 6, j + 9
      const vf a = load4(e), b = load4(e + 4), c = load4(e + 8);
      col[0] = __builtin_shufflevector(__builtin_shufflevector(a, b, 0, 3, 6, 6), c, 0, 1, 2, 5);
      col[1] = __builtin_shufflevector(__builtin_shufflevector(a, b, 1, 4, 7, 7), c, 0, 1, 2, 6);
      col[2] = __builtin_shufflevector(__builtin_shufflevector(a, b, 2, 5, 5, 5), c, 0, 1, 4, 7);
      return true;
    }
    if (S == 2) {  // elements 0..8: column j holds j, j + 2, j + 4, j + 6
      const vf a = load4(e), b = load4(e + 4);
      col[0] = __builtin_shufflevector(a, b, 0, 2, 4, 6);
      col[1] = __builtin_shufflevector(a, b, 1, 3, 5, 7);
      col[2] = __builtin_shufflevector(__builtin_shufflevector(a, b, 2, 4, 6, 6), splat(e[8]), 0, 1,
                                       2, 4);
      return true;
    }
    return false;
  }
  return false;
}

// Where a plane's windows are read: the plane itself, or a copy of it inside a margin when
// windows cross its edge (padding) or are smaller than their K x K template, so that every
// chunk loads whole templates with load_row_columns and is masked by position alone.
struct Source {
  const float* origin;  // plane element (0, 0)
  int ld;               // row length
  const float* at(int h, int w) const { return origin + ptrdiff_t(h) * ld + w; }
};

inline bool needs_margin(const PoolGeom& g, int K) {
  return g.PH || g.PW || g.KH != K || g.KW != K;
}

// The plane xp as a Source: itself, or copied into this thread's margin buffer (PH rows and PW
// columns before it, and enough after it for the last template; the buffer grows to the
// largest layout once and its margins hold earlier values, never read unmasked).
template <int K>
inline Source source_for(const PoolGeom& g, const float* xp) {
  if (!needs_margin(g, K)) return {xp, g.W};
  thread_local std::vector<float> buffer;
  const int ld = g.W + 2 * g.PW + K, rows = g.H + 2 * g.PH + K;
  if (buffer.size() < size_t(ld) * rows) buffer.resize(size_t(ld) * rows);
  float* origin = buffer.data() + size_t(g.PH) * ld + g.PW;
  for (int h = 0; h < g.H; ++h)
    std::memcpy(origin + size_t(h) * ld, xp + size_t(h) * g.W, sizeof(float) * g.W);
  return {origin, ld};
}

// K x K templates: v[i] lane l = template element i of the l-th window, whose element (0, 0)
// is b + l * S in rows of length ld (lanes past cnt repeat lane 0). Four whole windows at a
// supported stride come from contiguous loads (load_row_columns); otherwise vectors are built
// from scalars in registers (writing lanes through memory would stall on store forwarding).
template <int K>
inline void load_windows(const PoolGeom& g, int ld, const float* b, int cnt, vf (&v)[K * K]) {
  const int S = g.SW;
  bool done = cnt == kLanes;
  for (int i = 0; i < K && done; ++i) done = load_row_columns<K>(b + i * ld, S, v + i * K);
  if (!done) {
    const int o1 = cnt > 1 ? S : 0, o2 = cnt > 2 ? 2 * S : 0, o3 = cnt > 3 ? 3 * S : 0;
    for (int i = 0; i < K; ++i)
      for (int j = 0; j < K; ++j) {
        const float* e = b + i * ld + j;
        v[i * K + j] = vf{e[0], e[o1], e[o2], e[o3]};
      }
  }
  if (g.relu_in)
    for (int i = 0; i < K * K; ++i) v[i] = relu_lanes(v[i]);
}

// The windows of one chunk: element (0, 0) of lane l's window is at plane row h0, column
// w0 + l * S (lanes past cnt repeat lane 0); it may lie in the padding.
struct Chunk {
  int h0, w0, cnt;
  vi lane_w(int S) const {
    const vi l = vi{0, 1, 2, 3};
    return (l < cnt ? l : vi{}) * S + w0;
  }
};

// The chunk's templates from the source, and which positions are window elements: (i, j) is
// one if i < KH, j < KW and it lies in the plane.
template <int K>
inline void load_masked(const PoolGeom& g, const Source& src, const Chunk& c, vf (&v)[K * K],
                        vi (&ok)[K * K]) {
  load_windows<K>(g, src.ld, src.at(c.h0, c.w0), c.cnt, v);
  const vi lw = c.lane_w(g.SW);
  vi column[K];
  for (int j = 0; j < K; ++j) column[j] = (lw + j >= 0) & (lw + j < g.W) & (vi{} - int(j < g.KW));
  for (int i = 0; i < K; ++i) {
    const int h = c.h0 + i;
    const vi row = vi{} - int(i < g.KH && h >= 0 && h < g.H);
    for (int j = 0; j < K; ++j) ok[i * K + j] = row & column[j];
  }
}

// ---- the loops: planes in parallel; each output row in chunks of kLanes windows, masked
// where a window of the chunk crosses the plane's edge ----

// The outputs of a row whose windows lie inside the plane's columns: [lo, hi).
struct Interior {
  int lo, hi;
};
inline Interior interior_columns(const PoolGeom& g) {
  const int lo = std::min(g.OW, (g.PW + g.SW - 1) / g.SW);
  const int last = g.W + g.PW - g.KW;  // the window of output ow starts at ow * SW - PW
  const int hi = last < 0 ? lo : std::clamp(last / g.SW + 1, lo, g.OW);
  return {lo, hi};
}

// Calls f(chunk, first output, masked) for each chunk of output row oh, in output order.
template <int K, class F>
inline void for_each_chunk(const PoolGeom& g, const Interior& in, int oh, F&& f) {
  const int h0 = oh * g.SH - g.PH;
  const bool square = g.KH == K && g.KW == K;
  const bool row_inside = square && h0 >= 0 && h0 + K <= g.H;
  for (int ow0 = 0; ow0 < g.OW; ow0 += kLanes) {
    const int cnt = std::min(kLanes, g.OW - ow0);
    const bool inside = row_inside && ow0 >= in.lo && ow0 + cnt <= in.hi;
    f(Chunk{h0, ow0 * g.SW - g.PW, cnt}, ow0, !inside);
  }
}

template <PoolMethod M, int K, LpKind L>
void forward_rows(const PoolGeom& g, const PoolWindowParams& P, const PoolRng& rng, int n,
                  const float* x, float* y) {
  constexpr int N = K * K;
  const int planes = n * g.C;
  const Interior in = interior_columns(g);
#pragma omp parallel for schedule(static)
  for (int pl = 0; pl < planes; ++pl) {
    const Source src = source_for<K>(g, x + size_t(pl) * g.H * g.W);
    float* yp = y + size_t(pl) * g.OH * g.OW;
    for (int oh = 0; oh < g.OH; ++oh)
      for_each_chunk<K>(g, in, oh, [&](const Chunk& c, int ow0, bool masked) {
        vf v[N], r;
        const uint64_t out = (uint64_t(pl) * g.OH + oh) * g.OW + ow0;
        if (!masked) {
          load_windows<K>(g, src.ld, src.at(c.h0, c.w0), c.cnt, v);
          auto ws = window_shape<false, N>(P, N, true, nullptr);
          draw<M>(ws, P, rng, out, c.cnt);
          r = window_forward<M, false, N, L>(P, ws, v);
        } else {
          vi ok[N];
          load_masked<K>(g, src, c, v, ok);
          auto ws = window_shape<true, N>(P, g.KH * g.KW, g.include_pad, ok);
          draw<M>(ws, P, rng, out, c.cnt);
          r = window_forward<M, true, N, L>(P, ws, v);
        }
        store_lanes(yp + size_t(oh) * g.OW + ow0, r, c.cnt);
      });
  }
}

// The inverse of load_row_columns at stride K: adds the K column vectors of four disjoint
// windows to the 4 * K contiguous elements of d (added, not stored, so that a zero gradient
// keeps the sign the scalar path's 0 + g gives it).
template <int K>
inline void add_row_columns(float* d, const vf* col) {
  vf out[K];
  if constexpr (K == 2) {
    out[0] = __builtin_shufflevector(col[0], col[1], 0, 4, 1, 5);
    out[1] = __builtin_shufflevector(col[0], col[1], 2, 6, 3, 7);
  } else {
    static_assert(K == 3);
    const vf c0 = col[0], c1 = col[1], c2 = col[2];
    out[0] = __builtin_shufflevector(__builtin_shufflevector(c0, c1, 0, 4, 1, 1), c2, 0, 1, 4, 2);
    out[1] = __builtin_shufflevector(__builtin_shufflevector(c1, c2, 1, 5, 1, 2), c0, 0, 1, 6, 3);
    out[2] = __builtin_shufflevector(__builtin_shufflevector(c2, c0, 2, 7, 3, 3), c1, 0, 1, 7, 2);
  }
  for (int q = 0; q < K; ++q) {
    const vf sum = load4(d + 4 * q) + out[q];
    std::memcpy(d + 4 * q, &sum, sizeof sum);
  }
}

// Lanes moved up by s (lane l takes lane l - s; the first s lanes, all of them from 4, are 0).
template <int s>
inline vf shift_up(vf a) {
  const vf z = vf{};
  if constexpr (s == 0)
    return a;
  else if constexpr (s == 1)
    return __builtin_shufflevector(z, a, 0, 4, 5, 6);
  else if constexpr (s == 2)
    return __builtin_shufflevector(z, a, 0, 1, 4, 5);
  else if constexpr (s == 3)
    return __builtin_shufflevector(z, a, 0, 1, 2, 4);
  else
    return z;
}

// One template row of the gradients of four overlapping windows at stride S (1 or 2), added
// to the dx row d that lane 0's window starts at: window l's column j lands on d[l * S + j].
// Each element receives its windows' gradients in window order (the generic path's sums,
// bit for bit): per position the lanes ascend as the columns descend. The vector part covers
// d[0 .. 4 * S), the rest (what the next chunk's windows also cover) is added lane by lane.
// Adding a 0 where no window reaches changes nothing: dx starts at +0 and never becomes -0.
template <int K>
inline void add_row_overlapping(float* d, int S, const vf* col) {
  auto add = [&](float* at, auto... shifted) {
    vf sum = load4(at);
    ((sum += shifted), ...);
    std::memcpy(at, &sum, sizeof sum);
  };
  if (S == 1) {  // position p = l + j
    vf acc[K];
    for (int j = 0; j < K; ++j) acc[j] = col[j];
    [&]<int... J>(std::integer_sequence<int, J...>) {
      add(d, shift_up<K - 1 - J>(acc[K - 1 - J])...);
    }
    (std::make_integer_sequence<int, K>{});
    for (int p = 4; p < 3 + K; ++p)
      for (int l = 0; l < kLanes; ++l)
        if (p - l >= 0 && p - l < K) d[p] += col[p - l][l];
    return;
  }
  // S == 2: even positions 2m take the even columns j of lane m - j / 2, odd positions 2m + 1
  // the odd columns of lane m - (j - 1) / 2; de-interleaved, added, interleaved again.
  vf e = __builtin_shufflevector(load4(d), load4(d + 4), 0, 2, 4, 6);
  vf o = __builtin_shufflevector(load4(d), load4(d + 4), 1, 3, 5, 7);
  for (int j = (K - 1) & ~1; j >= 0; j -= 2)
    e += j == 0 ? col[0] : j == 2 ? shift_up<1>(col[2]) : shift_up<2>(col[4 < K ? 4 : 0]);
  for (int j = (K % 2 == 0 ? K - 1 : K - 2); j >= 1; j -= 2)
    o += j == 1 ? col[1] : shift_up<1>(col[3 < K ? 3 : 0]);
  const vf lo = __builtin_shufflevector(e, o, 0, 4, 1, 5),
           hi = __builtin_shufflevector(e, o, 2, 6, 3, 7);
  std::memcpy(d, &lo, sizeof lo);
  std::memcpy(d + 4, &hi, sizeof hi);
  for (int p = 8; p < 6 + K; ++p)
    for (int l = 0; l < kLanes; ++l)
      if (p - 2 * l >= 0 && p - 2 * l < K) d[p] += col[p - 2 * l][l];
}

// Overlapping windows add into shared elements within one plane, on one thread, in window
// order: no atomics, and the sums are the generic path's, bit for bit. Where windows cross the
// plane's edge, gradients go to a zeroed copy of dx inside the same margin as the input's
// (masked positions add 0), so that every chunk adds with vectors; the plane is copied out.
template <PoolMethod M, int K, LpKind L>
void backward_rows(const PoolGeom& g, const PoolWindowParams& P, const PoolRng& rng, int n,
                   const float* x, const float* y, const float* dy, float* dx) {
  constexpr int N = K * K;
  const int planes = n * g.C;
  const Interior in = interior_columns(g);
  const bool margin = needs_margin(g, K);
#pragma omp parallel for schedule(static)
  for (int pl = 0; pl < planes; ++pl) {
    const float* xp = x + size_t(pl) * g.H * g.W;
    const Source src = source_for<K>(g, xp);
    float* dxp = dx + size_t(pl) * g.H * g.W;
    const size_t o = size_t(pl) * g.OH * g.OW;
    float* d_origin = dxp;  // dx element (0, 0), rows of length src.ld
    if (margin) {
      thread_local std::vector<float> buffer;
      const int rows = g.H + 2 * g.PH + K;
      if (buffer.size() < size_t(src.ld) * rows) buffer.resize(size_t(src.ld) * rows);
      std::fill(buffer.begin(), buffer.begin() + size_t(src.ld) * rows, 0.f);
      d_origin = buffer.data() + size_t(g.PH) * src.ld + g.PW;
    } else {
      std::fill(dxp, dxp + g.H * g.W, 0.f);
    }
    for (int oh = 0; oh < g.OH; ++oh)
      for_each_chunk<K>(g, in, oh, [&](const Chunk& c, int ow0, bool masked) {
        vf v[N], gr[N] = {};
        vi ok[N];
        const size_t at = o + size_t(oh) * g.OW + ow0;
        const vf yv = load_lanes(y + at, c.cnt), dyv = load_lanes(dy + at, c.cnt);
        if (!masked) {
          load_windows<K>(g, src.ld, src.at(c.h0, c.w0), c.cnt, v);
          auto ws = window_shape<false, N>(P, N, true, nullptr);
          draw<M>(ws, P, rng, at, c.cnt);
          window_backward<M, false, N, L>(P, ws, v, yv, dyv, gr);
        } else {
          load_masked<K>(g, src, c, v, ok);
          auto ws = window_shape<true, N>(P, g.KH * g.KW, g.include_pad, ok);
          draw<M>(ws, P, rng, at, c.cnt);
          window_backward<M, true, N, L>(P, ws, v, yv, dyv, gr);
          for (int i = 0; i < N; ++i) gr[i] = sel(ok[i], gr[i], splat(0.f));
        }
        float* d = d_origin + ptrdiff_t(c.h0) * src.ld + c.w0;  // lane 0's element (0, 0)
        if (c.cnt == kLanes) {
          if constexpr (K <= 3) {
            if (g.SW == K) {  // disjoint windows: whole rows of dx at once
              for (int i = 0; i < K; ++i) add_row_columns<K>(d + i * src.ld, gr + i * K);
              return;
            }
          }
          if (g.SW == 1 || g.SW == 2) {
            for (int i = 0; i < K; ++i) add_row_overlapping<K>(d + i * src.ld, g.SW, gr + i * K);
            return;
          }
        }
        // Columns right to left, so that an element covered by several windows of this row
        // receives their gradients in window order, as the generic path adds them.
        for (int i = 0; i < K; ++i)
          for (int j = K - 1; j >= 0; --j)
            for (int l = 0; l < c.cnt; ++l) d[i * src.ld + j + l * g.SW] += gr[i * K + j][l];
      });
    if (margin)
      for (int h = 0; h < g.H; ++h)
        std::memcpy(dxp + size_t(h) * g.W, d_origin + size_t(h) * src.ld, sizeof(float) * g.W);
    if (g.relu_in)
      for (int i = 0; i < g.H * g.W; ++i) dxp[i] = pool_input_grad(g, xp[i], dxp[i]);
  }
}

// Max (min) over the windows of forward_rows, also recording the plane offset of the element
// pool_argmax (pool_argmin) picks: the first NaN, else the first maximum (minimum); for a
// scatter-only backward.
template <bool kMin, int K>
void select_rows_recording(const PoolGeom& g, int n, const float* x, float* y, int32_t* argmax) {
  constexpr int N = K * K;
  const int planes = n * g.C;
  const Interior in = interior_columns(g);
#pragma omp parallel for schedule(static)
  for (int pl = 0; pl < planes; ++pl) {
    const Source src = source_for<K>(g, x + size_t(pl) * g.H * g.W);
    const size_t o = size_t(pl) * g.OH * g.OW;
    for (int oh = 0; oh < g.OH; ++oh)
      for_each_chunk<K>(g, in, oh, [&](const Chunk& c, int ow0, bool masked) {
        vf v[N], m;
        vi ok[N], at;
        if (!masked) {
          load_windows<K>(g, src.ld, src.at(c.h0, c.w0), c.cnt, v);
          const Mask<false, N> all{nullptr};
          m = kMin ? min_value(v, all, &at) : top_value(v, all, &at);
        } else {
          load_masked<K>(g, src, c, v, ok);
          const Mask<true, N> some{ok};
          m = kMin ? min_value(v, some, &at) : top_value(v, some, &at);
        }
        // Lane l's window element (0, 0) is at plane offset first[l]; element i lies i / K
        // rows and i % K columns further.
        const vi first = c.lane_w(g.SW) + c.h0 * g.W;
        const vi offset = (at / K) * g.W + at % K;
        const size_t out = o + size_t(oh) * g.OW + ow0;
        store_lanes(y + out, m, c.cnt);
        for (int l = 0; l < c.cnt; ++l) argmax[out + l] = first[l] + offset[l];
      });
  }
}

// The window template for this geometry: K x K with K the larger window side, 2 to 5, and
// padding smaller than the window (so every window has an element). 0: not covered.
int window_template(const PoolGeom& g) {
  const int K = std::max(g.KH, g.KW);
  if (K < 2 || K > 5 || g.PH >= g.KH || g.PW >= g.KW) return 0;
  return K;
}

template <class F>
void with_template(int K, F&& f) {
  switch (K) {
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    default:
      return f(std::integral_constant<int, 5>{});
  }
}

template <PoolMethod M, LpKind L>
void forward_geom(const PoolGeom& g, const PoolWindowParams& P, const PoolRng& rng, int n,
                  const float* x, float* y) {
  with_template(window_template(g), [&](auto K) {
    // Planes per vector are the window lists' for the methods they take: not instantiated.
    if constexpr (!pool_lists_method(M))
      if (planes_per_vector(g)) return forward_planes<M, K(), L>(g, P, rng, n, x, y);
    forward_rows<M, K(), L>(g, P, rng, n, x, y);
  });
}

template <PoolMethod M, LpKind L>
void backward_geom(const PoolGeom& g, const PoolWindowParams& P, const PoolRng& rng, int n,
                   const float* x, const float* y, const float* dy, float* dx) {
  with_template(window_template(g), [&](auto K) {
    if constexpr (!pool_lists_method(M))
      if (planes_per_vector(g)) return backward_planes<M, K(), L>(g, P, rng, n, x, y, dy, dx);
    backward_rows<M, K(), L>(g, P, rng, n, x, y, dy, dx);
  });
}

template <bool kForward>
struct Run {
  template <PoolMethod M, LpKind L = LpKind::general>
  static void go(const PoolGeom& g, const PoolWindowParams& P, const PoolRng& rng, int n,
                 const float* x, const float* y, const float* dy, float* out) {
    if constexpr (kForward)
      forward_geom<M, L>(g, P, rng, n, x, out);
    else
      backward_geom<M, L>(g, P, rng, n, x, y, dy, out);
  }
  static void method(const PoolGeom& g, const PoolWindowParams& P, const PoolRng& rng, int n,
                     const float* x, const float* y, const float* dy, float* out) {
    switch (P.method) {
      case PoolMethod::max:
        return go<PoolMethod::max>(g, P, rng, n, x, y, dy, out);
      case PoolMethod::avg:
        return go<PoolMethod::avg>(g, P, rng, n, x, y, dy, out);
      case PoolMethod::min:
        return go<PoolMethod::min>(g, P, rng, n, x, y, dy, out);
      case PoolMethod::mixed:
        return go<PoolMethod::mixed>(g, P, rng, n, x, y, dy, out);
      case PoolMethod::stochastic:
        return go<PoolMethod::stochastic>(g, P, rng, n, x, y, dy, out);
      case PoolMethod::avgtopk:
        return go<PoolMethod::avgtopk>(g, P, rng, n, x, y, dy, out);
      case PoolMethod::tmaxavg:
        return go<PoolMethod::tmaxavg>(g, P, rng, n, x, y, dy, out);
      case PoolMethod::softpool:
        return go<PoolMethod::softpool>(g, P, rng, n, x, y, dy, out);
      case PoolMethod::rwp:
        return go<PoolMethod::rwp>(g, P, rng, n, x, y, dy, out);
      case PoolMethod::rsp:
        return go<PoolMethod::rsp>(g, P, rng, n, x, y, dy, out);
      case PoolMethod::lp:
        if (P.p == 1.f) return go<PoolMethod::lp, LpKind::one>(g, P, rng, n, x, y, dy, out);
        if (P.p == 2.f) return go<PoolMethod::lp, LpKind::two>(g, P, rng, n, x, y, dy, out);
        if (P.p == 3.f) return go<PoolMethod::lp, LpKind::three>(g, P, rng, n, x, y, dy, out);
        return go<PoolMethod::lp, LpKind::general>(g, P, rng, n, x, y, dy, out);
    }
  }
};

}  // namespace

const char* pool_fast_path(const PoolGeom& g, const PoolWindowParams& p, bool wants_dlambda) {
  if (wants_dlambda) return nullptr;
  if (pool_global_covers(g, p)) return pool_global_path(g, p);
  if (pool_lists_cover(g, p)) return "window lists, four planes per vector";
  static const char* const names[2][4] = {{"window 2x2", "window 3x3", "window 4x4", "window 5x5"},
                                          {"window 2x2, masked edges", "window 3x3, masked edges",
                                           "window 4x4, masked edges", "window 5x5, masked edges"}};
  static const char* const planes[4] = {
      "window 2x2, four planes per vector", "window 3x3, four planes per vector",
      "window 4x4, four planes per vector", "window 5x5, four planes per vector"};
  const int K = window_template(g);
  if (!K) return nullptr;
  if (planes_per_vector(g)) return planes[K - 2];
  const bool all_inside = g.KH == K && g.KW == K && g.PH == 0 && g.PW == 0 &&
                          (g.OH - 1) * g.SH + K <= g.H && (g.OW - 1) * g.SW + K <= g.W;
  return names[!all_inside][K - 2];
}

bool pool_fast_covers(const PoolGeom& g, const PoolWindowParams& p, bool wants_dlambda) {
  return pool_fast_path(g, p, wants_dlambda) != nullptr;
}

bool pool_fast_records_selection(const PoolGeom& g, const PoolWindowParams& p) {
  if (p.method == PoolMethod::stochastic) return p.training && pool_lists_cover(g, p);
  return (p.method == PoolMethod::max || p.method == PoolMethod::min) &&
         (pool_global_covers(g, p) || pool_lists_cover(g, p) || window_template(g));
}

void pool_fast_select_recording(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng,
                                int n, const float* x, float* y, int32_t* argmax) {
  if (pool_global_covers(g, p)) return pool_global_select_recording(g, p, n, x, y, argmax);
  if (pool_lists_cover(g, p)) return pool_lists_forward(g, p, rng, n, x, y, argmax);
  const bool min = p.method == PoolMethod::min;
  with_template(window_template(g), [&](auto K) {
    min ? select_rows_recording<true, K()>(g, n, x, y, argmax)
        : select_rows_recording<false, K()>(g, n, x, y, argmax);
  });
}

void pool_forward_fast(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                       const float* x, float* y) {
  if (pool_global_covers(g, p)) return pool_global_forward(g, p, n, x, y);
  if (pool_lists_cover(g, p)) return pool_lists_forward(g, p, rng, n, x, y, nullptr);
  Run<true>::method(g, p, rng, n, x, nullptr, nullptr, y);
}

void pool_backward_fast(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                        const float* x, const float* y, const float* dy, float* dx) {
  if (pool_global_covers(g, p)) return pool_global_backward(g, p, n, x, y, dy, dx);
  if (pool_lists_cover(g, p)) return pool_lists_backward(g, p, rng, n, x, y, dy, dx);
  Run<false>::method(g, p, rng, n, x, y, dy, dx);
}

}  // namespace convpool::cpu
