// CUDA launchers: spatial pyramid pooling (kernels/spp_pool.cu). Same arguments and meaning
// as the CPU twin in src/cpu/spp_pool.h, plus a stream; pointers are device memory. Tested
// against the CPU in tests/kernel_parity_spp_pool.cpp (emulated in CI).
#pragma once
#include <cstddef>

#include "spp_pool_math.cuh"

namespace convpool::cuda {

void spp_pool_forward(const SppLevels& s, const float* x, float* y, float* arg, int n, int c, int h,
                      int w, void* stream);
// dx is overwritten.
void spp_pool_backward(const SppLevels& s, const float* arg, const float* dy, float* dx, int n,
                       int c, int h, int w, void* stream);

}  // namespace convpool::cuda
