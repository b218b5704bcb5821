// Local importance-based pooling (LIP; Gao, Wang and Wu, ICCV 2019) in its light form: each
// activation's importance logit is the input itself through a learned per-channel affine map,
// l = gamma_c x (+ beta_c, which cancels within a window and is left out), and an output is
// the importance-weighted mean of its window's valid (non-padding) values:
//   y = sum_k e_k x_k / sum_k e_k,   e_k = exp(l_k - m),   m = max of the window's logits
// gamma = 0 is average pooling (padding not counted), gamma = 1 SoftPool. The per-window math,
// shared by the CPU backend and the CUDA kernels.
#pragma once
#include "hd.cuh"
#include "pool_math.cuh"

namespace convpool {

// Windows hold at most this many positions (each window's weights sit in registers).
constexpr int kLipPoolMaxWindow = 64;
// The launchers' check of that bound (and of the 8 columns the CPU's runs take).
inline bool lip_pool_window_fits(const PoolGeom& g) {
  return g.KW <= 8 && g.KH * g.KW <= kLipPoolMaxWindow;
}

// The window's weights e (in the order of its valid elements) and their sum. A +inf logit takes
// all the weight (exp(inf - inf) would be NaN); an element of weight 0 (a -inf logit, or one
// that underflows) adds nothing, to the output or to the gradients, whatever its value (x e^(l)
// tends to 0); a NaN logit (a NaN input, or gamma = 0 times an infinite one) makes the window's
// output NaN.
CP_HD float lip_pool_weights(const PoolGeom& g, const PoolWindowRect& r, const float* plane,
                             float gamma, float* e) {
  float m = gamma * plane[size_t(r.h_lo) * g.W + r.w_lo];
  for (int h = r.h_lo; h < r.h_hi; ++h)
    for (int w = r.w_lo; w < r.w_hi; ++w) m = fmaxf(m, gamma * plane[size_t(h) * g.W + w]);
  float den = 0.f;
  int i = 0;
  for (int h = r.h_lo; h < r.h_hi; ++h)
    for (int w = r.w_lo; w < r.w_hi; ++w, ++i) {
      const float l = gamma * plane[size_t(h) * g.W + w];
      e[i] = l == m ? 1.f : expf(l - m);
      den += e[i];
    }
  return den;
}

// The output of window r of a plane, given its weights.
CP_HD float lip_pool_output(const PoolGeom& g, const PoolWindowRect& r, const float* plane,
                            const float* e, float den) {
  float num = 0.f;
  int i = 0;
  for (int h = r.h_lo; h < r.h_hi; ++h)
    for (int w = r.w_lo; w < r.w_hi; ++w, ++i)
      if (e[i] != 0.f) num += e[i] * plane[size_t(h) * g.W + w];  // 0 weight: -inf adds nothing
  return num / den;
}

// The gradient of the output with respect to the logit of the window's element x (weight e),
// times dy: s (x - y) dy with s = e / den.
CP_HD float lip_pool_logit_grad(float e, float den, float x, float y, float dy) {
  return e != 0.f ? e / den * (x - y) * dy : 0.f;
}

// Element x's term of dgamma: s (x - y) x dy, written s (x - y)^2 dy (equal, since the
// window's s (x - y) sum to 0; it keeps its digits when the activations share a large offset);
// 0 for an element of weight 0, whatever x.
CP_HD float lip_pool_gamma_grad(float e, float den, float x, float y, float dy) {
  return e != 0.f ? e / den * (x - y) * dy * (x - y) : 0.f;
}

// The gradient reaching element x from the output's gradient dy: directly (s dy) and through
// its logit (gamma times the logit's gradient).
CP_HD float lip_pool_input_grad(float e, float den, float x, float y, float gamma, float dy) {
  return e / den * dy + gamma * lip_pool_logit_grad(e, den, x, y, dy);
}

}  // namespace convpool
