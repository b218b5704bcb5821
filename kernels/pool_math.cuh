// Per-window pooling math shared by the CPU backend and the CUDA kernels.
// A window is given as its n valid values v[0..n) in row-major window order (padding
// excluded); `divisor` is what an average divides by (n, or KH*KW with count-include-pad).
// Ties are broken towards the lowest window index everywhere; NaN ranks above +inf, so
// max, min and top-k propagate NaN.
#pragma once
#include <cmath>
#include <cstdint>

#include "activation_math.cuh"
#include "hd.cuh"
#include "pool_methods.cuh"

namespace convpool {

// The largest finite float: x > kPoolFloatMax holds for +inf only, and !(x <= kPoolFloatMax)
// for +inf and NaN (the same test on the host and in kernels, with no <cmath> overloads).
constexpr float kPoolFloatMax = 3.402823466e+38f;

struct PoolWindowParams {
  PoolMethod method = PoolMethod::max;
  int k = 2;              // avgtopk, tmaxavg
  float p = 2.f;          // lp
  float threshold = 0.f;  // tmaxavg
  float lambda = 0.5f;    // mixed: weight of max (drawn per step in training, 0.5 in eval)
  float u = 0.f;          // stochastic, rsp: the uniform draw for this window (training)
  float rank_a = 0.5f;    // rwp, rsp: the weight of rank r is a (1 - a)^(r-1)
  bool training = false;
};

// Geometry of one pooling layer: input planes C x H x W, window, stride, padding, output.
struct PoolGeom {
  int C, H, W;
  int KH, KW, SH, SW, PH, PW;
  int OH, OW;
  bool include_pad;  // avg divisor: KH*KW (true) or the valid count (false)
  // The preceding ReLU is fused in: windows see relu(x), and backward writes the gradient of
  // x (the ReLU's input), masked as the ReLU's backward would.
  bool relu_in = false;
};

// The geometry of windows kh x kw at strides sh, sw over a C x H x W input padded by ph, pw:
// the output size follows from it (floor: a partial last window is dropped), written once for
// the layer and the tests.
inline PoolGeom make_pool_geom(int C, int H, int W, int kh, int kw, int sh, int sw, int ph,
                               int pw, bool include_pad, bool relu_in) {
  return {C,  H,  W,  kh, kw, sh, sw, ph, pw, (H + 2 * ph - kh) / sh + 1, (W + 2 * pw - kw) / sw + 1,
          include_pad, relu_in};
}

// A plane element as the window sees it.
CP_HD float pool_input(const PoolGeom& g, float x) { return g.relu_in ? relu_forward(x) : x; }
// The gradient reaching plane element x, through the fused ReLU if there is one.
CP_HD float pool_input_grad(const PoolGeom& g, float x, float grad) {
  return g.relu_in ? relu_backward(relu_forward(x), grad) : grad;
}

// Randomness of one pooling call: draws come from (seed, layer, step, output index).
struct PoolRng {
  uint64_t seed = 0;
  uint32_t layer = 0;
  uint64_t step = 0;
  // The global index of output 0: a data-parallel rank's slice of the batch starts there, so
  // the draws do not depend on the number of ranks.
  uint64_t first_output = 0;
};

// Gathers the valid (non-padding) values of window (oh, ow) of one plane into v, in row-major
// window order; returns their count. src, if given, receives their offsets in the plane.
CP_HD int pool_gather_window(const PoolGeom& g, const float* plane, int oh, int ow, float* v,
                             int* src) {
  int n = 0;
  const int h0 = oh * g.SH - g.PH, w0 = ow * g.SW - g.PW;
  for (int kh = 0; kh < g.KH; ++kh) {
    const int h = h0 + kh;
    if (h < 0 || h >= g.H) continue;
    for (int kw = 0; kw < g.KW; ++kw) {
      const int w = w0 + kw;
      if (w < 0 || w >= g.W) continue;
      if (src) src[n] = h * g.W + w;
      v[n++] = pool_input(g, plane[h * g.W + w]);
    }
  }
  return n;
}

// The valid part of window (oh, ow): rows [h_lo, h_hi) and columns [w_lo, w_hi) of the
// plane, and the window position (row-major, kh * KW + kw) of its first valid element.
struct PoolWindowRect {
  int h_lo, h_hi, w_lo, w_hi, k0;
};

CP_HD PoolWindowRect pool_window_rect(const PoolGeom& g, int oh, int ow) {
  const int h0 = oh * g.SH - g.PH, w0 = ow * g.SW - g.PW;
  PoolWindowRect r;
  r.h_lo = h0 > 0 ? h0 : 0;
  r.w_lo = w0 > 0 ? w0 : 0;
  r.h_hi = h0 + g.KH < g.H ? h0 + g.KH : g.H;
  r.w_hi = w0 + g.KW < g.W ? w0 + g.KW : g.W;
  r.k0 = (r.h_lo - h0) * g.KW + (r.w_lo - w0);
  return r;
}

// The outputs whose windows cover plane element (h, w): rows [oh_lo, oh_hi] and columns
// [ow_lo, ow_hi] (empty where lo > hi), from oh * SH - PH <= h < oh * SH - PH + KH. The
// gather-form backward kernels sum over them.
struct PoolCoverage {
  int oh_lo, oh_hi, ow_lo, ow_hi;
};

CP_HD PoolCoverage pool_covering_outputs(const PoolGeom& g, int h, int w) {
  const int first_h = h + g.PH - g.KH + 1, first_w = w + g.PW - g.KW + 1;
  const int last_h = (h + g.PH) / g.SH, last_w = (w + g.PW) / g.SW;
  PoolCoverage c;
  c.oh_lo = first_h > 0 ? (first_h + g.SH - 1) / g.SH : 0;
  c.ow_lo = first_w > 0 ? (first_w + g.SW - 1) / g.SW : 0;
  c.oh_hi = last_h < g.OH - 1 ? last_h : g.OH - 1;
  c.ow_hi = last_w < g.OW - 1 ? last_w : g.OW - 1;
  return c;
}

// Where plane element (h, w) sits among the values pool_gather_window returns for window
// (oh, ow), or -1 if the window does not cover it. The valid part of a window is a rectangle.
CP_HD int pool_window_position(const PoolGeom& g, int oh, int ow, int h, int w) {
  const int h0 = oh * g.SH - g.PH, w0 = ow * g.SW - g.PW;
  if (h < h0 || h >= h0 + g.KH || w < w0 || w >= w0 + g.KW) return -1;
  const int h_lo = h0 > 0 ? h0 : 0, w_lo = w0 > 0 ? w0 : 0;
  const int w_hi = w0 + g.KW < g.W ? w0 + g.KW : g.W;
  return (h - h_lo) * (w_hi - w_lo) + (w - w_lo);
}

// True if (a, ia) ranks before (b, ib) in descending order: NaN first, then larger values,
// then the lower index.
// Written without branches (bitwise & and |): on random data every branch here would
// mispredict half the time, and selection calls it a few times per element.
CP_HD bool pool_ranks_before(float a, int ia, float b, int ib) {
  const bool na = a != a, nb = b != b;
  const bool tie = (a == b) | (na & nb);
  return (na & !nb) | (!na & !nb & (a > b)) | (tie & (ia < ib));
}

// The element following (prev, iprev) in descending rank order; -1 if none. Used K times
// it selects the top K with no mask, in O(n*K).
CP_HD int pool_next_ranked(const float* v, int n, int iprev) {
  const float pv = iprev >= 0 ? v[iprev] : 0.f;
  int best = -1;
  float bv = 0.f;
  for (int i = 0; i < n; ++i) {
    const bool after = (iprev < 0) | pool_ranks_before(pv, iprev, v[i], i);
    const bool better = (best < 0) | pool_ranks_before(v[i], i, bv, best);
    const bool take = after & better;
    best = cp_select(take, i, best);
    bv = cp_select(take, v[i], bv);
  }
  return best;
}

CP_HD int pool_argmax(const float* v, int n) { return pool_next_ranked(v, n, -1); }

CP_HD int pool_argmin(const float* v, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) {
    const bool ni = v[i] != v[i], nb = v[best] != v[best];
    if (nb) break;
    if (ni || v[i] < v[best]) best = i;
  }
  return best;
}

