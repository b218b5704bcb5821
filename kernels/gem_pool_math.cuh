// Generalised-mean (GeM) pooling, a global encoder (Radenovic, Tolias and Chum, "Fine-tuning
// CNN Image Retrieval with No Human Annotation", TPAMI 2018): each plane's
//   y = ( 1/HW sum_i z_i^p )^(1/p),   z_i = max(x_i, eps)
// with a learned exponent p > 1 (one for the layer, or one per channel): p = 1 would be
// average pooling, and p -> inf tends to max pooling. The parameter is theta = ln(p - 1),
// p = 1 + e^theta: every theta is an exponent above 1, and no step can take p to 1 or below.
//
// The plane is scaled by its largest z, zmax, first: with r_i = z_i / zmax (ln r_i = ln z_i -
// ln zmax) and m = 1/HW sum_i r_i^p, which lies in [1/HW, 1] and so can neither underflow nor
// overflow,
//   y = zmax m^(1/p)
//   dy/dx_i = m^(1/p) r_i^(p-1) / (HW m)   (0 where x_i < eps: the clamp)
//   dy/dp   = y ( (1/HW sum_i r_i^p ln r_i) / (p m) - ln(m) / p^2 ),   dy/dtheta = (p - 1) dy/dp
// Powers are exp(p ln r) with exp_log.cuh's functions: the CPU vectorises them, and the
// emulated target has the CPU's bits. A NaN input makes its plane NaN; a +inf one makes y
// +inf (and the plane's gradients NaN). The per-plane math, shared by the CPU backend and the
// CUDA kernels; every sum runs in element order.
#pragma once
#include <cmath>
#include <cstddef>

#include "exp_log.cuh"
#include "hd.cuh"

namespace convpool {

// The exponent a parameter value stands for, and the parameter of an exponent p > 1.
CP_HD float gem_exponent(float theta) { return 1.f + cp_exp(theta); }
inline float gem_parameter(float p) { return std::log(p - 1.f); }

// The element the power is taken of: x below eps is eps; NaN stays NaN.
CP_HD float gem_clamp(float x, float eps) { return x < eps ? eps : x; }
CP_HD float gem_log(float x, float eps) { return cp_log(gem_clamp(x, eps)); }

// The plane's largest z (NaN if it holds one), and its logarithm.
CP_HD float gem_max(const float* plane, int hw, float eps) {
  float m = gem_clamp(plane[0], eps);
  for (int i = 1; i < hw; ++i) {
    const float z = gem_clamp(plane[i], eps);
    m = cp_select((z > m) | (z != z), z, m);
  }
  return m;
}

// r^p from ln z and ln zmax.
CP_HD float gem_power(float log_z, float log_max, float p) { return cp_exp(p * (log_z - log_max)); }

// The plane's m, summed in element order.
CP_HD float gem_mean_power(const float* plane, int hw, float p, float eps, float log_max) {
  float s = 0.f;
  for (int i = 0; i < hw; ++i) s += gem_power(gem_log(plane[i], eps), log_max, p);
  return s / float(hw);
}

// y = zmax m^(1/p); +inf where zmax is.
CP_HD float gem_output(float zmax, float mean_power, float p) {
  return cp_select(zmax == cp_bits_float(0x7f800000u), zmax, zmax * cp_exp(cp_log(mean_power) / p));
}

// Scratch of the backward passes: each plane's input-gradient factor, ln zmax and
// parameter-gradient term, and the per-channel sums of the terms (a shared parameter adds them
// in channel order).
inline size_t gem_pool_scratch_floats(int n, int c) { return 3 * size_t(n) * c + size_t(c); }

// The plane's factor of dy/dx_i: dy m^(1/p) / (HW m) (y is of degree 1 in x, its gradient of
// degree 0: zmax cancels).
CP_HD float gem_input_factor(float dy, float mean_power, float p, int hw) {
  return dy * cp_exp(cp_log(mean_power) / p) / (float(hw) * mean_power);
}
// The element's gradient from its ln z (ln x where x >= eps).
CP_HD float gem_input_grad(float x, float log_z, float log_max, float eps, float p, float factor) {
  return cp_select(x < eps, 0.f, factor * cp_exp((p - 1.f) * (log_z - log_max)));
}

// The sum over a plane of r^p ln r, in element order.
CP_HD float gem_power_log_sum(const float* plane, int hw, float p, float eps, float log_max) {
  float s = 0.f;
  for (int i = 0; i < hw; ++i) {
    const float lr = gem_log(plane[i], eps) - log_max;
    s += cp_exp(p * lr) * lr;
  }
  return s;
}

// A plane's term of the parameter's gradient, dy * dy/dtheta, from its sums; dp/dtheta =
// e^theta, taken from theta itself (p - 1 would round to 0 for theta below about -16.6).
CP_HD float gem_parameter_grad(float theta, float p, float power_log_sum, int hw, float y,
                               float mean_power, float dy) {
  const float weighted_log = power_log_sum / float(hw);
  return cp_exp(theta) * dy * y * (weighted_log / (p * mean_power) - cp_log(mean_power) / (p * p));
}

}  // namespace convpool
