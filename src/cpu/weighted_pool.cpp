// Weighted pooling on the CPU. Every output and every dx element gets weighted_pool_math.cuh's
// result bit for bit: a window that lies wholly inside the plane has the channel's full set of
// weights, computed once per plane by the same function, and rows of such windows are done
// for many outputs at once, each sum's terms still added in the per-window order.
// tests/kernel_parity_weighted_pool.cpp checks the CUDA kernels against this file.
#include "weighted_pool.h"

#include <algorithm>
#include <cstring>

#include "convpool/error.h"

namespace convpool::cpu {

namespace {

constexpr int kChunk = 256;  // outputs of a row summed together (their sums stay in L1)
constexpr int kMaxWidth = 8;  // windows of at most 64 positions are square: at most 8 wide
static_assert(kMaxWidth * kMaxWidth == kWeightedPoolMaxWindow);

// The outputs ow in [lo, hi) whose windows are whole in width (inside the plane).
struct WholeRange {
  int lo, hi;
};
WholeRange whole_columns(const PoolGeom& g) {
  const int lo = std::min(g.OW, (g.PW + g.SW - 1) / g.SW);
  const int span = g.W + g.PW - g.KW;  // the last whole window's start, less PW
  return {lo, span < 0 ? lo : std::max(lo, std::min(g.OW, span / g.SW + 1))};
}

// A channel's window weights by the shape of the window's valid part (the rows and columns of
// the window inside the plane): computed once per channel and call, not once per window. The
// whole window is one such shape; padded edges have a few. Weights are weighted_pool_weights'
// for the first window of a shape, the same bits for every window of that shape.
class ChannelWeights {
 public:
  ChannelWeights(const PoolGeom& g, const float* logits) : g_(g), logits_(logits) {
    whole_ = find(PoolWindowRect{0, g.KH, 0, g.KW, 0});
  }
  int whole() const { return whole_; }
  const float* e(int slot) const { return e_[slot]; }
  float den(int slot) const { return den_[slot]; }
  // The slot of r's shape (computed on first use), or -1 when the cache is full (then the
  // caller computes the weights itself).
  int find(const PoolWindowRect& r) {
    const int k0h = r.k0 / g_.KW, k0w = r.k0 % g_.KW;
    const int key[4] = {k0h, k0w, r.h_hi - r.h_lo, r.w_hi - r.w_lo};
    for (int i = 0; i < count_; ++i)
      if (std::equal(key, key + 4, key_[i])) return i;
    if (count_ == kSlots) return -1;
    std::copy(key, key + 4, key_[count_]);
    den_[count_] = weighted_pool_weights(g_, r, logits_, e_[count_]);
    return count_++;
  }