CP_HD float pool_mean(const float* v, int n, int divisor) {
  float s = 0.f;
  for (int i = 0; i < n; ++i) s += v[i];
  return s / float(divisor);
}

// (sum |v|^p)^(1/p), scaled by max|v| so large p neither overflows nor underflows.
CP_HD float pool_lp(const float* v, int n, float p) {
  float m = 0.f;
  for (int i = 0; i < n; ++i) {
    if (v[i] != v[i]) return v[i];  // NaN propagates (fmaxf would drop it)
    m = fmaxf(m, fabsf(v[i]));
  }
  if (m == 0.f) return 0.f;         // all-zero window
  if (m > kPoolFloatMax) return m;  // an infinite element: the norm is +inf, not inf/inf
  float s = 0.f;
  for (int i = 0; i < n; ++i) s += powf(fabsf(v[i]) / m, p);
  return m * powf(s, 1.f / p);
}

// Softmax-weighted sum, with the max subtracted before exponentiation.
CP_HD float pool_softpool(const float* v, int n) {
  float m = v[0];
  for (int i = 1; i < n; ++i) m = fmaxf(m, v[i]);
  if (m > kPoolFloatMax) return m;  // +inf takes all the weight (exp(inf - inf) would be NaN)
  float num = 0.f, den = 0.f;
  for (int i = 0; i < n; ++i) {
    const float e = expf(v[i] - m);
    num += e * v[i];
    den += e;
  }
  return num / den;
}

