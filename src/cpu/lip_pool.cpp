// Local importance-based pooling on the CPU, two paths.
// - The generic path gives every output and every dx element lip_pool_math.cuh's result bit
//   for bit (dx summed over the windows in output order, as the CUDA gather sums it); it is the
//   twin that tests/kernel_parity_lip_pool.cpp checks the CUDA kernels against.
// - The fast path (lip_pool_forward/backward, for planes of finite inputs and logits) takes
//   one exponential per element instead of one per window position, as a PyTorch user's
//   composition does: the weights are exp(gamma x - M) with M the plane's largest logit, in
//   vectors (simd::exp_nonpositive_lanes, about 1 ulp; AVX2's eight lanes where the processor
//   has them, with the same bits), and windows sum them by row bands. A window is the same
//   ratio whichever shift its weights share, so only underflow tells the two apart: a window
//   whose weights sum below 2^-60 (its largest logit 41 or more below the plane's) takes the
//   generic per-window math instead, and planes holding NaN or an infinity take the generic
//   path whole. tests/test_lip_pool.cpp holds the fast path to the generic one within
//   float rounding.
//
// 8-lane vectors exist here only inside always-inlined code of a function built for AVX2, so the
// ABI change GCC warns of (passing them to code built without AVX) never arises. The warning
// comes where templates are instantiated, at the end of the file: hence file-wide.
#pragma GCC diagnostic ignored "-Wpsabi"

#include "lip_pool.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "convpool/error.h"
#include "pool_simd.h"

