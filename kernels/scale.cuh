// CUDA launchers: dst = scale * src, overwriting or accumulating (kernels/scale.cu).
// Same arguments and meaning as the CPU twin in src/cpu/scale.h, plus a stream; pointers are
// device memory. Tested against the CPU in tests/kernel_parity_scale.cpp (emulated in CI).
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cuda {

void scaled_copy(const float* src, float* dst, size_t n, float scale, bool accumulate,
                 void* stream);

}  // namespace convpool::cuda
