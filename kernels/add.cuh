// CUDA launchers: y = a + b (kernels/add.cu).
// Same arguments and meaning as the CPU twin in src/cpu/add.h, plus a stream; pointers are
// device memory. Tested against the CPU in tests/kernel_parity_add.cpp (emulated in CI).
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cuda {

void add_forward(const float* a, const float* b, float* y, size_t n, void* stream);

}  // namespace convpool::cuda