// Stochastic pooling picks i with probability max(v_i,0)/sum; all-zero windows pick 0. A NaN
// is picked (NaN propagates, as in max), else a +inf (it holds all the probability mass).
CP_HD int pool_stochastic_pick(const float* v, int n, float u) {
  float s = 0.f;
  int inf_at = -1;
  for (int i = 0; i < n; ++i) {
    if (v[i] != v[i]) return i;
    if (v[i] > kPoolFloatMax && inf_at < 0) inf_at = i;
    s += fmaxf(v[i], 0.f);
  }
  if (inf_at >= 0) return inf_at;
  if (!(s > 0.f)) return 0;
  const float target = u * s;
  float c = 0.f;
  int last_positive = 0;
  for (int i = 0; i < n; ++i) {
    const float w = fmaxf(v[i], 0.f);
    if (w > 0.f) last_positive = i;
    c += w;
    if (target < c) return i;
  }
  return last_positive;  // rounding put target at the very end
}

// Evaluation-time stochastic pooling: sum_i p_i v_i = sum v_i^2 / sum v_i over v_i > 0.
CP_HD float pool_stochastic_expect(const float* v, int n) {
  float s = 0.f, q = 0.f;
  bool inf = false;
  for (int i = 0; i < n; ++i) {
    if (v[i] != v[i]) return v[i];  // NaN propagates; +inf below (inf/inf would be NaN)
    inf = inf || v[i] > kPoolFloatMax;
    const float w = fmaxf(v[i], 0.f);
    s += w;
    q += w * w;
  }
  if (inf) return HUGE_VALF;
  return s > 0.f ? q / s : 0.f;
}

// Methods that draw a uniform number per window in training (PoolWindowParams::u).
CP_HD constexpr bool pool_draws_per_window(PoolMethod m) {
  return m == PoolMethod::stochastic || m == PoolMethod::rsp;
}

// Rank-weighted pooling (rwp; rsp in evaluation) weighs the r-th largest element by
// w_r = a (1 - a)^(r-1), normalised over the window's n elements. The weights are
// formed by repeated multiplication and summed in rank order on every backend, so their
// floats agree; a weight that is 0 (a = 1, or underflow) leaves its element out, so that
// an infinity there does not make 0 * inf = NaN.
CP_HD float pool_rank_weight_sum(float a, int n) {
  const float q = 1.f - a;
  float w = a, s = 0.f;
  for (int r = 0; r < n; ++r) s += w, w *= q;
  return s;
}

