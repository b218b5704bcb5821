// GELU, exact (erf) form; the per-element math is activation_math.cuh.
#include "gelu.cuh"
#include "activation_math.cuh"
#include "elementwise.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;
using elementwise::store;

__global__ void gelu_forward_kernel(const float* __restrict__ x, float* __restrict__ y, size_t n) {
  CP_GRID_STRIDE(i, n) y[i] = ::convpool::gelu_forward(x[i]);
}
__global__ void gelu_backward_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                     float* __restrict__ dx, size_t n, bool accumulate) {
  CP_GRID_STRIDE(i, n) store(dx, i, ::convpool::gelu_backward(x[i], dy[i]), accumulate);
}
}  // namespace

void gelu_forward(const float* x, float* y, size_t n, void* stream) {
  if (!n) return;
  gelu_forward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, y, n);
  CP_CUDA_CHECK_LAUNCH("gelu_forward_kernel");
}

void gelu_backward(const float* x, const float* dy, float* dx, size_t n, bool accumulate,
                   void* stream) {
  if (!n) return;
  gelu_backward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, dy, dx, n, accumulate);
  CP_CUDA_CHECK_LAUNCH("gelu_backward_kernel");
}

}  // namespace convpool::cuda
