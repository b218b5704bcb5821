#include "pool_fast.h"

#include "pool_avgtopk_network.h"
#include "pool_simd.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace convpool::cpu {

namespace {

using namespace simd;

// The top-ranked value, as pool_argmax ranks (the first NaN, else the first maximum), and its
// window position.
template <int N>
inline vf top_value(const vf (&v)[N], vi* at = nullptr) {
  vf m = v[0];
  vi pos = vi{};
  for (int i = 1; i < N; ++i) {
    const vi t = (isnan(v[i]) & ~isnan(m)) | (v[i] > m);
    m = sel(t, v[i], m);
    pos = t ? vi{} + i : pos;
  }
  if (at) *at = pos;
  return m;
}

// pool_argmin: the first NaN, else the first minimum.
template <int N>
inline vf min_value(const vf (&v)[N], vi* at = nullptr) {
  vf m = v[0];
  vi pos = vi{};
  for (int i = 1; i < N; ++i) {
    const vi t = ~isnan(m) & (isnan(v[i]) | (v[i] < m));
    m = sel(t, v[i], m);
    pos = t ? vi{} + i : pos;
  }
  if (at) *at = pos;
  return m;
}

template <int N>
inline vf sum_in_order(const vf (&v)[N]) {
  vf s = vf{};
  for (int i = 0; i < N; ++i) s += v[i];
  return s;
}

// fmaxf over the window, as pool_softpool computes it (NaN dropped unless all are NaN).
template <int N>
inline vf fmax_all(const vf (&v)[N]) {
  vf m = v[0];
  for (int i = 1; i < N; ++i) m = sel((v[i] > m) | isnan(m), v[i], m);
  return m;
}

// ---- per-window math, window size N known at compile time ----

template <PoolMethod M, int N, LpKind L>
inline vf window_forward(const PoolWindowParams& P, int k, vf (&v)[N]) {
  if constexpr (M == PoolMethod::max) {
    return top_value(v);
  } else if constexpr (M == PoolMethod::min) {
    return min_value(v);
  } else if constexpr (M == PoolMethod::avg) {
    return sum_in_order(v) / float(N);
  } else if constexpr (M == PoolMethod::mixed) {
    return P.lambda * top_value(v) + (1.f - P.lambda) * (sum_in_order(v) / float(N));
  } else if constexpr (M == PoolMethod::avgtopk || M == PoolMethod::tmaxavg) {
    sort_descending(v);
    vf s = vf{};
    for (int r = 0; r < N; ++r)
      if (r < k) s += v[r];  // k is uniform across lanes; sums in rank order
    const vf mean = s / float(k);
    if constexpr (M == PoolMethod::tmaxavg) return sel(v[0] >= P.threshold, v[0], mean);
    return mean;
  } else if constexpr (M == PoolMethod::softpool) {
    const vf m = fmax_all(v);
    vf num = vf{}, den = vf{};
    for (int i = 0; i < N; ++i) {
      const vf e = exp_nonpositive(v[i] - m);
      num += e * v[i];
      den += e;
    }
    return sel(m > kPoolFloatMax, m, num / den);
  } else {  // lp
    vi nan = vi{};
    vf m = vf{};
    for (int i = 0; i < N; ++i) {
      nan |= isnan(v[i]);
      const vf a = vabs(v[i]);
      m = sel(a > m, a, m);
    }
    vf s = vf{};
    for (int i = 0; i < N; ++i) s += lp_power<L>(vabs(v[i]) / m, P.p);
    vf out = m * lp_root<L>(s, P.p);
    out = sel(m > kPoolFloatMax, m, out);
    out = sel(m == 0.f, splat(0.f), out);
    return sel(nan, splat(std::numeric_limits<float>::quiet_NaN()), out);
  }
}

// gr[i] = dy * d(forward)/d(v_i), as pool_window_backward_ranked computes it.
template <PoolMethod M, int N, LpKind L>
inline void window_backward(const PoolWindowParams& P, int k, const vf (&v)[N], vf y, vf dy,
                            vf (&gr)[N]) {
  if constexpr (M == PoolMethod::max || M == PoolMethod::min) {
    // The element pool_argmax (pool_argmin) picks is the first one equal to the output, NaN
    // matching NaN (the first NaN wins; else the first extreme, -0 and +0 being equal): nine
    // independent compares instead of the forward's serial tournament.
    vi found = vi{};
    const vi y_nan = isnan(y);
    for (int i = 0; i < N; ++i) {
      const vi hit = ((v[i] == y) | (isnan(v[i]) & y_nan)) & ~found;
      gr[i] = sel(hit, dy, splat(0.f));
      found |= hit;
    }
  } else if constexpr (M == PoolMethod::avg) {
    for (int i = 0; i < N; ++i) gr[i] = dy / float(N);
  } else if constexpr (M == PoolMethod::mixed) {
    vi at;
    top_value(v, &at);
    const vf base = dy * (1.f - P.lambda) / float(N), top = dy * P.lambda;
    for (int i = 0; i < N; ++i) gr[i] = sel(at == i, base + top, base);
  } else if constexpr (M == PoolMethod::avgtopk || M == PoolMethod::tmaxavg) {
    // Selected = ranked among the first kk (pool_ranks_before: NaN first, then larger, then
    // the lower window index).
    vi only_max = vi{};
    if constexpr (M == PoolMethod::tmaxavg) only_max = top_value(v) >= P.threshold;
    const vi kk = only_max ? vi{} + 1 : vi{} + k;
    const vf share = sel(only_max, dy, dy / float(k));
    for (int i = 0; i < N; ++i) {
      vi rank = vi{};
      for (int j = 0; j < i; ++j) rank -= isnan(v[j]) | (v[j] >= v[i]);
      for (int j = i + 1; j < N; ++j) rank -= (isnan(v[j]) & ~isnan(v[i])) | (v[j] > v[i]);
      gr[i] = sel(rank < kk, share, splat(0.f));
    }
  } else if constexpr (M == PoolMethod::softpool) {
    const vf m = fmax_all(v);
    vi count = vi{};
    vf den = vf{}, e[N];
    for (int i = 0; i < N; ++i) {
      count -= v[i] > kPoolFloatMax;
      e[i] = exp_nonpositive(v[i] - m);
      den += e[i];
    }
    const vi inf = m > kPoolFloatMax;
    const vf inf_share = dy / __builtin_convertvector(count > 0 ? count : vi{} + 1, vf);
    const vf scale = dy / den;  // one division per window (the generic path divides per element)
    for (int i = 0; i < N; ++i) {
      const vf g = scale * e[i] * (1.f + v[i] - y);
      gr[i] = sel(inf, sel(v[i] > kPoolFloatMax, inf_share, splat(0.f)), g);
    }
  } else {  // lp
    const float pm1 = P.p - 1.f;
    for (int i = 0; i < N; ++i) {
      const vf a = vabs(v[i]);
      const vf s = sel(v[i] > 0.f, splat(1.f), splat(-1.f));
      vf g = dy * s * lp_grad_power<L>(a / y, pm1);
      g = sel(a > 0.f, g, splat(0.f));
      g = sel(y > kPoolFloatMax, sel(a > kPoolFloatMax, dy * s, splat(0.f)), g);
      gr[i] = sel(y > 0.f, g, splat(0.f));
    }
  }
}

// ---- the loops: planes in parallel, each output row in chunks of kLanes windows ----

inline vf load4(const float* p) {
  vf r;
  std::memcpy(&r, p, sizeof r);
  return r;
}

// The KW columns of four whole windows of one input row that starts at e, at stride S: from
// contiguous loads split by shuffles (building each vector from scalars costs 4 loads and 3
// inserts). Only windows at stride KW (2x2/2, 3x3/3) and 3x3/2; reads nothing past the fourth
// window's last element. False: not one of those.
template <int KW>
inline bool load_row_columns(const float* e, int S, vf* col) {
  if constexpr (KW == 2) {
    if (S != 2) return false;
    const vf a = load4(e), b = load4(e + 4);
    col[0] = __builtin_shufflevector(a, b, 0, 2, 4, 6);
    col[1] = __builtin_shufflevector(a, b, 1, 3, 5, 7);
    return true;
  } else {
    static_assert(KW == 3);
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
}

// v[i] lane l = window element i of output ow0 + l (lanes past the row repeat output ow0).
// Four whole windows at a supported stride come from contiguous loads (load_row_columns);
// otherwise vectors are built from scalars in registers (writing lanes through memory would
// stall on store forwarding).
template <int KH, int KW>
inline void load_windows(const PoolGeom& g, const float* row, int ow0, int cnt, vf (&v)[KH * KW]) {
  const int S = g.SW;
  const float* b = row + size_t(ow0) * S;
  bool done = cnt == kLanes;
  for (int i = 0; i < KH && done; ++i) done = load_row_columns<KW>(b + i * g.W, S, v + i * KW);
  if (!done) {
    const int o1 = cnt > 1 ? S : 0, o2 = cnt > 2 ? 2 * S : 0, o3 = cnt > 3 ? 3 * S : 0;
    for (int i = 0; i < KH; ++i)
      for (int j = 0; j < KW; ++j) {
        const float* e = b + i * g.W + j;
        v[i * KW + j] = vf{e[0], e[o1], e[o2], e[o3]};
      }
  }
  if (g.relu_in)
    for (int i = 0; i < KH * KW; ++i) v[i] = sel((v[i] > 0.f) | isnan(v[i]), v[i], splat(0.f));
}

// The inverse of load_row_columns at stride KW: adds the KW column vectors of four disjoint
// windows to the 4 * KW contiguous elements of d (added, not stored, so that a zero gradient
// keeps the sign the scalar path's 0 + g gives it).
template <int KW>
inline void add_row_columns(float* d, const vf* col) {
  vf out[KW];
  if constexpr (KW == 2) {
    out[0] = __builtin_shufflevector(col[0], col[1], 0, 4, 1, 5);
    out[1] = __builtin_shufflevector(col[0], col[1], 2, 6, 3, 7);
  } else {
    static_assert(KW == 3);
    const vf c0 = col[0], c1 = col[1], c2 = col[2];
    out[0] = __builtin_shufflevector(__builtin_shufflevector(c0, c1, 0, 4, 1, 1), c2, 0, 1, 4, 2);
    out[1] = __builtin_shufflevector(__builtin_shufflevector(c1, c2, 1, 5, 1, 2), c0, 0, 1, 6, 3);
    out[2] = __builtin_shufflevector(__builtin_shufflevector(c2, c0, 2, 7, 3, 3), c1, 0, 1, 7, 2);
  }
  for (int q = 0; q < KW; ++q) {
    const vf sum = load4(d + 4 * q) + out[q];
    std::memcpy(d + 4 * q, &sum, sizeof sum);
  }
}

template <PoolMethod M, int KH, int KW, LpKind L>
void forward_rows(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x, float* y) {
  const int planes = n * g.C, k = std::min(P.k, KH * KW);
#pragma omp parallel for schedule(static)
  for (int pl = 0; pl < planes; ++pl) {
    const float* xp = x + size_t(pl) * g.H * g.W;
    float* yp = y + size_t(pl) * g.OH * g.OW;
    for (int oh = 0; oh < g.OH; ++oh) {
      const float* row = xp + size_t(oh) * g.SH * g.W;
      float* yrow = yp + size_t(oh) * g.OW;
      for (int ow0 = 0; ow0 < g.OW; ow0 += kLanes) {
        const int cnt = std::min(kLanes, g.OW - ow0);
        vf v[KH * KW];
        load_windows<KH, KW>(g, row, ow0, cnt, v);
        const vf r = window_forward<M, KH * KW, L>(P, k, v);
        store_lanes(yrow + ow0, r, cnt);
      }
    }
  }
}

template <PoolMethod M, int KH, int KW, LpKind L>
void backward_rows(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x,
                   const float* y, const float* dy, float* dx) {
  constexpr int N = KH * KW;
  const int planes = n * g.C, k = std::min(P.k, N);
#pragma omp parallel for schedule(static)
  for (int pl = 0; pl < planes; ++pl) {
    const float* xp = x + size_t(pl) * g.H * g.W;
    float* dxp = dx + size_t(pl) * g.H * g.W;
    const size_t o = size_t(pl) * g.OH * g.OW;
    std::fill(dxp, dxp + g.H * g.W, 0.f);
    for (int oh = 0; oh < g.OH; ++oh) {
      const float* row = xp + size_t(oh) * g.SH * g.W;
      float* drow = dxp + size_t(oh) * g.SH * g.W;
      for (int ow0 = 0; ow0 < g.OW; ow0 += kLanes) {
        const int cnt = std::min(kLanes, g.OW - ow0);
        vf v[N], gr[N];
        load_windows<KH, KW>(g, row, ow0, cnt, v);
        const size_t at = o + size_t(oh) * g.OW + ow0;
        window_backward<M, N, L>(P, k, v, load_lanes(y + at, cnt), load_lanes(dy + at, cnt), gr);
        if (cnt == kLanes && g.SW == KW) {  // disjoint windows: whole rows of dx at once
          for (int i = 0; i < KH; ++i)
            add_row_columns<KW>(drow + i * g.W + size_t(ow0) * KW, gr + i * KW);
          continue;
        }
        // Columns right to left, so that an element covered by several windows of this row
        // receives their gradients in window order, as the generic path adds them.
        for (int i = 0; i < KH; ++i)
          for (int j = KW - 1; j >= 0; --j) {
            float* d = drow + i * g.W + j + size_t(ow0) * g.SW;
            for (int l = 0; l < cnt; ++l) d[l * g.SW] += gr[i * KW + j][l];
          }
      }
    }
    if (g.relu_in)
      for (int i = 0; i < g.H * g.W; ++i) dxp[i] = pool_input_grad(g, xp[i], dxp[i]);
  }
}

// Max (min) over the windows of forward_rows, also recording the plane offset of the element
// pool_argmax (pool_argmin) picks: the first NaN, else the first maximum (minimum); for a
// scatter-only backward.
template <bool kMin, int KH, int KW>
void select_rows_recording(const PoolGeom& g, int n, const float* x, float* y, int32_t* argmax) {
  constexpr int N = KH * KW;
  const int planes = n * g.C;
#pragma omp parallel for schedule(static)
  for (int pl = 0; pl < planes; ++pl) {
    const float* xp = x + size_t(pl) * g.H * g.W;
    const size_t o = size_t(pl) * g.OH * g.OW;
    for (int oh = 0; oh < g.OH; ++oh) {
      const float* row = xp + size_t(oh) * g.SH * g.W;
      for (int ow0 = 0; ow0 < g.OW; ow0 += kLanes) {
        const int cnt = std::min(kLanes, g.OW - ow0);
        vf v[N];
        load_windows<KH, KW>(g, row, ow0, cnt, v);
        // Lane l's window starts at plane offset first[l]; element i lies i / KW rows and
        // i % KW columns further.
        const int base = oh * g.SH * g.W + ow0 * g.SW;
        const vi first = vi{0, 1, 2, 3} * g.SW + base;
        vf m = v[0];
        vi at = first;
        for (int i = 1; i < N; ++i) {
          const vi t = kMin ? ~isnan(m) & (isnan(v[i]) | (v[i] < m))
                            : (isnan(v[i]) & ~isnan(m)) | (v[i] > m);
          m = sel(t, v[i], m);
          at = t ? first + ((i / KW) * g.W + i % KW) : at;
        }
        store_lanes(y + o + size_t(oh) * g.OW + ow0, m, cnt);
        for (int l = 0; l < cnt; ++l) argmax[o + size_t(oh) * g.OW + ow0 + l] = at[l];
      }
    }
  }
}

// 2x2 and 3x3 windows inside the plane (pool_fast_covers), else a global window.
bool small_window(const PoolGeom& g) {
  return ((g.KH == 2 && g.KW == 2) || (g.KH == 3 && g.KW == 3)) && g.PH == 0 && g.PW == 0 &&
         (g.OH - 1) * g.SH + g.KH <= g.H && (g.OW - 1) * g.SW + g.KW <= g.W;
}

template <PoolMethod M, LpKind L>
void forward_geom(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x, float* y) {
  if (g.KH == 2) return forward_rows<M, 2, 2, L>(g, P, n, x, y);
  forward_rows<M, 3, 3, L>(g, P, n, x, y);
}

template <PoolMethod M, LpKind L>
void backward_geom(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x,
                   const float* y, const float* dy, float* dx) {
  if (g.KH == 2) return backward_rows<M, 2, 2, L>(g, P, n, x, y, dy, dx);
  backward_rows<M, 3, 3, L>(g, P, n, x, y, dy, dx);
}

}  // namespace

bool pool_fast_records_selection(const PoolGeom& g, const PoolWindowParams& p) {
  return (p.method == PoolMethod::max || p.method == PoolMethod::min) && small_window(g);
}

void pool_fast_select_recording(const PoolGeom& g, const PoolWindowParams& p, int n,
                                const float* x, float* y, int32_t* argmax) {
  const bool min = p.method == PoolMethod::min;
  if (g.KH == 2)
    return min ? select_rows_recording<true, 2, 2>(g, n, x, y, argmax)
               : select_rows_recording<false, 2, 2>(g, n, x, y, argmax);
  min ? select_rows_recording<true, 3, 3>(g, n, x, y, argmax)
      : select_rows_recording<false, 3, 3>(g, n, x, y, argmax);
}

bool pool_fast_covers(const PoolGeom& g, const PoolWindowParams& p, bool wants_dlambda) {
  if (p.method == PoolMethod::stochastic || wants_dlambda) return false;
  if (small_window(g)) return true;
  return pool_global_covers(g, p);
}

namespace {

template <bool kForward>
struct Run {
  template <PoolMethod M, LpKind L = LpKind::general>
  static void go(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x,
                 const float* y, const float* dy, float* out) {
    if constexpr (kForward) forward_geom<M, L>(g, P, n, x, out);
    else backward_geom<M, L>(g, P, n, x, y, dy, out);
  }
  static void method(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x,
                     const float* y, const float* dy, float* out) {
    switch (P.method) {
      case PoolMethod::max: return go<PoolMethod::max>(g, P, n, x, y, dy, out);
      case PoolMethod::avg: return go<PoolMethod::avg>(g, P, n, x, y, dy, out);
      case PoolMethod::min: return go<PoolMethod::min>(g, P, n, x, y, dy, out);
      case PoolMethod::mixed: return go<PoolMethod::mixed>(g, P, n, x, y, dy, out);
      case PoolMethod::avgtopk: return go<PoolMethod::avgtopk>(g, P, n, x, y, dy, out);
      case PoolMethod::tmaxavg: return go<PoolMethod::tmaxavg>(g, P, n, x, y, dy, out);
      case PoolMethod::softpool: return go<PoolMethod::softpool>(g, P, n, x, y, dy, out);
      case PoolMethod::lp:
        if (P.p == 1.f) return go<PoolMethod::lp, LpKind::one>(g, P, n, x, y, dy, out);
        if (P.p == 2.f) return go<PoolMethod::lp, LpKind::two>(g, P, n, x, y, dy, out);
        if (P.p == 3.f) return go<PoolMethod::lp, LpKind::three>(g, P, n, x, y, dy, out);
        return go<PoolMethod::lp, LpKind::general>(g, P, n, x, y, dy, out);
      case PoolMethod::stochastic: return;  // not covered (pool_fast_covers)
    }
  }
};

}  // namespace


void pool_forward_fast(const PoolGeom& g, const PoolWindowParams& p, int n, const float* x,
                       float* y) {
  if (!small_window(g)) return pool_global_forward(g, p, n, x, y);
  Run<true>::method(g, p, n, x, nullptr, nullptr, y);
}

void pool_backward_fast(const PoolGeom& g, const PoolWindowParams& p, int n, const float* x,
                        const float* y, const float* dy, float* dx) {
  if (!small_window(g)) return pool_global_backward(g, p, n, x, y, dy, dx);
  Run<false>::method(g, p, n, x, y, dy, dx);
}

}  // namespace convpool::cpu
