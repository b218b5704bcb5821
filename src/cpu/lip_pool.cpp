// Local importance-based pooling on the CPU, two paths.
// - The generic path gives every output and every dx element lip_pool_math.cuh's result bit
//   for bit (dx summed over the windows in output order, as the CUDA gather sums it); it is the
//   twin that tests/kernel_parity_lip_pool.cpp checks the CUDA kernels against.
// - The fast path (lip_pool_forward/backward, for planes of finite inputs and logits) takes
//   one exponential per element instead of one per window position, as the PyTorch
//   composition (lip2d) has: the weights are exp(gamma x - M) with M the plane's largest
//   logit, in vectors (simd::exp_nonpositive_lanes, about 1 ulp; AVX2's eight lanes where the
//   processor has them, with the same bits), and windows sum them by row bands. A window is
//   the same ratio whichever shift its weights share, so only underflow tells the two apart:
//   a window whose weights sum below 2^-60 (its largest logit some 41.6 or more below the
//   plane's) takes the generic per-window math instead, and planes holding NaN or an
//   infinity (inputs or logits) take the generic path whole. tests/test_lip_pool.cpp holds
//   both paths to the same bounds of a double-precision definition, over fills that reach
//   each of these cases.
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
using simd::load4;
using simd::splat;
using simd::store4;
using simd::vf;

void check_window(const PoolGeom& g) {
  CP_CHECK(lip_pool_window_fits(g),
           "lip_pool: windows of at most 8 columns and 64 positions, not " << g.KH << "x" << g.KW);
}

// A window whose fast-path weights sum below this goes the generic way: its own largest
// weight is then under 2^-60 of the plane's, and those of its elements within 2^-60 of that
// are still normal floats, so what the shared shift loses is below float rounding.
constexpr float kMinWeightSum = 0x1p-60f;

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
  std::vector<float> e, ex, big_a, big_t, col_e, col_ex, per_out_a, per_out_s;
  std::vector<int> w_lo, w_hi;
  int whole_lo = 0, whole_hi = 0;  // the outputs whose windows span all KW columns
  void fit(const PoolGeom& g) {
    const size_t in = size_t(g.H) * g.W;
    for (auto* v : {&e, &ex, &big_a, &big_t})
      if (v->size() < in) v->resize(in);
    for (auto* v : {&col_e, &col_ex})
      if (v->size() < size_t(g.W)) v->resize(size_t(g.W));
    for (auto* v : {&per_out_a, &per_out_s})
      if (v->size() < size_t(g.OW)) v->resize(size_t(g.OW));
    w_lo.resize(size_t(g.OW));
    w_hi.resize(size_t(g.OW));
    whole_lo = g.OW, whole_hi = g.OW;
    for (int ow = 0; ow < g.OW; ++ow) {
      const PoolWindowRect r = pool_window_rect(g, 0, ow);
      w_lo[size_t(ow)] = r.w_lo;
      w_hi[size_t(ow)] = r.w_hi;
      if (r.w_hi - r.w_lo == g.KW) {
        if (whole_lo == g.OW) whole_lo = ow;
        whole_hi = ow + 1;
      }
    }
  }
};
FastScratch& scratch() {
  thread_local FastScratch s;
  return s;
}