 private:
  static constexpr int kSlots = 16;
  const PoolGeom& g_;
  const float* logits_;
  int whole_ = 0, count_ = 0;
  int key_[kSlots][4];
  float e_[kSlots][kWeightedPoolMaxWindow], den_[kSlots];
};

// The loops over a run of outputs, one row of the window at a time (kh fixed), its KW columns
// in order inside: each output's terms in the per-window order. The stride and the window's
// width are constants for the common windows (the compiler then vectorises the grouped
// strided loads), else read at run time.
template <int S, int KW>
void forward_run(float* num, const float* src, const float* ek, int len, int sw, int kw_count) {
  const size_t st = S ? S : sw;
  const int kwn = KW ? KW : kw_count;
  for (int j = 0; j < len; ++j) {
    float a = num[j];
    const float* v = src + j * st;
    for (int kw = 0; kw < kwn; ++kw) a += ek[kw] * v[kw];
    num[j] = a;
  }
}
// dx and each column's logit terms s_k (x - y_j) dy_j, added into four partial sums a column
// (part[kw][j % 4]: a fixed order, whatever the thread count). dx goes column by column,
// right to left: where windows overlap in width, an element hears from the left window (its
// larger kw) first, as the per-window order has it, and no column reaches an element twice.
template <int S, int KW>
void backward_run(float* dxr, float (*part)[4], const float* sk, const float* src,
                  const float* yo, const float* d, int len, int sw, int kw_count) {
  const size_t st = S ? S : sw;
  const int kwn = KW ? KW : kw_count;
  if (dxr)
    for (int kw = kwn - 1; kw >= 0; --kw) {
      const float s = sk[kw];
      float* dd = dxr + kw;
      for (int j = 0; j < len; ++j) dd[j * st] += s * d[j];
    }
  for (int kw = 0; kw < kwn; ++kw) {
    const float s = sk[kw];
    const float* v = src + kw;
    float* p = part[kw];
    int j = 0;
    for (; j + 4 <= len; j += 4)
      for (int l = 0; l < 4; ++l) p[l] += s * (v[(j + l) * st] - yo[j + l]) * d[j + l];
    for (int l = 0; j < len; ++j, ++l) p[l] += s * (v[j * st] - yo[j]) * d[j];
  }
}
#define CONVPOOL_BY_WINDOW(fn, sw, kw, ...)                                        \
  ((sw) == 1 && (kw) == 2   ? fn<1, 2>(__VA_ARGS__, 1, 2)                          \
   : (sw) == 1 && (kw) == 3 ? fn<1, 3>(__VA_ARGS__, 1, 3)                          \
   : (sw) == 2 && (kw) == 2 ? fn<2, 2>(__VA_ARGS__, 2, 2)                          \
   : (sw) == 2 && (kw) == 3 ? fn<2, 3>(__VA_ARGS__, 2, 3)                          \
   : (sw) == 3 && (kw) == 3 ? fn<3, 3>(__VA_ARGS__, 3, 3)                          \
                            : fn<0, 0>(__VA_ARGS__, sw, kw))

// The outputs [ow_lo, ow_hi) of row oh, whose windows are all whole.
void whole_row(const PoolGeom& g, const float* plane, const float* e, float den, int oh,
               int ow_lo, int ow_hi, float* out) {
  float num[kChunk];
  const int h0 = oh * g.SH - g.PH;
  for (int c0 = ow_lo; c0 < ow_hi; c0 += kChunk) {
    const int len = std::min(kChunk, ow_hi - c0);
    for (int j = 0; j < len; ++j) num[j] = 0.f;
    for (int kh = 0; kh < g.KH; ++kh) {
      const float* src = plane + size_t(h0 + kh) * g.W + (size_t(c0) * g.SW - g.PW);
      CONVPOOL_BY_WINDOW(forward_run, g.SW, g.KW, num, src, e + kh * g.KW, len);
    }
    for (int j = 0; j < len; ++j) out[c0 + j] = num[j] / den;
  }
}

}  // namespace

void weighted_pool_forward(const PoolGeom& g, const float* logits, bool shared, const float* x,
                           float* y, int n) {
  CP_CHECK(weighted_pool_window_fits(g),
           "weighted_pool: windows of at most 8 columns and 64 positions, not "
               << g.KH << "x" << g.KW);
  const int K = g.KH * g.KW;
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const WholeRange cols = whole_columns(g);
#pragma omp parallel for schedule(static) if (long(n) * g.C * long(out_plane) * K > 32768)
  for (int c = 0; c < g.C; ++c) {
    const float* lg = logits + (shared ? 0 : size_t(c) * K);
    ChannelWeights weights(g, lg);
    const int whole = weights.whole();
    float e[kWeightedPoolMaxWindow];
    for (int i = 0; i < n; ++i) {
      const size_t p = size_t(i) * g.C + c;
      const float* plane = x + p * in_plane;
      float* out = y + p * out_plane;
      for (int oh = 0; oh < g.OH; ++oh) {
        float* row = out + size_t(oh) * g.OW;
        const int h0 = oh * g.SH - g.PH;
        const bool rows_whole = h0 >= 0 && h0 + g.KH <= g.H;
        if (rows_whole)
          whole_row(g, plane, weights.e(whole), weights.den(whole), oh, cols.lo, cols.hi, row);
        for (int ow = 0; ow < g.OW; ++ow) {
          if (rows_whole && ow >= cols.lo && ow < cols.hi) continue;
          const PoolWindowRect r = pool_window_rect(g, oh, ow);
          const int slot = weights.find(r);
          const float den = slot >= 0 ? weights.den(slot) : weighted_pool_weights(g, r, lg, e);
          row[ow] = weighted_pool_output(g, r, plane, slot >= 0 ? weights.e(slot) : e, den);
        }
      }
    }
  }
}

namespace {

// One window's terms: dx (if given) and the logit gradient's accumulators, in window order.
inline void window_backward(const PoolGeom& g, const PoolWindowRect& r, const float* w, float den,
                            const float* plane, float yo, float d, float* dxp, float* acc) {
  int j = 0;
  for (int h = r.h_lo; h < r.h_hi; ++h)
    for (int v = r.w_lo; v < r.w_hi; ++v, ++j) {
      const size_t at = size_t(h) * g.W + v;
      if (dxp) dxp[at] += weighted_pool_input_grad(w[j], den, d);
      acc[r.k0 + (h - r.h_lo) * g.KW + (v - r.w_lo)] +=
          weighted_pool_logit_grad(w[j], den, plane[at], yo, d);
    }
}

// One plane's backward, row by row. Every dx element receives its terms in output order, as
// the generic path (and the CUDA gather) adds them: rows of whole windows go a run of outputs
// at a time (backward_run), one row of the window after another. The logit accumulators add
// each run's four partial sums: a fixed order, not the generic one.
// s_whole: the whole window's e_k / den, with which weighted_pool_input_grad and
// weighted_pool_logit_grad start, so products of it are their bits.
void plane_backward(const PoolGeom& g, const float* lg, ChannelWeights& weights,
                    const float* s_whole, int ow_lo, int ow_hi, const float* plane,
                    const float* yp, const float* dyp, float* dxp, float* acc) {
  float e[kWeightedPoolMaxWindow];
  auto generic = [&](int oh, int ow) {
    const PoolWindowRect r = pool_window_rect(g, oh, ow);
    const int slot = weights.find(r);
    const float den = slot >= 0 ? weights.den(slot) : weighted_pool_weights(g, r, lg, e);
    const size_t o = size_t(oh) * g.OW + ow;
    window_backward(g, r, slot >= 0 ? weights.e(slot) : e, den, plane, yp[o], dyp[o], dxp, acc);
  };
  float part[kMaxWidth][4];
  for (int oh = 0; oh < g.OH; ++oh) {
    const int h0 = oh * g.SH - g.PH;
    if (h0 < 0 || h0 + g.KH > g.H) {
      for (int ow = 0; ow < g.OW; ++ow) generic(oh, ow);
      continue;
    }
    for (int ow = 0; ow < ow_lo; ++ow) generic(oh, ow);
    for (int c0 = ow_lo; c0 < ow_hi; c0 += kChunk) {
      const int len = std::min(kChunk, ow_hi - c0);
      const float* d = dyp + size_t(oh) * g.OW + c0;
      const float* yo = yp + size_t(oh) * g.OW + c0;
      for (int kh = 0; kh < g.KH; ++kh) {
        const size_t first = size_t(h0 + kh) * g.W + (size_t(c0) * g.SW - g.PW);
        for (int kw = 0; kw < g.KW; ++kw) part[kw][0] = part[kw][1] = part[kw][2] = part[kw][3] = 0;
        CONVPOOL_BY_WINDOW(backward_run, g.SW, g.KW, dxp ? dxp + first : nullptr, part,
                           s_whole + kh * g.KW, plane + first, yo, d, len);
        for (int kw = 0; kw < g.KW; ++kw)
          acc[kh * g.KW + kw] += (part[kw][0] + part[kw][1]) + (part[kw][2] + part[kw][3]);
      }
    }
    for (int ow = ow_hi; ow < g.OW; ++ow) generic(oh, ow);
  }
}

}  // namespace

void weighted_pool_backward(const PoolGeom& g, const float* logits, bool shared, const float* x,
                            const float* y, const float* dy, float* dx, float* dlogits, int n,
                            float* scratch) {
  CP_CHECK(weighted_pool_window_fits(g),
           "weighted_pool: windows of at most 8 columns and 64 positions, not "
               << g.KH << "x" << g.KW);
  const int K = g.KH * g.KW;
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const WholeRange cols = whole_columns(g);
  float* per_channel = shared ? scratch : dlogits;
#pragma omp parallel for schedule(static) if (long(n) * g.C * long(out_plane) * K > 32768)
  for (int c = 0; c < g.C; ++c) {
    const float* lg = logits + (shared ? 0 : size_t(c) * K);
    ChannelWeights weights(g, lg);
    float s_whole[kWeightedPoolMaxWindow];
    for (int k = 0; k < K; ++k)
      s_whole[k] = weights.e(weights.whole())[k] / weights.den(weights.whole());
    float acc[kWeightedPoolMaxWindow];
    for (int k = 0; k < K; ++k) acc[k] = 0.f;
    for (int i = 0; i < n; ++i) {
      const size_t p = size_t(i) * g.C + c;
      float* dxp = dx ? dx + p * in_plane : nullptr;
      if (dxp) std::memset(dxp, 0, in_plane * sizeof(float));
      plane_backward(g, lg, weights, s_whole, cols.lo, cols.hi, x + p * in_plane,
                     y + p * out_plane, dy + p * out_plane, dxp, acc);
    }
    for (int k = 0; k < K; ++k) per_channel[size_t(c) * K + k] = acc[k];
  }
  if (shared)
    for (int k = 0; k < K; ++k) {
      float s = 0.f;
      for (int c = 0; c < g.C; ++c) s += scratch[size_t(c) * K + k];
      dlogits[k] = s;
    }
}

}  // namespace convpool::cpu
