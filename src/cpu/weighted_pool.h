// CPU kernel: weighted pooling (kernels/weighted_pool_math.cuh). x is N x C x H x W, y is
// N x C x OH x OW (g's geometry); logits are KH x KW floats per channel, or one set for every
// channel when `shared`. The CUDA twin is kernels/weighted_pool.cuh, tested against this one.
#pragma once
#include <cstddef>

#include "kernels/weighted_pool_math.cuh"

namespace convpool::cpu {

void weighted_pool_forward(const PoolGeom& g, const float* logits, bool shared, const float* x,
                           float* y, int n);
// dx (may be null: no input gradient) is overwritten; so is dlogits (C x KH x KW, or KH x KW
// when shared). Each channel's logit gradient is summed in one fixed order (images in turn,
// into partial sums by output column, or by input column where windows do not overlap),
// whatever the thread count; shared logits then sum the channels in order.
// scratch: weighted_pool_scratch_floats(g, shared) floats.
void weighted_pool_backward(const PoolGeom& g, const float* logits, bool shared, const float* x,
                            const float* y, const float* dy, float* dx, float* dlogits, int n,
                            float* scratch);

}  // namespace convpool::cpu
