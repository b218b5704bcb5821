// CUDA launchers: inter-map pooling (kernels/intermap_pool.cu). Same arguments and meaning as
// the CPU twin in src/cpu/intermap_pool.h, plus a stream; pointers are device memory. Tested
// against the CPU in tests/kernel_parity_intermap_pool.cpp (emulated in CI).
#pragma once
#include <cstddef>

#include "intermap_pool_math.cuh"

namespace convpool::cuda {

void intermap_pool_forward(InterMapMode mode, int groups, const float* x, float* y, int n, int c,
                           size_t hw, void* stream);
void intermap_pool_backward(InterMapMode mode, int groups, const float* x, const float* dy,
                            float* dx, int n, int c, size_t hw, void* stream);

}  // namespace convpool::cuda
