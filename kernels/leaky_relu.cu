// Leaky ReLU; the per-element math is activation_math.cuh.
#include "leaky_relu.cuh"
#include "activation_math.cuh"
#include "elementwise.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;
using elementwise::store;

__global__ void leaky_relu_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                          size_t n, float slope) {
  CP_GRID_STRIDE(i, n) y[i] = ::convpool::leaky_relu_forward(x[i], slope);
}
__global__ void leaky_relu_backward_kernel(const float* __restrict__ x,
                                           const float* __restrict__ dy, float* __restrict__ dx,
                                           size_t n, float slope, bool accumulate) {
  CP_GRID_STRIDE(i, n)
  store(dx, i, ::convpool::leaky_relu_backward(x[i], dy[i], slope), accumulate);
}
}  // namespace

void leaky_relu_forward(const float* x, float* y, size_t n, float slope, void* stream) {
  if (!n) return;
  leaky_relu_forward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, y, n, slope);
  CP_CUDA_CHECK_LAUNCH("leaky_relu_forward_kernel");
}

void leaky_relu_backward(const float* x, const float* dy, float* dx, size_t n, float slope,
                         bool accumulate, void* stream) {
  if (!n) return;
  leaky_relu_backward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, dy, dx, n, slope,
                                                                                accumulate);
  CP_CUDA_CHECK_LAUNCH("leaky_relu_backward_kernel");
}

}  // namespace convpool::cuda
