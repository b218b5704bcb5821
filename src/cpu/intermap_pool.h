// CPU kernel: inter-map pooling (kernels/intermap_pool_math.cuh). x is N x C x HW, y is
// N x (C / groups) x HW. The CUDA twin is kernels/intermap_pool.cuh, tested against this one.
#pragma once
#include <cstddef>

#include "kernels/intermap_pool_math.cuh"

namespace convpool::cpu {

void intermap_pool_forward(InterMapMode mode, int groups, const float* x, float* y, int n, int c,
                           size_t hw);
// dx (N x C x HW) is overwritten.
void intermap_pool_backward(InterMapMode mode, int groups, const float* x, const float* dy,
                            float* dx, int n, int c, size_t hw);

}  // namespace convpool::cpu
