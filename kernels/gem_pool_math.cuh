// Generalised-mean (GeM) pooling, a global encoder (Radenovic, Tolias and Chum, "Fine-tuning
// CNN Image Retrieval with No Human Annotation", TPAMI 2018): each plane's
//   y = ( 1/HW sum_i z_i^p )^(1/p),   z_i = max(x_i, eps)
// with a learned exponent p (one for the layer, or one per channel): p = 1 is average pooling
// and p -> inf tends to max pooling. The exponent in use is max(p, 1), so that a step cannot
// take it to 0 or below (1/p undefined); below 1 its gradient is 0. NaN inputs stay NaN.
// The per-plane math, shared by the CPU backend and the CUDA kernels.
#pragma once
#include <cmath>
#include <cstddef>

#include "hd.cuh"

namespace convpool {

constexpr float kGemMinP = 1.f;

// The exponent a parameter value stands for (NaN stays NaN).
CP_HD float gem_exponent(float param) { return param < kGemMinP ? kGemMinP : param; }
// The element the power is taken of: x below eps is eps; NaN stays NaN.
CP_HD float gem_clamp(float x, float eps) { return x < eps ? eps : x; }

// A plane's mean of z^p, summed in element order.
CP_HD float gem_mean_power(const float* plane, int hw, float p, float eps) {
  float s = 0.f;
  for (int i = 0; i < hw; ++i) s += powf(gem_clamp(plane[i], eps), p);
  return s / float(hw);
}

// Scratch of the backward passes: each plane's input-gradient factor and exponent-gradient
// term, and the per-channel sums of the terms (a shared exponent adds them in channel order).
inline size_t gem_pool_scratch_floats(int n, int c) { return 2 * size_t(n) * c + size_t(c); }

CP_HD float gem_output(float mean_power, float p) { return powf(mean_power, 1.f / p); }

// dy/dx_i = y / (HW m) z_i^(p-1) where x_i >= eps (0 below: the clamp), m the mean power. The
// plane's factor dy y / (HW m), computed once:
CP_HD float gem_input_factor(float dy, float y, float mean_power, int hw) {
  return dy * y / (mean_power * float(hw));
}
CP_HD float gem_input_grad(float x, float eps, float p, float factor) {
  return x < eps ? 0.f : factor * powf(x, p - 1.f);
}

// A plane's term of the exponent's gradient, dy * dy/dp:
//   dy/dp = y ( -ln(m) / p^2 + (1/HW sum_i z_i^p ln z_i) / (p m) )
// 0 where the parameter is below kGemMinP (the exponent in use does not depend on it there).
CP_HD float gem_exponent_grad(const float* plane, int hw, float param, float eps, float y,
                              float mean_power, float dy) {
  if (param < kGemMinP) return 0.f;
  const float p = param;
  float s = 0.f;
  for (int i = 0; i < hw; ++i) {
    const float z = gem_clamp(plane[i], eps);
    s += powf(z, p) * logf(z);
  }
  const float weighted_log = s / float(hw);
  return dy * y * (weighted_log / (p * mean_power) - logf(mean_power) / (p * p));
}

}  // namespace convpool
