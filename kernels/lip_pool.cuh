// CUDA launchers: local importance-based pooling (kernels/lip_pool.cu). Same arguments and
// meaning as the CPU twin in src/cpu/lip_pool.h, plus a stream; pointers are device memory.
// Tested against the CPU in tests/kernel_parity_lip_pool.cpp (emulated in CI).
#pragma once
#include <cstddef>

#include "lip_pool_math.cuh"

namespace convpool::cuda {

void lip_pool_forward(const PoolGeom& g, const float* gamma, const float* x, float* y, int n,
                      void* stream);
// dx may be null. Each channel's dgamma is reduced in a fixed order (the same bits under every
// schedule).
void lip_pool_backward(const PoolGeom& g, const float* gamma, const float* x, const float* y,
                       const float* dy, float* dx, float* dgamma, int n, void* stream);

}  // namespace convpool::cuda
