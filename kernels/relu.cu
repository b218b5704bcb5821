// ReLU forward and backward (math in activation_math.cuh, shared with the CPU backend).
#include "cuda/check.h"
#include "relu.cuh"
#include "activation_math.cuh"

namespace convpool::cuda {

namespace {
__global__ void relu_forward_kernel(const float* __restrict__ x, float* __restrict__ y, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x)
    y[i] = ::convpool::relu_forward(x[i]);
}
__global__ void relu_backward_kernel(const float* __restrict__ y, const float* __restrict__ dy,
                                     float* __restrict__ dx, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x)
    dx[i] = ::convpool::relu_backward(y[i], dy[i]);
}
constexpr unsigned kThreads = 256;
unsigned blocks_for(size_t n) { return std::min(ceil_div(n, kThreads), 8192u); }
}  // namespace

void relu_forward(const float* x, float* y, size_t n, void* stream) {
  if (!n) return;
  relu_forward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, y, n);
  CP_CUDA_CHECK_LAUNCH("relu_forward_kernel");
}

void relu_backward(const float* y, const float* dy, float* dx, size_t n, void* stream) {
  if (!n) return;
  relu_backward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(y, dy, dx, n);
  CP_CUDA_CHECK_LAUNCH("relu_backward_kernel");
}

}  // namespace convpool::cuda
