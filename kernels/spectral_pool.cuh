// CUDA launchers: spectral pooling (kernels/spectral_pool.cu). Same arguments and meaning as
// the CPU twin in src/cpu/spectral_pool.h, plus a stream; pointers are device memory. Tested
// against the CPU in tests/kernel_parity_spectral_pool.cpp (emulated in CI).
#pragma once
#include <cstddef>

#include "spectral_pool_math.cuh"

namespace convpool::cuda {

void spectral_pool_forward(const float* x, float* y, size_t planes, int h_in, int w_in, int h_out,
                           int w_out, float* scratch, void* stream);
// dx is overwritten.
void spectral_pool_backward(const float* dy, float* dx, size_t planes, int h_in, int w_in,
                            int h_out, int w_out, float* scratch, void* stream);

}  // namespace convpool::cuda
