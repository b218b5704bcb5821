// CUDA launchers: One input of a channel concatenation (kernels/concat.cu).
// Same arguments and meaning as the CPU twin in src/cpu/concat.h, plus a stream; pointers are
// device memory. Tested against the CPU in tests/kernel_parity_concat.cpp (emulated in CI).
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cuda {

void concat_forward(int n, int c, int c_total, int c_offset, int plane, const float* x, float* y,
                    void* stream);

void concat_backward(int n, int c, int c_total, int c_offset, int plane, const float* dy,
                     float* dx, bool accumulate, void* stream);

}  // namespace convpool::cuda
