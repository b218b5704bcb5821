// CPU kernel: dst = scale * src, overwriting or accumulating (the scale op, dropout's evaluation pass, gradient hand-offs).
// The CUDA twin is kernels/scale.cuh, tested against this one.
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cpu {

// dst = scale * src, or dst += scale * src with accumulate.
void scaled_copy(const float* src, float* dst, size_t n, float scale, bool accumulate);

}  // namespace convpool::cpu