// A plane's weights e = exp(gamma x - M) (M its largest logit) and, where ex is given, the
// products e x. False, with nothing written, when an input or a logit is NaN or infinite: the
// plane goes the generic way. In vectors of V; the result does not depend on their width.
template <class V>
[[gnu::always_inline]] inline bool plane_weights_lanes(const float* x, size_t n, float gm, float* e,
                                                       float* ex) {
  using VI = decltype(V{} < V{});
  constexpr size_t kWidth = sizeof(V) / sizeof(float);
  const V big = V{} + FLT_MAX;
  V m = V{} - INFINITY;
  VI finite = VI{} - 1;
  size_t i = 0;
  for (; i + kWidth <= n; i += kWidth) {
    V v;
    std::memcpy(&v, x + i, sizeof v);
    const V l = v * gm;
    finite &= (v <= big) & (v >= -big) & (l <= big) & (l >= -big);
    m = l > m ? l : m;
  }
  float mx = -INFINITY;
  bool ok = true;
  for (size_t k = 0; k < kWidth; ++k) {
    ok = ok && finite[k];
    mx = std::max(mx, m[k]);
  }
  for (; i < n; ++i) {
    const float l = x[i] * gm;
    ok = ok && std::fabs(x[i]) <= FLT_MAX && std::fabs(l) <= FLT_MAX;
    mx = std::max(mx, l);
  }
  if (!ok) return false;
  for (i = 0; i + kWidth <= n; i += kWidth) {
    V v;
    std::memcpy(&v, x + i, sizeof v);
    const V z = v * gm - mx;
    V w;
    simd::exp_nonpositive_lanes(z, w);
    const V wx = w * v;
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
                                                        float* e, float* ex) {
  return plane_weights_lanes<vf8>(x, n, gm, e, ex);
}
#endif

// plane_weights_lanes in the widest vectors the processor has (the exponentials are most of
// the fast path's time): AVX2 where there is AVX2 (without FMA, so every lane rounds as the
// baseline's), else the baseline's four lanes.
bool plane_weights(const float* x, size_t n, float gm, float* e, float* ex) {
#if defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) return plane_weights_avx2(x, n, gm, e, ex);
#endif
  return plane_weights_lanes<vf>(x, n, gm, e, ex);
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
  if (!plane_weights(plane, in_plane, gm, s.e.data(), s.ex.data()))
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

// One window element's backward terms: a = dy / den of its window, y the window's output.
struct ElementTerms {
  float *big_a, *big_t;
  const float *e, *x;
  inline void add(size_t at, float a, float y, float& spread) const {
    const float d = x[at] - y;
    big_a[at] += a;
    big_t[at] += a * d;
    spread += e[at] * d * d;
  }
};

// The fast backward of one plane. With a = dy / den for each window,
//   dx_i = e_i (A_i + gamma T_i),   A_i = sum a,   T_i = sum a (x_i - y)
// over the windows holding element i, and dgamma sums a sum e (x - y)^2 over the windows: the
// generic path's terms, each x - y taken directly. They go window position by window
// position (a row of the band and a column kw of the window, then every window of whole width
// in the row): terms of different windows, which the processor overlaps; windows cut by the
// plane's sides go one by one.
void plane_backward_fast(const PoolGeom& g, float gm, const float* plane, const float* yp,
                         const float* dyp, float* dxp, float& acc, FastScratch& s) {
  const size_t in_plane = size_t(g.H) * g.W;
  if (!plane_weights(plane, in_plane, gm, s.e.data(), nullptr)) {
    if (dxp) std::memset(dxp, 0, in_plane * sizeof(float));
    return plane_backward_generic(g, gm, plane, yp, dyp, dxp, acc);
  }
  const float* e = s.e.data();
  std::memset(s.big_a.data(), 0, in_plane * sizeof(float));
  std::memset(s.big_t.data(), 0, in_plane * sizeof(float));
  const ElementTerms terms{s.big_a.data(), s.big_t.data(), e, plane};
  float* a = s.per_out_a.data();
  float* spread = s.per_out_s.data();
  bool any_generic = false;
  for (int oh = 0; oh < g.OH; ++oh) {
    const PoolWindowRect rows = pool_window_rect(g, oh, 0);
    column_sums(g, e, rows.h_lo, rows.h_hi, s.col_e.data());
    const float* y = yp + size_t(oh) * g.OW;
    const float* d = dyp + size_t(oh) * g.OW;
    for (int ow = 0; ow < g.OW; ++ow) {
      const float den = span_sum(s.col_e.data(), s.w_lo[size_t(ow)], s.w_hi[size_t(ow)]);
      const bool fast = den >= kMinWeightSum;
      any_generic = any_generic || !fast;
      a[ow] = fast ? d[ow] / den : 0.f;  // a generic window's terms come later
      spread[ow] = 0.f;
    }
    for (int h = rows.h_lo; h < rows.h_hi; ++h)
      for (int kw = 0; kw < g.KW; ++kw) {
        const size_t first = size_t(h) * g.W + size_t(s.whole_lo) * g.SW - g.PW + kw;
        for (int ow = s.whole_lo; ow < s.whole_hi; ++ow)
          terms.add(first + size_t(ow - s.whole_lo) * g.SW, a[ow], y[ow], spread[ow]);
      }
    for (int ow = 0; ow < g.OW; ++ow) {
      if (ow >= s.whole_lo && ow < s.whole_hi) continue;
      for (int h = rows.h_lo; h < rows.h_hi; ++h)
        for (int w = s.w_lo[size_t(ow)]; w < s.w_hi[size_t(ow)]; ++w)
          terms.add(size_t(h) * g.W + w, a[ow], y[ow], spread[ow]);
    }
    for (int ow = 0; ow < g.OW; ++ow)
      if (a[ow] != 0.f) acc += a[ow] * spread[ow];
  }
  if (dxp) {
    const vf g4 = splat(gm);
    size_t i = 0;
    for (; i + kLanes <= in_plane; i += kLanes)
      store4(dxp + i, load4(e + i) * (load4(s.big_a.data() + i) + g4 * load4(s.big_t.data() + i)));
    for (; i < in_plane; ++i) dxp[i] = e[i] * (s.big_a[i] + gm * s.big_t[i]);
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
