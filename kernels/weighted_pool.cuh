// CUDA launchers: weighted pooling (kernels/weighted_pool.cu). Same arguments and meaning as
// the CPU twin in src/cpu/weighted_pool.h, plus a stream; pointers are device memory. Tested
// against the CPU in tests/kernel_parity_weighted_pool.cpp (emulated in CI).
#pragma once
#include <cstddef>

#include "weighted_pool_math.cuh"

namespace convpool::cuda {

void weighted_pool_forward(const PoolGeom& g, const float* logits, bool shared, const float* x,
                           float* y, int n, void* stream);
// Each channel's logit gradient is reduced in a fixed order (the same bits under every
// schedule); with `shared`, the channels' sums are then added in channel order. scratch:
// weighted_pool_scratch_floats(g, shared) floats of device memory.
void weighted_pool_backward(const PoolGeom& g, const float* logits, bool shared, const float* x,
                            const float* y, const float* dy, float* dx, float* dlogits, int n,
                            float* scratch, void* stream);

}  // namespace convpool::cuda