// The rank that rsp draws in training with the uniform u: the first r whose cumulative weight
// exceeds u * sum (the last weighted rank if rounding put the target at the end). A NaN ranks
// first and is drawn surely: NaN propagates, as in max.
CP_HD int pool_rank_draw(const float* v, int n, const int* ranked, float a, float u) {
  if (n == 0 || v[ranked[0]] != v[ranked[0]]) return 0;
  const float q = 1.f - a, target = u * pool_rank_weight_sum(a, n);
  float w = a, c = 0.f;
  int last = 0;
  for (int r = 0; r < n; ++r) {
    if (w > 0.f) last = r;
    c += w;
    if (target < c) return r;
    w *= q;
  }
  return last;
}

// How many of the window's top-ranked elements a method reads: its selection, which
// pool_rank_top computes sequentially and warp_rank_top (kernels/pool_avgtopk_select.cuh) by warp.
CP_HD int pool_ranks_needed(const PoolWindowParams& P, int n) {
  switch (P.method) {
    case PoolMethod::max:
    case PoolMethod::mixed:
      return n > 0 ? 1 : 0;
    case PoolMethod::avgtopk:
    case PoolMethod::tmaxavg:
      return P.k < n ? P.k : n;
    case PoolMethod::rwp:
    case PoolMethod::rsp:  // the layer refuses larger windows; the bound keeps `ranked` safe
      return n < kPoolMaxRanked ? n : kPoolMaxRanked;
    default:
      return 0;
  }
}

// ranked[0..r): indices of the r top-ranked elements, in rank order (pool_ranks_before).
CP_HD void pool_rank_top(const float* v, int n, int r, int* ranked) {
  int prev = -1;
  for (int i = 0; i < r; ++i) ranked[i] = prev = pool_next_ranked(v, n, prev);
}

// Forward of one window whose selection is given: ranked[0..pool_ranks_needed) as
// pool_rank_top returns it. Top-k sums add the values in rank order on every backend.
CP_HD float pool_window_forward_ranked(const PoolWindowParams& P, const float* v, int n,
                                       int divisor, const int* ranked) {
  switch (P.method) {
    case PoolMethod::max:
      return v[ranked[0]];
    case PoolMethod::avg:
      return pool_mean(v, n, divisor);
    case PoolMethod::min:
      return v[pool_argmin(v, n)];
    case PoolMethod::lp:
      return pool_lp(v, n, P.p);
    case PoolMethod::mixed:
      return P.lambda * v[ranked[0]] + (1.f - P.lambda) * pool_mean(v, n, divisor);
    case PoolMethod::stochastic:
      return P.training ? v[pool_stochastic_pick(v, n, P.u)] : pool_stochastic_expect(v, n);
    case PoolMethod::avgtopk:
    case PoolMethod::tmaxavg: {
      const float m = v[ranked[0]];
      if (P.method == PoolMethod::tmaxavg && m >= P.threshold) return m;
      const int k = pool_ranks_needed(P, n);
      float s = 0.f;
      for (int r = 0; r < k; ++r) s += v[ranked[r]];
      return s / float(k);
    }
    case PoolMethod::softpool:
      return pool_softpool(v, n);
    case PoolMethod::rwp:
    case PoolMethod::rsp: {
      const int m = pool_ranks_needed(P, n);
      if (P.method == PoolMethod::rsp && P.training)
        return v[ranked[pool_rank_draw(v, m, ranked, P.rank_a, P.u)]];
      const float q = 1.f - P.rank_a;
      float w = P.rank_a, num = 0.f;
      for (int r = 0; r < m; ++r) {
        if (w > 0.f) num += w * v[ranked[r]];
        w *= q;
      }
      return num / pool_rank_weight_sum(P.rank_a, m);
    }
  }
  return 0.f;
}

CP_HD float pool_window_forward(const PoolWindowParams& P, const float* v, int n, int divisor) {
  int ranked[kPoolMaxTopK];
  ranked[0] = 0;  // an empty window (n = 0) selects nothing
  pool_rank_top(v, n, pool_ranks_needed(P, n), ranked);
  return pool_window_forward_ranked(P, v, n, divisor, ranked);
}

