// CPU kernel: Leaky ReLU; the per-element math is kernels/activation_math.cuh.
// The CUDA twin is kernels/leaky_relu.cuh, tested against this one.
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cpu {

void leaky_relu_forward(const float* x, float* y, size_t n, float slope);
void leaky_relu_backward(const float* x, const float* dy, float* dx, size_t n, float slope,
                         bool accumulate);

}  // namespace convpool::cpu
