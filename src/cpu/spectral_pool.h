// CPU kernel: spectral pooling (kernels/spectral_pool_math.cuh). x is P planes of H x W, y is
// P planes of h x w. The CUDA twin is kernels/spectral_pool.cuh, tested against this one.
#pragma once
#include <cstddef>

#include "kernels/spectral_pool_math.cuh"

namespace convpool::cpu {

// scratch: spectral_pool_scratch_floats(planes, h_in, w_in, h_out, w_out) floats.
void spectral_pool_forward(const float* x, float* y, size_t planes, int h_in, int w_in, int h_out,
                           int w_out, float* scratch);
// dx is overwritten. scratch as forward's.
void spectral_pool_backward(const float* dy, float* dx, size_t planes, int h_in, int w_in,
                            int h_out, int w_out, float* scratch);

}  // namespace convpool::cpu
