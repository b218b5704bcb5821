// Weighted pooling on the CPU. Every output gets weighted_pool_math.cuh's result bit for bit:
// a window that lies wholly inside the plane has the channel's full set of weights, computed
// once per plane by the same function, and rows of such windows are summed for many outputs
// at once, each output's terms still added in window order. tests/kernel_parity_weighted_pool.cpp
// checks the CUDA kernels against this file.
#include "weighted_pool.h"

#include <algorithm>
#include <cstring>

namespace convpool::cpu {

namespace {

constexpr int kChunk = 256;  // outputs of a row summed together (their sums stay in L1)

// The weights of a window that covers KH x KW plane elements (k0 = 0, no padding).
float full_weights(const PoolGeom& g, const float* logits, float* e) {
  const PoolWindowRect whole{0, g.KH, 0, g.KW, 0};
  return weighted_pool_weights(g, whole, logits, e);
}

// The outputs ow in [lo, hi) whose windows are whole in width (inside the plane).
struct WholeRange {
  int lo, hi;
};
WholeRange whole_columns(const PoolGeom& g) {
  const int lo = std::min(g.OW, (g.PW + g.SW - 1) / g.SW);
  const int span = g.W + g.PW - g.KW;  // the last whole window's start, less PW
  return {lo, span < 0 ? lo : std::max(lo, std::min(g.OW, span / g.SW + 1))};
}

// The outputs [ow_lo, ow_hi) of row oh, whose windows are all whole.
void whole_row(const PoolGeom& g, const float* plane, const float* e, float den, int oh,
               int ow_lo, int ow_hi, float* out) {
  float num[kChunk];
  const int h0 = oh * g.SH - g.PH;
  for (int c0 = ow_lo; c0 < ow_hi; c0 += kChunk) {
    const int len = std::min(kChunk, ow_hi - c0);
    for (int j = 0; j < len; ++j) num[j] = 0.f;
    for (int kh = 0; kh < g.KH; ++kh)
      for (int kw = 0; kw < g.KW; ++kw) {
        const float ek = e[kh * g.KW + kw];
        const float* src = plane + size_t(h0 + kh) * g.W + (size_t(c0) * g.SW - g.PW + kw);
        for (int j = 0; j < len; ++j) num[j] += ek * src[size_t(j) * g.SW];
      }
    for (int j = 0; j < len; ++j) out[c0 + j] = num[j] / den;
  }
}

}  // namespace

void weighted_pool_forward(const PoolGeom& g, const float* logits, bool shared, const float* x,
                           float* y, int n) {
  const int K = g.KH * g.KW;
  const long planes = long(n) * g.C;
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const WholeRange cols = whole_columns(g);
  const int ow_lo = cols.lo, ow_hi = cols.hi;
#pragma omp parallel for schedule(static) if (planes * long(out_plane) * K > 32768)
  for (long p = 0; p < planes; ++p) {
    const float* lg = logits + (shared ? 0 : size_t(p % g.C) * K);
    const float* plane = x + size_t(p) * in_plane;
    float* out = y + size_t(p) * out_plane;
    float full[kWeightedPoolMaxWindow], e[kWeightedPoolMaxWindow];
    const float full_den = full_weights(g, lg, full);
    for (int oh = 0; oh < g.OH; ++oh) {
      float* row = out + size_t(oh) * g.OW;
      const int h0 = oh * g.SH - g.PH;
      const bool rows_whole = h0 >= 0 && h0 + g.KH <= g.H;
      if (rows_whole) whole_row(g, plane, full, full_den, oh, ow_lo, ow_hi, row);
      for (int ow = 0; ow < g.OW; ++ow) {
        if (rows_whole && ow >= ow_lo && ow < ow_hi) continue;
        const PoolWindowRect r = pool_window_rect(g, oh, ow);
        const float den = weighted_pool_weights(g, r, lg, e);
        row[ow] = weighted_pool_output(g, r, plane, e, den);
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

// The channel's weights over a whole window, e_k / den: weighted_pool_input_grad and
// weighted_pool_logit_grad start with this quotient, so products of it are their bits.
struct WholeWindow {
  float e[kWeightedPoolMaxWindow], s[kWeightedPoolMaxWindow], den;
};

// One plane's backward: outputs in row-major order, so every dx element and every logit
// accumulator receives its terms in the generic order. Rows of whole windows that do not
// overlap in width (SW >= KW) are done a run of outputs at a time, offset by offset: no dx
// element is reached twice in such a run, and each accumulator still adds its terms output by
// output.
void plane_backward(const PoolGeom& g, const float* lg, const WholeWindow& whole, int ow_lo,
                    int ow_hi, const float* plane, const float* yp, const float* dyp, float* dxp,
                    float* acc) {
  float e[kWeightedPoolMaxWindow];
  auto generic = [&](int oh, int ow) {
    const PoolWindowRect r = pool_window_rect(g, oh, ow);
    const bool is_whole = r.h_hi - r.h_lo == g.KH && r.w_hi - r.w_lo == g.KW;
    const float den = is_whole ? whole.den : weighted_pool_weights(g, r, lg, e);
    const size_t o = size_t(oh) * g.OW + ow;
    window_backward(g, r, is_whole ? whole.e : e, den, plane, yp[o], dyp[o], dxp, acc);
  };
  for (int oh = 0; oh < g.OH; ++oh) {
    const int h0 = oh * g.SH - g.PH;
    if (h0 < 0 || h0 + g.KH > g.H || g.SW < g.KW) {
      for (int ow = 0; ow < g.OW; ++ow) generic(oh, ow);
      continue;
    }
    for (int ow = 0; ow < ow_lo; ++ow) generic(oh, ow);
    for (int c0 = ow_lo; c0 < ow_hi; c0 += kChunk) {
      const int len = std::min(kChunk, ow_hi - c0);
      const float* d = dyp + size_t(oh) * g.OW + c0;
      const float* yo = yp + size_t(oh) * g.OW + c0;
      for (int kh = 0; kh < g.KH; ++kh)
        for (int kw = 0; kw < g.KW; ++kw) {
          const int k = kh * g.KW + kw;
          const float sk = whole.s[k];
          const size_t first = size_t(h0 + kh) * g.W + (size_t(c0) * g.SW - g.PW + kw);
          if (dxp) {
            float* dxr = dxp + first;
            for (int j = 0; j < len; ++j) dxr[size_t(j) * g.SW] += sk * d[j];
          }
          const float* src = plane + first;
          float a = acc[k];
          for (int j = 0; j < len; ++j) a += sk * (src[size_t(j) * g.SW] - yo[j]) * d[j];
          acc[k] = a;
        }
    }
    for (int ow = ow_hi; ow < g.OW; ++ow) generic(oh, ow);
  }
}

}  // namespace

void weighted_pool_backward(const PoolGeom& g, const float* logits, bool shared, const float* x,
                            const float* y, const float* dy, float* dx, float* dlogits, int n,
                            float* scratch) {
  const int K = g.KH * g.KW;
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const WholeRange cols = whole_columns(g);
  float* per_channel = shared ? scratch : dlogits;
#pragma omp parallel for schedule(static) if (long(n) * g.C * long(out_plane) * K > 32768)
  for (int c = 0; c < g.C; ++c) {
    const float* lg = logits + (shared ? 0 : size_t(c) * K);
    WholeWindow whole;
    whole.den = full_weights(g, lg, whole.e);
    for (int k = 0; k < K; ++k) whole.s[k] = whole.e[k] / whole.den;
    float acc[kWeightedPoolMaxWindow];
    for (int k = 0; k < K; ++k) acc[k] = 0.f;
    for (int i = 0; i < n; ++i) {
      const size_t p = size_t(i) * g.C + c;
      float* dxp = dx ? dx + p * in_plane : nullptr;
      if (dxp) std::memset(dxp, 0, in_plane * sizeof(float));
      plane_backward(g, lg, whole, cols.lo, cols.hi, x + p * in_plane, y + p * out_plane,
                     dy + p * out_plane, dxp, acc);
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
