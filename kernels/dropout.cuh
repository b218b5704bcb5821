// CUDA launchers: Dropout with draws keyed by (seed, layer, step, element) (kernels/dropout.cu).
// Same arguments and meaning as the CPU twin in src/cpu/dropout.h, plus a stream; pointers are
// device memory. Tested against the CPU in tests/kernel_parity_dropout.cpp (emulated in CI).
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cuda {

// `step` is a device pointer (read at run time, so a captured graph replays correctly);
// `first_element`: the global index of element 0 (data-parallel ranks train on slices).
void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t seed, uint32_t layer,
                     const uint64_t* step, void* stream, uint64_t first_element = 0);

void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t seed,
                      uint32_t layer, const uint64_t* step, bool accumulate, void* stream,
                      uint64_t first_element = 0);

}  // namespace convpool::cuda
