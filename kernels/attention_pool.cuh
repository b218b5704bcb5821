// CUDA launchers: attention pooling (kernels/attention_pool.cu). Same arguments and meaning as
// the CPU twin in src/cpu/attention_pool.h, plus a stream; pointers are device memory. Tested
// against the CPU in tests/kernel_parity_attention_pool.cpp (emulated in CI).
#pragma once
#include <cstddef>

#include "attention_pool_math.cuh"

namespace convpool::cuda {

// attention: n x heads x hw floats, written here and read by backward.
void attention_pool_forward(const float* w, int heads, const float* x, float* y, float* attention,
                            int n, int c, int hw, void* stream);
// dx (may be null) and dw are overwritten. scratch: attention_pool_scratch_floats floats.
void attention_pool_backward(const float* w, int heads, const float* x, const float* attention,
                             const float* dy, float* dx, float* dw, int n, int c, int hw,
                             float* scratch, void* stream);

}  // namespace convpool::cuda
