// CPU kernel: GeM pooling (kernels/gem_pool_math.cuh). x is N x C x H x W (hw = H x W), y is
// N x C; `theta` holds one parameter ln(p - 1), or one per channel unless `shared`. The CUDA
// twin is kernels/gem_pool.cuh, tested against this one.
#pragma once
#include <cstddef>

#include "kernels/gem_pool_math.cuh"

namespace convpool::cpu {

void gem_pool_forward(const float* theta, bool shared, float eps, const float* x, float* y, int n,
                      int c, int hw);
// dx (may be null: no input gradient) and dtheta are overwritten. The parameter's gradient
// sums each channel's planes over the images in order, then, when shared, the channels in
// order, whatever the thread count. scratch: gem_pool_scratch_floats(n, c) floats.
void gem_pool_backward(const float* theta, bool shared, float eps, const float* x, const float* y,
                       const float* dy, float* dx, float* dtheta, int n, int c, int hw,
                       float* scratch);

}  // namespace convpool::cpu
