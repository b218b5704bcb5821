// CPU kernel: local importance-based pooling (kernels/lip_pool_math.cuh). x is N x C x H x W,
// y is N x C x OH x OW (g's geometry); gamma holds C logit scales. lip_pool_forward/backward
// take the fast path (one exponential per element) where a plane allows it and agree with the
// generic path to within the rounding of the logits and of the sums; the generic path is the
// CUDA kernels' twin (kernels/lip_pool.cuh, tested against it bit for bit on the emulated
// target).
#pragma once
#include <cstddef>

#include "kernels/lip_pool_math.cuh"

namespace convpool::cpu {

void lip_pool_forward(const PoolGeom& g, const float* gamma, const float* x, float* y, int n);
// dx (may be null: no input gradient) and dgamma (C floats) are overwritten. Each channel's
// dgamma is summed in one fixed order (images, then the plane's elements or outputs), whatever
// the thread count.
void lip_pool_backward(const PoolGeom& g, const float* gamma, const float* x, const float* y,
                       const float* dy, float* dx, float* dgamma, int n);

void lip_pool_forward_generic(const PoolGeom& g, const float* gamma, const float* x, float* y,
                              int n);
void lip_pool_backward_generic(const PoolGeom& g, const float* gamma, const float* x,
                               const float* y, const float* dy, float* dx, float* dgamma, int n);

}  // namespace convpool::cpu
