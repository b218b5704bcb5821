// CPU kernel: Dropout (inverted), the draws of kernels/dropout_math.cuh.
// The CUDA twin is kernels/dropout.cuh, tested against this one.
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cpu {

// Element i of the batch is kept by the draw (seed, layer, step, first_element + i) of
// kernels/dropout_math.cuh; first_element is the global index of element 0 (data-parallel slices).
void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t seed, uint32_t layer,
                     uint64_t step, uint64_t first_element = 0);
void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t seed,
                      uint32_t layer, uint64_t step, bool accumulate, uint64_t first_element = 0);

}  // namespace convpool::cpu
