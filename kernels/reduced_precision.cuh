// CUDA launchers: float arrays to bf16 or fp16 and back (kernels/reduced_precision.cu). Same
// arguments and meaning as the CPU twin in src/cpu/reduced_precision.h, plus a stream;
// pointers are device memory. Tested against the CPU in tests/kernel_parity_reduced_precision.cpp.
#pragma once
#include <cstddef>
#include <cstdint>

#include "reduced_precision_math.cuh"

namespace convpool::cuda {

void floats_to_bf16(const float* x, uint16_t* y, size_t n, void* stream);
void bf16_to_floats(const uint16_t* x, float* y, size_t n, void* stream);
void floats_to_half(const float* x, uint16_t* y, size_t n, void* stream);
void half_to_floats(const uint16_t* x, float* y, size_t n, void* stream);

}  // namespace convpool::cuda
