#include "relu.h"

#include "kernels/activation_math.cuh"

namespace convpool::cpu {

void relu_forward(const float* x, float* y, size_t n) {
  const long len = long(n);
  const float* __restrict in = x;
  float* __restrict out = y;
#pragma omp parallel for simd schedule(static)
  for (long i = 0; i < len; ++i) out[i] = ::convpool::relu_forward(in[i]);
}

void relu_backward(const float* y, const float* dy, float* dx, size_t n) {
  const long len = long(n);
  const float* __restrict yv = y;
  const float* __restrict g = dy;
  float* __restrict out = dx;
#pragma omp parallel for simd schedule(static)
  for (long i = 0; i < len; ++i) out[i] = ::convpool::relu_backward(yv[i], g[i]);
}

}  // namespace convpool::cpu
