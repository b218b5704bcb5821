// CPU kernel: attention pooling (kernels/attention_pool_math.cuh). x is N x C x H x W
// (hw = H x W), y is N x (heads C); w is heads x C. The CUDA twin is
// kernels/attention_pool.cuh, tested against this one.
#pragma once
#include <cstddef>

#include "kernels/attention_pool_math.cuh"

namespace convpool::cpu {

// attention: n x heads x hw floats, written here and read by backward. scratch:
// attention_pool_scratch_floats floats.
void attention_pool_forward(const float* w, int heads, const float* x, float* y,
                            float* attention, int n, int c, int hw, float* scratch);
// dx (may be null: no input gradient) and dw are overwritten; dw sums the images, then the
// positions, in order, whatever the thread count. scratch: attention_pool_scratch_floats
// floats.
void attention_pool_backward(const float* w, int heads, const float* x, const float* attention,
                             const float* dy, float* dx, float* dw, int n, int c, int hw,
                             float* scratch);

}  // namespace convpool::cpu
