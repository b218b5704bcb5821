#include "pool_fast.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace convpool::cpu {

namespace {

// ---- branch-free helpers (selects, so `omp simd` loops vectorise) ----

// The top-ranked value so far, as pool_argmax ranks: the first NaN, else the first maximum.
// Returns true when v replaces m (v comes later in the window).
inline bool later_ranks_first(float v, float m) { return ((v != v) & (m == m)) | (v > m); }
// pool_ranks_before(a, ia, b, ib) for ia < ib and for ia > ib.
inline bool before_if_earlier(float a, float b) { return (a != a) | (a >= b); }
inline bool before_if_later(float a, float b) { return ((a != a) & (b == b)) | (a > b); }

// exp(x) for x <= 0 (or NaN): Cephes' expf polynomial with round-to-nearest range reduction,
// about 1 ulp, written so that it vectorises. exp(-inf) = 0; below -87 it flushes to 0.
inline float exp_nonpositive(float x) {
  const bool tiny = x < -87.f;
  float xc = tiny ? -87.f : x;
  xc = xc == xc ? xc : 0.f;  // NaN: patched below, kept out of the int conversion
  const float magic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  const float nf = (xc * 1.44269504088896341f + magic) - magic;
  const float r = (xc - nf * 0.693359375f) - nf * -2.12194440e-4f;
  float q = 1.9875691500e-4f;
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  q = q * r * r + r + 1.f;
  const int e = (int(nf) + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, sizeof scale);
  const float res = q * scale;
  return tiny ? 0.f : (x == x ? res : x);
}

template <int N>
inline void sort_descending(float (&v)[N]) {  // NaN first; a bubble network, unrolled
  for (int i = 0; i < N - 1; ++i)
    for (int j = N - 1; j > i; --j) {
      const float a = v[j - 1], b = v[j];
      const bool keep = (a != a) | (a >= b);
      v[j - 1] = keep ? a : b;
      v[j] = keep ? b : a;
    }
}

template <int N>
inline int top_index(const float (&v)[N], float& m) {
  m = v[0];
  int at = 0;
  for (int i = 1; i < N; ++i) {
    const bool t = later_ranks_first(v[i], m);
    m = t ? v[i] : m;
    at = t ? i : at;
  }
  return at;
}

template <int N>
inline int min_index(const float (&v)[N], float& m) {  // pool_argmin: the first NaN, else first min
  m = v[0];
  int at = 0;
  for (int i = 1; i < N; ++i) {
    const bool t = (m == m) & ((v[i] != v[i]) | (v[i] < m));
    m = t ? v[i] : m;
    at = t ? i : at;
  }
  return at;
}

template <int N>
inline float sum_in_order(const float (&v)[N]) {
  float s = 0.f;
  for (int i = 0; i < N; ++i) s += v[i];
  return s;
}

// The max fmaxf-style (NaN dropped unless all are NaN), as pool_softpool computes it.
template <int N>
inline float fmax_all(const float (&v)[N]) {
  float m = v[0];
  for (int i = 1; i < N; ++i) m = ((v[i] > m) | (m != m)) ? v[i] : m;
  return m;
}

// ---- per-window math, window size N known at compile time ----

enum class LpKind { one, two, general };

template <PoolMethod M, int N, LpKind L>
inline float window_forward(const PoolWindowParams& P, int k, float (&v)[N]) {
  if constexpr (M == PoolMethod::max) {
    float m;
    top_index(v, m);
    return m;
  } else if constexpr (M == PoolMethod::min) {
    float m;
    min_index(v, m);
    return m;
  } else if constexpr (M == PoolMethod::avg) {
    return sum_in_order(v) / float(N);
  } else if constexpr (M == PoolMethod::mixed) {
    float m;
    top_index(v, m);
    return P.lambda * m + (1.f - P.lambda) * (sum_in_order(v) / float(N));
  } else if constexpr (M == PoolMethod::avgtopk || M == PoolMethod::tmaxavg) {
    sort_descending(v);
    float s = 0.f;
    for (int r = 0; r < N; ++r) s += r < k ? v[r] : 0.f;  // x + 0 == x: rank-order sum
    const float mean = s / float(k);
    if constexpr (M == PoolMethod::tmaxavg) return v[0] >= P.threshold ? v[0] : mean;
    return mean;
  } else if constexpr (M == PoolMethod::softpool) {
    const float m = fmax_all(v);
    float num = 0.f, den = 0.f;
    for (int i = 0; i < N; ++i) {
      const float e = exp_nonpositive(v[i] - m);
      num += e * v[i];
      den += e;
    }
    return m > kPoolFloatMax ? m : num / den;
  } else {  // lp
    bool nan = false;
    float m = 0.f;
    for (int i = 0; i < N; ++i) {
      nan = nan | (v[i] != v[i]);
      const float a = std::fabs(v[i]);
      m = a > m ? a : m;
    }
    float s = 0.f, out;
    if constexpr (L == LpKind::one) {
      for (int i = 0; i < N; ++i) s += std::fabs(v[i]) / m;
      out = m * s;
    } else if constexpr (L == LpKind::two) {
      for (int i = 0; i < N; ++i) {
        const float q = std::fabs(v[i]) / m;
        s += q * q;
      }
      out = m * std::sqrt(s);
    } else {
      for (int i = 0; i < N; ++i) s += powf(std::fabs(v[i]) / m, P.p);
      out = m * powf(s, 1.f / P.p);
    }
    out = m > kPoolFloatMax ? m : out;
    out = m == 0.f ? 0.f : out;
    return nan ? std::numeric_limits<float>::quiet_NaN() : out;
  }
}

// gr[i] = dy * d(forward)/d(v_i), as pool_window_backward_ranked computes it.
template <PoolMethod M, int N, LpKind L>
inline void window_backward(const PoolWindowParams& P, int k, const float (&v)[N], float y,
                            float dy, float (&gr)[N]) {
  for (int i = 0; i < N; ++i) gr[i] = 0.f;
  if constexpr (M == PoolMethod::max || M == PoolMethod::min) {
    float m;
    const int at = M == PoolMethod::max ? top_index(v, m) : min_index(v, m);
    for (int i = 0; i < N; ++i) gr[i] = i == at ? dy : 0.f;
  } else if constexpr (M == PoolMethod::avg) {
    for (int i = 0; i < N; ++i) gr[i] = dy / float(N);
  } else if constexpr (M == PoolMethod::mixed) {
    float m;
    const int at = top_index(v, m);
    const float base = dy * (1.f - P.lambda) / float(N), top = dy * P.lambda;
    for (int i = 0; i < N; ++i) gr[i] = i == at ? base + top : base;
  } else if constexpr (M == PoolMethod::avgtopk || M == PoolMethod::tmaxavg) {
    float m;
    top_index(v, m);
    const bool only_max = M == PoolMethod::tmaxavg && m >= P.threshold;
    const int kk = only_max ? 1 : k;
    const float share = only_max ? dy : dy / float(k);
    for (int i = 0; i < N; ++i) {
      int rank = 0;
      for (int j = 0; j < i; ++j) rank += before_if_earlier(v[j], v[i]);
      for (int j = i + 1; j < N; ++j) rank += before_if_later(v[j], v[i]);
      gr[i] = rank < kk ? share : 0.f;
    }
  } else if constexpr (M == PoolMethod::softpool) {
    const float m = fmax_all(v);
    int count = 0;
    float den = 0.f;
    for (int i = 0; i < N; ++i) {
      count += v[i] > kPoolFloatMax;
      den += exp_nonpositive(v[i] - m);
    }
    const bool inf = m > kPoolFloatMax;
    const float inf_share = dy / float(count > 0 ? count : 1);
    for (int i = 0; i < N; ++i) {
      const float g = dy * exp_nonpositive(v[i] - m) / den * (1.f + v[i] - y);
      gr[i] = inf ? (v[i] > kPoolFloatMax ? inf_share : 0.f) : g;
    }
  } else {  // lp
    for (int i = 0; i < N; ++i) {
      const float a = std::fabs(v[i]);
      const float s = v[i] > 0.f ? 1.f : -1.f;
      float g;
      if constexpr (L == LpKind::one) g = dy * s;
      else if constexpr (L == LpKind::two) g = dy * s * (a / y);
      else g = dy * s * powf(a / y, P.p - 1.f);
      g = a > 0.f ? g : 0.f;
      g = y > kPoolFloatMax ? (a > kPoolFloatMax ? dy * s : 0.f) : g;
      gr[i] = y > 0.f ? g : 0.f;
    }
  }
}

// ---- the loops: planes in parallel, an output row at a time, vectorised across the row ----

template <int KH, int KW, int S>
inline void load_window(const PoolGeom& g, const float* row, int ow, float (&v)[KH * KW]) {
  const int c = ow * (S > 0 ? S : g.SW);
  for (int i = 0; i < KH; ++i)
    for (int j = 0; j < KW; ++j) v[i * KW + j] = pool_input(g, row[i * g.W + c + j]);
}

template <PoolMethod M, int KH, int KW, int S, LpKind L>
void forward_rows(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x, float* y) {
  const int planes = n * g.C, k = std::min(P.k, KH * KW);
#pragma omp parallel for schedule(static)
  for (int pl = 0; pl < planes; ++pl) {
    const float* xp = x + size_t(pl) * g.H * g.W;
    float* yp = y + size_t(pl) * g.OH * g.OW;
    for (int oh = 0; oh < g.OH; ++oh) {
      const float* row = xp + size_t(oh) * g.SH * g.W;
      float* yrow = yp + size_t(oh) * g.OW;
#pragma omp simd
      for (int ow = 0; ow < g.OW; ++ow) {
        float v[KH * KW];
        load_window<KH, KW, S>(g, row, ow, v);
        yrow[ow] = window_forward<M, KH * KW, L>(P, k, v);
      }
    }
  }
}

template <PoolMethod M, int KH, int KW, int S, LpKind L>
void backward_rows(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x,
                   const float* y, const float* dy, float* dx) {
  constexpr int N = KH * KW, kChunk = 64;
  const int planes = n * g.C, k = std::min(P.k, N), SW = S > 0 ? S : g.SW;
#pragma omp parallel for schedule(static)
  for (int pl = 0; pl < planes; ++pl) {
    const float* xp = x + size_t(pl) * g.H * g.W;
    float* dxp = dx + size_t(pl) * g.H * g.W;
    const size_t o = size_t(pl) * g.OH * g.OW;
    std::fill(dxp, dxp + g.H * g.W, 0.f);
    for (int oh = 0; oh < g.OH; ++oh) {
      const float* row = xp + size_t(oh) * g.SH * g.W;
      float* drow = dxp + size_t(oh) * g.SH * g.W;
      for (int ow0 = 0; ow0 < g.OW; ow0 += kChunk) {
        const int cnt = std::min(kChunk, g.OW - ow0);
        float G[N][kChunk];
#pragma omp simd
        for (int c = 0; c < cnt; ++c) {
          const int ow = ow0 + c;
          float v[N], gr[N];
          load_window<KH, KW, S>(g, row, ow, v);
          window_backward<M, N, L>(P, k, v, y[o + size_t(oh) * g.OW + ow],
                                   dy[o + size_t(oh) * g.OW + ow], gr);
          for (int i = 0; i < N; ++i) G[i][c] = gr[i];
        }
        // Columns right to left, so that an element covered by several windows of this row
        // receives their gradients in window order, as the generic path adds them.
        for (int i = 0; i < KH; ++i)
          for (int j = KW - 1; j >= 0; --j) {
            float* d = drow + i * g.W + j + ow0 * SW;
            const float* gi = G[i * KW + j];
            for (int c = 0; c < cnt; ++c) d[c * SW] += gi[c];
          }
      }
    }
    if (g.relu_in)
      for (int i = 0; i < g.H * g.W; ++i) dxp[i] = pool_input_grad(g, xp[i], dxp[i]);
  }
}

template <PoolMethod M, LpKind L>
void forward_geom(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x, float* y) {
  if (g.KH == 2 && g.KW == 2) {
    if (g.SW == 2) return forward_rows<M, 2, 2, 2, L>(g, P, n, x, y);
    return forward_rows<M, 2, 2, 0, L>(g, P, n, x, y);
  }
  if (g.SW == 3) return forward_rows<M, 3, 3, 3, L>(g, P, n, x, y);
  if (g.SW == 2) return forward_rows<M, 3, 3, 2, L>(g, P, n, x, y);
  forward_rows<M, 3, 3, 0, L>(g, P, n, x, y);
}

template <PoolMethod M, LpKind L>
void backward_geom(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x,
                   const float* y, const float* dy, float* dx) {
  if (g.KH == 2 && g.KW == 2) {
    if (g.SW == 2) return backward_rows<M, 2, 2, 2, L>(g, P, n, x, y, dy, dx);
    return backward_rows<M, 2, 2, 0, L>(g, P, n, x, y, dy, dx);
  }
  if (g.SW == 3) return backward_rows<M, 3, 3, 3, L>(g, P, n, x, y, dy, dx);
  if (g.SW == 2) return backward_rows<M, 3, 3, 2, L>(g, P, n, x, y, dy, dx);
  backward_rows<M, 3, 3, 0, L>(g, P, n, x, y, dy, dx);
}

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
        return go<PoolMethod::lp, LpKind::general>(g, P, n, x, y, dy, out);
      case PoolMethod::stochastic: return;  // not covered (pool_fast_covers)
    }
  }
};

}  // namespace

bool pool_fast_covers(const PoolGeom& g, const PoolWindowParams& p, bool wants_dlambda) {
  if (p.method == PoolMethod::stochastic || wants_dlambda) return false;
  const bool size_ok = (g.KH == 2 && g.KW == 2) || (g.KH == 3 && g.KW == 3);
  return size_ok && g.PH == 0 && g.PW == 0 && g.SH >= 1 && g.SW >= 1 &&
         (g.OH - 1) * g.SH + g.KH <= g.H && (g.OW - 1) * g.SW + g.KW <= g.W;
}

void pool_forward_fast(const PoolGeom& g, const PoolWindowParams& p, int n, const float* x,
                       float* y) {
  Run<true>::method(g, p, n, x, nullptr, nullptr, y);
}

void pool_backward_fast(const PoolGeom& g, const PoolWindowParams& p, int n, const float* x,
                        const float* y, const float* dy, float* dx) {
  Run<false>::method(g, p, n, x, y, dy, dx);
}

}  // namespace convpool::cpu
