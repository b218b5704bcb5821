// Generalised-mean (GeM) pooling, a global encoder (Radenovic, Tolias and Chum, "Fine-tuning
// CNN Image Retrieval with No Human Annotation", TPAMI 2018): each plane's
//   y = ( 1/HW sum_i z_i^p )^(1/p),   z_i = max(x_i, eps)
// with a learned exponent p (one for the layer, or one per channel): p = 1 is average pooling
// and p -> inf tends to max pooling. The exponent in use is max(p, 1), so that a step cannot
// take it to 0 or below (1/p undefined); below 1 its gradient is 0. NaN inputs stay NaN.
// Powers are exp(p ln z) with exp_log.cuh's functions (about 1e-6 relative for moderate
// p ln z): the CPU vectorises them, and the emulated target has the CPU's bits. The per-plane
// math, shared by the CPU backend and the CUDA kernels.
#pragma once
#include <cmath>
#include <cstddef>

#include "exp_log.cuh"
#include "hd.cuh"

namespace convpool {

constexpr float kGemMinP = 1.f;

// The exponent a parameter value stands for (NaN stays NaN).
CP_HD float gem_exponent(float param) { return param < kGemMinP ? kGemMinP : param; }
// The element the power is taken of: x below eps is eps; NaN stays NaN.
CP_HD float gem_clamp(float x, float eps) { return x < eps ? eps : x; }

// ln z of an element, and z^p from it.
CP_HD float gem_log(float x, float eps) { return cp_log(gem_clamp(x, eps)); }
CP_HD float gem_power(float log_z, float p) { return cp_exp(p * log_z); }

// A plane's mean of z^p, summed in element order.
CP_HD float gem_mean_power(const float* plane, int hw, float p, float eps) {
  float s = 0.f;
  for (int i = 0; i < hw; ++i) s += gem_power(gem_log(plane[i], eps), p);
  return s / float(hw);
}

// Scratch of the backward passes: each plane's input-gradient factor and exponent-gradient
// term, and the per-channel sums of the terms (a shared exponent adds them in channel order).
inline size_t gem_pool_scratch_floats(int n, int c) { return 2 * size_t(n) * c + size_t(c); }

// m^(1/p).
CP_HD float gem_output(float mean_power, float p) { return cp_exp(cp_log(mean_power) / p); }

// dy/dx_i = y / (HW m) z_i^(p-1) where x_i >= eps (0 below: the clamp), m the mean power. The
// plane's factor dy y / (HW m), computed once:
CP_HD float gem_input_factor(float dy, float y, float mean_power, int hw) {
  return dy * y / (mean_power * float(hw));
}
// The element's gradient from its ln z (gem_log; ln x where x >= eps).
CP_HD float gem_input_grad(float x, float log_z, float eps, float p, float factor) {
  return cp_select(x < eps, 0.f, factor * cp_exp((p - 1.f) * log_z));
}

// The sum over a plane of z^p ln z, in element order.
CP_HD float gem_power_log_sum(const float* plane, int hw, float p, float eps) {
  float s = 0.f;
  for (int i = 0; i < hw; ++i) {
    const float lz = gem_log(plane[i], eps);
    s += gem_power(lz, p) * lz;
  }
  return s;
}

// A plane's term of the exponent's gradient, dy * dy/dp, from its sums:
//   dy/dp = y ( (1/HW sum_i z_i^p ln z_i) / (p m) - ln(m) / p^2 )
// 0 where the parameter is below kGemMinP (the exponent in use does not depend on it there).
CP_HD float gem_exponent_grad(float param, float power_log_sum, int hw, float y,
                              float mean_power, float dy) {
  const float p = param, weighted_log = power_log_sum / float(hw);
  return cp_select(param < kGemMinP, 0.f,
                   dy * y * (weighted_log / (p * mean_power) - cp_log(mean_power) / (p * p)));
}

}  // namespace convpool
