// CUDA launchers of ReLU (kernels/relu.cu); the per-element math is activation_math.cuh.
// Launchers take device pointers and a stream (void*, so this header needs no CUDA headers),
// launch, and check the launch; only built when CONVPOOL_HAVE_CUDA.
#pragma once
#include <cstddef>

namespace convpool::cuda {

// kernels/relu.cu
void relu_forward(const float* x, float* y, size_t n, void* stream);
void relu_backward(const float* y, const float* dy, float* dx, size_t n, void* stream);

}  // namespace convpool::cuda
