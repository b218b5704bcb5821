// Weighted pooling: each window position k has a learned logit w_k (one set per channel, or
// one shared by all channels), and an output is the softmax-weighted mean of its window's
// valid (non-padding) values:
//   y = sum_k e_k x_k / sum_k e_k,   e_k = exp(w_k - m),   m = max of the valid positions' w_k
// so it stays a convex combination at padded edges too, and w = 0 is average pooling with
// padding not counted. The per-window math, shared by the CPU backend and the CUDA kernels.
#pragma once
#include <cstddef>

#include "hd.cuh"
#include "pool_math.cuh"

namespace convpool {

// Windows hold at most this many positions (each window's weights sit in registers).
constexpr int kWeightedPoolMaxWindow = 64;
// The launchers' check of that bound (and of the 8 columns the CPU's runs take).
inline bool weighted_pool_window_fits(const PoolGeom& g) {
  return g.KW <= 8 && g.KH * g.KW <= kWeightedPoolMaxWindow;
}

// Scratch the backward passes need: the per-channel logit gradients, summed into the shared
// set afterwards.
inline size_t weighted_pool_scratch_floats(const PoolGeom& g, bool shared) {
  return shared ? size_t(g.C) * g.KH * g.KW : 0;
}

// The window's weights e (in the window's row-major order of valid elements) and their sum.
// `logits` are the channel's KH x KW logits.
CP_HD float weighted_pool_weights(const PoolGeom& g, const PoolWindowRect& r,
                                  const float* logits, float* e) {
  float m = logits[r.k0];
  for (int h = r.h_lo; h < r.h_hi; ++h)
    for (int w = r.w_lo; w < r.w_hi; ++w)
      m = fmaxf(m, logits[r.k0 + (h - r.h_lo) * g.KW + (w - r.w_lo)]);
  float den = 0.f;
  int i = 0;
  for (int h = r.h_lo; h < r.h_hi; ++h)
    for (int w = r.w_lo; w < r.w_hi; ++w, ++i) {
      e[i] = expf(logits[r.k0 + (h - r.h_lo) * g.KW + (w - r.w_lo)] - m);
      den += e[i];
    }
  return den;
}

// The output of window (oh, ow) of a plane, given its weights.
CP_HD float weighted_pool_output(const PoolGeom& g, const PoolWindowRect& r, const float* plane,
                                 const float* e, float den) {
  float num = 0.f;
  int i = 0;
  for (int h = r.h_lo; h < r.h_hi; ++h)
    for (int w = r.w_lo; w < r.w_hi; ++w, ++i) num += e[i] * plane[h * g.W + w];
  return num / den;
}

// The gradient reaching the window's i-th valid element from the output's gradient dy.
CP_HD float weighted_pool_input_grad(float e, float den, float dy) { return e / den * dy; }

// The gradient of the output with respect to the logit of the window's i-th valid element,
// times dy: s_i (x_i - y) dy, with s_i = e_i / den.
CP_HD float weighted_pool_logit_grad(float e, float den, float x, float y, float dy) {
  return e / den * (x - y) * dy;
}

}  // namespace convpool