namespace convpool::cpu {

namespace {

using simd::kLanes;
using simd::splat;
using simd::vf;
using simd::vi;

void check_window(const PoolGeom& g) {
  CP_CHECK(lip_pool_window_fits(g),
           "lip_pool: windows of at most 8 columns and 64 positions, not " << g.KH << "x" << g.KW);
}

// A window whose fast-path weights sum below this goes the generic way: its own largest
// weight is then under 2^-60 of the plane's, and those of its elements within 2^-60 of that
// are still normal floats, so what the shared shift loses is below float rounding.
constexpr float kMinWeightSum = 0x1p-60f;

// A window's spread Q - m P (below) keeps its digits while it is at least this share of Q;
// under it, the window's sum of e (x - y)^2 is taken term by term.
constexpr float kMinSpreadShare = 1.f / 16;

// The generic path's forward of one plane.
void plane_forward_generic(const PoolGeom& g, float gm, const float* plane, float* out) {
  float e[kLipPoolMaxWindow];
  for (int oh = 0; oh < g.OH; ++oh)
    for (int ow = 0; ow < g.OW; ++ow) {
      const PoolWindowRect r = pool_window_rect(g, oh, ow);
      const float den = lip_pool_weights(g, r, plane, gm, e);
      out[size_t(oh) * g.OW + ow] = lip_pool_output(g, r, plane, e, den);
    }
}

// The generic path's backward of window (oh, ow): its dx terms added (dxp may be null) and its
// dgamma terms added to acc, in window order.
void window_backward_generic(const PoolGeom& g, float gm, const float* plane, int oh, int ow,
                             float yo, float d, float* dxp, float& acc) {
  float e[kLipPoolMaxWindow];
  const PoolWindowRect r = pool_window_rect(g, oh, ow);
  const float den = lip_pool_weights(g, r, plane, gm, e);
  int j = 0;
  for (int h = r.h_lo; h < r.h_hi; ++h)
    for (int w = r.w_lo; w < r.w_hi; ++w, ++j) {
      const size_t at = size_t(h) * g.W + w;
      const float xv = plane[at];
      if (dxp) dxp[at] += lip_pool_input_grad(e[j], den, xv, yo, gm, d);
      acc += lip_pool_gamma_grad(e[j], den, xv, yo, d);
    }
}

void plane_backward_generic(const PoolGeom& g, float gm, const float* plane, const float* yp,
                            const float* dyp, float* dxp, float& acc) {
  for (int oh = 0; oh < g.OH; ++oh)
    for (int ow = 0; ow < g.OW; ++ow) {
      const size_t o = size_t(oh) * g.OW + ow;
      window_backward_generic(g, gm, plane, oh, ow, yp[o], dyp[o], dxp, acc);
    }
}

// ---- the fast path ----

// Per-thread buffers of the fast path: kept between calls, so a training step allocates
// nothing once the first has run.
struct FastScratch {
  std::vector<float> e, ex, eq, big_a, big_b, col_e, col_ex, col_q, row_a, row_b;
  std::vector<int> w_lo, w_hi;
  void fit(const PoolGeom& g) {
    const size_t in = size_t(g.H) * g.W;
    for (auto* v : {&e, &ex, &eq, &big_a, &big_b})
      if (v->size() < in) v->resize(in);
    for (auto* v : {&col_e, &col_ex, &col_q, &row_a, &row_b})
      if (v->size() < size_t(g.W)) v->resize(size_t(g.W));
    w_lo.resize(size_t(g.OW));
    w_hi.resize(size_t(g.OW));
    for (int ow = 0; ow < g.OW; ++ow) {
      const PoolWindowRect r = pool_window_rect(g, 0, ow);
      w_lo[size_t(ow)] = r.w_lo;
      w_hi[size_t(ow)] = r.w_hi;
    }
  }
};
FastScratch& scratch() {
  thread_local FastScratch s;
  return s;
}

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

// A plane's weights e = exp(gamma x - M) (M its largest logit), the products e x where ex is
// given, and the midpoint of its inputs' range (the offset the backward's sums are taken
// about). False, with nothing written, when an input or a logit is NaN or infinite: the plane
// goes the generic way. In vectors of V; the result does not depend on their width.
template <class V>
[[gnu::always_inline]] inline bool plane_weights_lanes(const float* x, size_t n, float gm, float* e,
                                                       float* ex, float& mid) {
  using VI = decltype(V{} < V{});
  constexpr size_t kWidth = sizeof(V) / sizeof(float);
  const V big = V{} + FLT_MAX;
  V m = V{} - INFINITY, lo = V{} + INFINITY, hi = V{} - INFINITY;
  VI finite = VI{} - 1;
  size_t i = 0;
  for (; i + kWidth <= n; i += kWidth) {
    V v;
    std::memcpy(&v, x + i, sizeof v);
    const V l = v * gm;
    finite &= (v <= big) & (v >= -big) & (l <= big) & (l >= -big);
    m = l > m ? l : m;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  float mx = -INFINITY, x_lo = INFINITY, x_hi = -INFINITY;
  bool ok = true;
  for (size_t k = 0; k < kWidth; ++k) {
    ok = ok && finite[k];
    mx = std::max(mx, m[k]);
    x_lo = std::min(x_lo, lo[k]);
    x_hi = std::max(x_hi, hi[k]);
  }
  for (; i < n; ++i) {
    const float l = x[i] * gm;
    ok = ok && std::fabs(x[i]) <= FLT_MAX && std::fabs(l) <= FLT_MAX;
    mx = std::max(mx, l);
    x_lo = std::min(x_lo, x[i]);
    x_hi = std::max(x_hi, x[i]);
  }
  if (!ok) return false;
  mid = 0.5f * x_lo + 0.5f * x_hi;
  for (i = 0; i + kWidth <= n; i += kWidth) {
    V v;
    std::memcpy(&v, x + i, sizeof v);
    const V w = simd::exp_nonpositive_lanes(v * gm - mx), wx = w * v;
    std::memcpy(e + i, &w, sizeof w);
    if (ex) std::memcpy(ex + i, &wx, sizeof wx);
  }
  for (; i < n; ++i) {
    const float w = simd::exp_nonpositive(splat(x[i] * gm - mx))[0];
    e[i] = w;
    if (ex) ex[i] = w * x[i];
  }
  return true;
}

#if defined(__x86_64__)
typedef float vf8 __attribute__((vector_size(32)));
__attribute__((target("avx2"))) bool plane_weights_avx2(const float* x, size_t n, float gm,
                                                        float* e, float* ex, float& mid) {
  return plane_weights_lanes<vf8>(x, n, gm, e, ex, mid);
}
#endif

// plane_weights_lanes in the widest vectors the processor has (the exponentials are most of
// the fast path's time): AVX2 where there is AVX2 (without FMA, so every lane rounds as the
// baseline's), else the baseline's four lanes.
bool plane_weights(const float* x, size_t n, float gm, float* e, float* ex, float& mid) {
#if defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return plane_weights_avx2(x, n, gm, e, ex, mid);
#endif
  return plane_weights_lanes<vf>(x, n, gm, e, ex, mid);
}

// dst[w] = the sum of rows [h_lo, h_hi) of a plane-sized buffer at column w.
void column_sums(const PoolGeom& g, const float* src, int h_lo, int h_hi, float* dst) {
  const float* first = src + size_t(h_lo) * g.W;
  std::memcpy(dst, first, size_t(g.W) * sizeof(float));
  for (int h = h_lo + 1; h < h_hi; ++h) {
    const float* row = src + size_t(h) * g.W;
    for (int w = 0; w < g.W; ++w) dst[w] += row[w];
  }
}

inline float span_sum(const float* v, int lo, int hi) {
  float s = 0.f;
  for (int w = lo; w < hi; ++w) s += v[w];
  return s;
}

// Windows sum their weights through column sums over the window's rows, then the window's
// columns: one pass over each row band instead of one per window.
void plane_forward_fast(const PoolGeom& g, float gm, const float* plane, float* out,
                        FastScratch& s) {
  const size_t in_plane = size_t(g.H) * g.W;
  float mid;
  if (!plane_weights(plane, in_plane, gm, s.e.data(), s.ex.data(), mid))
    return plane_forward_generic(g, gm, plane, out);
  float ew[kLipPoolMaxWindow];
  for (int oh = 0; oh < g.OH; ++oh) {
    const PoolWindowRect rows = pool_window_rect(g, oh, 0);
    column_sums(g, s.e.data(), rows.h_lo, rows.h_hi, s.col_e.data());
    column_sums(g, s.ex.data(), rows.h_lo, rows.h_hi, s.col_ex.data());
    float* y = out + size_t(oh) * g.OW;
    for (int ow = 0; ow < g.OW; ++ow) {
      const int lo = s.w_lo[size_t(ow)], hi = s.w_hi[size_t(ow)];
      const float den = span_sum(s.col_e.data(), lo, hi);
      if (den >= kMinWeightSum) {
        y[ow] = span_sum(s.col_ex.data(), lo, hi) / den;
      } else {
        const PoolWindowRect r = pool_window_rect(g, oh, ow);
        y[ow] = lip_pool_output(g, r, plane, ew, lip_pool_weights(g, r, plane, gm, ew));
      }
    }
  }
}

// The fast backward of one plane. With s = e / den the window's softmax weights,
//   dx_i = e_i (A_i + gamma ((x_i - c) A_i - B_i))
// where A_i sums dy / den and B_i sums dy (y - c) / den over the windows holding element i,
// and c is any offset (a window's s (x - y) sum to zero): the middle of the plane's range, so
// that activations sharing a large offset keep their digits. A and B go by row bands too:
// each output row's terms spread over the columns, then added to the band's rows.
// dgamma sums dy / den times each window's sum of e (x - y)^2, which comes from the window's
// sums S, P, Q of e, e (x - c) and e (x - c)^2 as
//   (Q - m P) + S (y - c - m)^2,   m = P / S:
// an error in y changes it only to second order, as in the generic path's form (a form linear
// in y would carry y's rounding). A window whose values sit far from c (Q - m P a small share
// of Q) sums its own terms instead.
void plane_backward_fast(const PoolGeom& g, float gm, const float* plane, const float* yp,
                         const float* dyp, float* dxp, float& acc, FastScratch& s) {
  const size_t in_plane = size_t(g.H) * g.W;
  float c;
  if (!plane_weights(plane, in_plane, gm, s.e.data(), nullptr, c)) {
    if (dxp) std::memset(dxp, 0, in_plane * sizeof(float));
    return plane_backward_generic(g, gm, plane, yp, dyp, dxp, acc);
  }
  {
    const vf c4 = splat(c);
    size_t i = 0;
    for (; i + kLanes <= in_plane; i += kLanes) {
      const vf xc = load(plane + i) - c4, p = load(s.e.data() + i) * xc;
      store(s.ex.data() + i, p);
      store(s.eq.data() + i, p * xc);
    }
    for (; i < in_plane; ++i) {
      const float xc = plane[i] - c;
      s.ex[i] = s.e[i] * xc;
      s.eq[i] = s.ex[i] * xc;
    }
  }
  const float* e = s.e.data();
  float* big_a = s.big_a.data();
  float* big_b = s.big_b.data();
  float* row_a = s.row_a.data();
  float* row_b = s.row_b.data();
  if (dxp) {
    std::memset(big_a, 0, in_plane * sizeof(float));
    std::memset(big_b, 0, in_plane * sizeof(float));
  }
  bool any_generic = false;
  for (int oh = 0; oh < g.OH; ++oh) {
    const PoolWindowRect rows = pool_window_rect(g, oh, 0);
    column_sums(g, e, rows.h_lo, rows.h_hi, s.col_e.data());
    column_sums(g, s.ex.data(), rows.h_lo, rows.h_hi, s.col_ex.data());
    column_sums(g, s.eq.data(), rows.h_lo, rows.h_hi, s.col_q.data());
    std::memset(row_a, 0, size_t(g.W) * sizeof(float));
    std::memset(row_b, 0, size_t(g.W) * sizeof(float));
    const size_t o = size_t(oh) * g.OW;
    for (int ow = 0; ow < g.OW; ++ow) {
      const int lo = s.w_lo[size_t(ow)], hi = s.w_hi[size_t(ow)];
      const float den = span_sum(s.col_e.data(), lo, hi);
      if (!(den >= kMinWeightSum)) {
        any_generic = true;
        continue;
      }
      const float yo = yp[o + ow], a = dyp[o + ow] / den;
      const float p = span_sum(s.col_ex.data(), lo, hi), q = span_sum(s.col_q.data(), lo, hi);
      const float m = p / den, d = yo - c - m, spread = q - m * p;
      if (spread >= q * kMinSpreadShare) {
        acc += a * (spread + den * d * d);
      } else {  // the window's values sit far from c, its sums cancel: its own terms
        float exact = 0.f;
        for (int h = rows.h_lo; h < rows.h_hi; ++h) {
          const float* er = e + size_t(h) * g.W;
          const float* xr = plane + size_t(h) * g.W;
          for (int w = lo; w < hi; ++w) exact += er[w] * ((xr[w] - yo) * (xr[w] - yo));
        }
        acc += a * exact;
      }
      const float b = a * (yo - c);
      for (int w = lo; w < hi; ++w) row_a[w] += a, row_b[w] += b;
    }
    if (!dxp) continue;
    for (int h = rows.h_lo; h < rows.h_hi; ++h) {
      float* ar = big_a + size_t(h) * g.W;
      float* br = big_b + size_t(h) * g.W;
      for (int w = 0; w < g.W; ++w) ar[w] += row_a[w], br[w] += row_b[w];
    }
  }
  if (dxp) {
    const vf g4 = splat(gm), c4 = splat(c);
    size_t i = 0;
    for (; i + kLanes <= in_plane; i += kLanes) {
      const vf a = load(big_a + i), t = (load(plane + i) - c4) * a - load(big_b + i);
      store(dxp + i, load(e + i) * (a + g4 * t));
    }
    for (; i < in_plane; ++i)
      dxp[i] = e[i] * (big_a[i] + gm * ((plane[i] - c) * big_a[i] - big_b[i]));
  }
  if (any_generic)
    for (int oh = 0; oh < g.OH; ++oh) {
      const PoolWindowRect rows = pool_window_rect(g, oh, 0);
      column_sums(g, e, rows.h_lo, rows.h_hi, s.col_e.data());
      for (int ow = 0; ow < g.OW; ++ow) {
        const size_t o = size_t(oh) * g.OW + ow;
        if (span_sum(s.col_e.data(), s.w_lo[size_t(ow)], s.w_hi[size_t(ow)]) >= kMinWeightSum)
          continue;
        window_backward_generic(g, gm, plane, oh, ow, yp[o], dyp[o], dxp, acc);
      }
    }
}

// The planes loop of both forwards; the channels loop of both backwards (one thread a
// channel, so that each channel's dgamma has one order whatever the thread count).
template <bool kFast>
void forward(const PoolGeom& g, const float* gamma, const float* x, float* y, int n) {
  check_window(g);
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const long planes = long(n) * g.C;
#pragma omp parallel for schedule(static) if (planes * long(out_plane) * g.KH * g.KW > 32768)
  for (long p = 0; p < planes; ++p) {
    const float* plane = x + size_t(p) * in_plane;
    float* out = y + size_t(p) * out_plane;
    if constexpr (kFast) {
      FastScratch& s = scratch();
      s.fit(g);
      plane_forward_fast(g, gamma[p % g.C], plane, out, s);
    } else {
      plane_forward_generic(g, gamma[p % g.C], plane, out);
    }
  }
}

template <bool kFast>
void backward(const PoolGeom& g, const float* gamma, const float* x, const float* y,
              const float* dy, float* dx, float* dgamma, int n) {
  check_window(g);
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
#pragma omp parallel for schedule(static) if (long(n) * g.C * long(out_plane) * g.KH * g.KW > 32768)
  for (int c = 0; c < g.C; ++c) {
    float acc = 0.f;
    for (int i = 0; i < n; ++i) {
      const size_t p = size_t(i) * g.C + c;
      const float* plane = x + p * in_plane;
      float* dxp = dx ? dx + p * in_plane : nullptr;
      if constexpr (kFast) {
        FastScratch& s = scratch();
        s.fit(g);
        plane_backward_fast(g, gamma[c], plane, y + p * out_plane, dy + p * out_plane, dxp, acc, s);
      } else {
        if (dxp) std::memset(dxp, 0, in_plane * sizeof(float));
        plane_backward_generic(g, gamma[c], plane, y + p * out_plane, dy + p * out_plane, dxp, acc);
      }
    }
    dgamma[c] = acc;
  }
}

}  // namespace

void lip_pool_forward(const PoolGeom& g, const float* gamma, const float* x, float* y, int n) {
  forward<true>(g, gamma, x, y, n);
}
void lip_pool_backward(const PoolGeom& g, const float* gamma, const float* x, const float* y,
                       const float* dy, float* dx, float* dgamma, int n) {
  backward<true>(g, gamma, x, y, dy, dx, dgamma, n);
}
void lip_pool_forward_generic(const PoolGeom& g, const float* gamma, const float* x, float* y,
                              int n) {
  forward<false>(g, gamma, x, y, n);
}
void lip_pool_backward_generic(const PoolGeom& g, const float* gamma, const float* x,
                               const float* y, const float* dy, float* dx, float* dgamma, int n) {
  backward<false>(g, gamma, x, y, dy, dx, dgamma, n);
}

}  // namespace convpool::cpu
