// CUDA launchers: GELU, erf form (kernels/gelu.cu).
// Same arguments and meaning as the CPU twin in src/cpu/gelu.h, plus a stream; pointers are
// device memory. Tested against the CPU in tests/kernel_parity_gelu.cpp (emulated in CI).
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cuda {

void gelu_forward(const float* x, float* y, size_t n, void* stream);

void gelu_backward(const float* x, const float* dy, float* dx, size_t n, bool accumulate,
                   void* stream);

}  // namespace convpool::cuda
