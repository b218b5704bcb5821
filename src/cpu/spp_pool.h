// CPU kernel: spatial pyramid pooling (kernels/spp_pool_math.cuh). x is N x C x H x W, y is
// N x (C sum L^2); arg (n x C sum L^2 floats) keeps each max's index for backward. The CUDA
// twin is kernels/spp_pool.cuh, tested against this one.
#pragma once
#include <cstddef>

#include "kernels/spp_pool_math.cuh"

namespace convpool::cpu {

void spp_pool_forward(const SppLevels& s, const float* x, float* y, float* arg, int n, int c, int h,
                      int w);
// dx is overwritten.
void spp_pool_backward(const SppLevels& s, const float* arg, const float* dy, float* dx, int n,
                       int c, int h, int w);

}  // namespace convpool::cpu
