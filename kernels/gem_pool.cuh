// CUDA launchers: GeM pooling (kernels/gem_pool.cu). Same arguments and meaning as the CPU
// twin in src/cpu/gem_pool.h, plus a stream; pointers are device memory. Tested against the
// CPU in tests/kernel_parity_gem_pool.cpp (emulated in CI).
#pragma once
#include <cstddef>

#include "gem_pool_math.cuh"

namespace convpool::cuda {

void gem_pool_forward(const float* theta, bool shared, float eps, const float* x, float* y, int n,
                      int c, int hw, void* stream);
// dx (may be null) and dtheta are overwritten. scratch: gem_pool_scratch_floats(n, c).
void gem_pool_backward(const float* theta, bool shared, float eps, const float* x, const float* y,
                       const float* dy, float* dx, float* dtheta, int n, int c, int hw,
                       float* scratch, void* stream);

}  // namespace convpool::cuda
