// CUDA launchers: Leaky ReLU (kernels/leaky_relu.cu).
// Same arguments and meaning as the CPU twin in src/cpu/leaky_relu.h, plus a stream; pointers are
// device memory. Tested against the CPU in tests/kernel_parity_leaky_relu.cpp (emulated in CI).
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cuda {

void leaky_relu_forward(const float* x, float* y, size_t n, float slope, void* stream);

void leaky_relu_backward(const float* x, const float* dy, float* dx, size_t n, float slope,
                         bool accumulate, void* stream);

}  // namespace convpool::cuda