// g[i] = dy * d(forward)/d(v_i) for the window, given y = forward(v). g has n entries.
// `ranked` is the window's selection, as for pool_window_forward_ranked.
CP_HD void pool_window_backward_ranked(const PoolWindowParams& P, const float* v, int n,
                                       int divisor, const int* ranked, float y, float dy,
                                       float* g) {
  for (int i = 0; i < n; ++i) g[i] = 0.f;
  switch (P.method) {
    case PoolMethod::max:
      g[ranked[0]] = dy;
      return;
    case PoolMethod::min:
      g[pool_argmin(v, n)] = dy;
      return;
    case PoolMethod::avg:
      for (int i = 0; i < n; ++i) g[i] = dy / float(divisor);
      return;
    case PoolMethod::lp:
      if (!(y > 0.f)) return;  // all-zero window: the subgradient 0, never NaN
      for (int i = 0; i < n; ++i) {
        const float a = fabsf(v[i]);
        const float s = v[i] > 0.f ? 1.f : -1.f;
        if (y > kPoolFloatMax)  // an infinite norm: its infinite elements take the gradient
          g[i] = a > kPoolFloatMax ? dy * s : 0.f;
        else if (a > 0.f)  // at 0 the subgradient 0: for p < 1, |x|^(p-1) is inf there
          g[i] = dy * s * powf(a / y, P.p - 1.f);
      }
      return;
    case PoolMethod::mixed:
      for (int i = 0; i < n; ++i) g[i] = dy * (1.f - P.lambda) / float(divisor);
      g[ranked[0]] += dy * P.lambda;
      return;
    case PoolMethod::stochastic:
      if (P.training) {
        g[pool_stochastic_pick(v, n, P.u)] = dy;
      } else {
        float s = 0.f, q = 0.f;
        for (int i = 0; i < n; ++i) s += fmaxf(v[i], 0.f), q += fmaxf(v[i], 0.f) * fmaxf(v[i], 0.f);
        if (!(s > 0.f)) return;
        for (int i = 0; i < n; ++i)
          if (v[i] > 0.f) g[i] = dy * (2.f * v[i] * s - q) / (s * s);
      }
      return;
    case PoolMethod::avgtopk:
    case PoolMethod::tmaxavg: {
      if (P.method == PoolMethod::tmaxavg && v[ranked[0]] >= P.threshold) {
        g[ranked[0]] = dy;
        return;
      }
      const int k = pool_ranks_needed(P, n);
      for (int r = 0; r < k; ++r) g[ranked[r]] = dy / float(k);
      return;
    }
    case PoolMethod::softpool: {
      float m = v[0];
      for (int i = 1; i < n; ++i) m = fmaxf(m, v[i]);
      if (m > kPoolFloatMax) {  // y = +inf: the +inf elements share the gradient
        int count = 0;
        for (int i = 0; i < n; ++i) count += v[i] > kPoolFloatMax;
        for (int i = 0; i < n; ++i)
          if (v[i] > kPoolFloatMax) g[i] = dy / float(count);
        return;
      }
      float den = 0.f;
      for (int i = 0; i < n; ++i) den += expf(v[i] - m);
      for (int i = 0; i < n; ++i) g[i] = dy * expf(v[i] - m) / den * (1.f + v[i] - y);
      return;
    }
    case PoolMethod::rwp:
    case PoolMethod::rsp: {
      const int m = pool_ranks_needed(P, n);
      if (P.method == PoolMethod::rsp && P.training) {
        if (m > 0) g[ranked[pool_rank_draw(v, m, ranked, P.rank_a, P.u)]] = dy;
        return;
      }
      const float share = dy / pool_rank_weight_sum(P.rank_a, m), q = 1.f - P.rank_a;
      float w = P.rank_a;
      for (int r = 0; r < m; ++r) {
        g[ranked[r]] = w * share;
        w *= q;
      }
      return;
    }
  }
}

CP_HD void pool_window_backward(const PoolWindowParams& P, const float* v, int n, int divisor,
                                float y, float dy, float* g) {
  int ranked[kPoolMaxTopK];
  ranked[0] = 0;  // an empty window (n = 0) selects nothing
  pool_rank_top(v, n, pool_ranks_needed(P, n), ranked);
  pool_window_backward_ranked(P, v, n, divisor, ranked, y, dy, g);
}

}  // namespace convpool
