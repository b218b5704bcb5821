// CPU kernel: GELU, erf form; the per-element math is kernels/activation_math.cuh.
// The CUDA twin is kernels/gelu.cuh, tested against this one.
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cpu {

void gelu_forward(const float* x, float* y, size_t n);
void gelu_backward(const float* x, const float* dy, float* dx, size_t n, bool accumulate);

}  // namespace convpool::cpu
