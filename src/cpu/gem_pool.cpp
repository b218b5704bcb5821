// GeM pooling on the CPU: the planes in parallel, each with gem_pool_math.cuh's operations in
// its order, so every output, input gradient and exponent-gradient sum is the CUDA kernels'
// result bit for bit where the arithmetic is the host's (the emulated target).
#include "gem_pool.h"

namespace convpool::cpu {

void gem_pool_forward(const float* exponent, bool shared, float eps, const float* x, float* y,
                      int n, int c, int hw) {
  const long planes = long(n) * c;
#pragma omp parallel for schedule(static) if (planes * hw > 16384)
  for (long q = 0; q < planes; ++q) {
    const float p = gem_exponent(exponent[shared ? 0 : q % c]);
    y[q] = gem_output(gem_mean_power(x + size_t(q) * hw, hw, p, eps), p);
  }
}

void gem_pool_backward(const float* exponent, bool shared, float eps, const float* x,
                       const float* y, const float* dy, float* dx, float* dexponent, int n, int c,
                       int hw, float* scratch) {
  const long planes = long(n) * c;
  float *term = scratch + planes, *per_channel = scratch + 2 * planes;
#pragma omp parallel for schedule(static) if (planes * hw > 16384)
  for (long q = 0; q < planes; ++q) {
    const float param = exponent[shared ? 0 : q % c], p = gem_exponent(param);
    const float* plane = x + size_t(q) * hw;
    const float m = gem_mean_power(plane, hw, p, eps);
    const float factor = gem_input_factor(dy[q], y[q], m, hw);
    term[q] = gem_exponent_grad(plane, hw, param, eps, y[q], m, dy[q]);
    if (dx)
      for (int i = 0; i < hw; ++i)
        dx[size_t(q) * hw + i] = gem_input_grad(plane[i], eps, p, factor);
  }
  float* sums = shared ? per_channel : dexponent;
  for (int ch = 0; ch < c; ++ch) {
    float s = 0.f;
    for (int i = 0; i < n; ++i) s += term[size_t(i) * c + ch];
    sums[ch] = s;
  }
  if (shared) {
    float s = 0.f;
    for (int ch = 0; ch < c; ++ch) s += per_channel[ch];
    dexponent[0] = s;
  }
}

}  // namespace convpool::cpu
