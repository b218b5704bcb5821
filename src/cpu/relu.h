// CPU kernel: ReLU. The per-element math is kernels/activation_math.cuh; the CUDA twin is
// kernels/relu.cuh, tested against this one.
#pragma once
#include <cstddef>

namespace convpool::cpu {

// y = max(x, 0); NaN passes through.
void relu_forward(const float* x, float* y, size_t n);
// dx = dy where y > 0, else 0: reads the output, since y > 0 exactly where x > 0.
void relu_backward(const float* y, const float* dy, float* dx, size_t n);

}  // namespace convpool::cpu
