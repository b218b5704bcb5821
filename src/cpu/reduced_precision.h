// CPU kernels: float arrays to bf16 or fp16 and back (kernels/reduced_precision_math.cuh), in
// parallel. The CUDA twin is kernels/reduced_precision.cuh (kernels/reduced_precision.cu),
// tested against these.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/reduced_precision_math.cuh"

namespace convpool::cpu {

void floats_to_bf16(const float* x, uint16_t* y, size_t n);
void bf16_to_floats(const uint16_t* x, float* y, size_t n);
void floats_to_half(const float* x, uint16_t* y, size_t n);
void half_to_floats(const uint16_t* x, float* y, size_t n);

}  // namespace convpool::cpu
