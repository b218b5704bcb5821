// CPU kernel: y = a + b (residual sums).
// The CUDA twin is kernels/add.cuh, tested against this one.
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cpu {

// y = a + b
void add_forward(const float* a, const float* b, float* y, size_t n);

}  // namespace convpool::cpu
