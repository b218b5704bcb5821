// Inter-map pooling: one thread per output (forward) and per input element (backward, the
// gather form: each dx element written once, no atomics); the math is intermap_pool_math.cuh.
#include "elementwise.cuh"
#include "intermap_pool.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;

__global__ void intermap_pool_forward_kernel(InterMapMode mode, int groups,
                                             const float* __restrict__ x, float* __restrict__ y,
                                             size_t outputs, size_t hw) {
  CP_GRID_STRIDE(o, outputs) {
    const size_t map = o / hw, at = o % hw;
    y[o] = intermap_forward(mode, x + map * groups * hw + at, groups, hw);
  }
}

__global__ void intermap_pool_backward_kernel(InterMapMode mode, int groups,
                                              const float* __restrict__ x,
                                              const float* __restrict__ dy,
                                              float* __restrict__ dx, size_t inputs, size_t hw) {
  CP_GRID_STRIDE(i, inputs) {
    const size_t map = i / hw, at = i % hw, out_map = map / size_t(groups);
    dx[i] = intermap_grad(mode, x + out_map * groups * hw + at, groups, hw,
                          int(map % size_t(groups)), dy[out_map * hw + at]);
  }
}
}  // namespace

void intermap_pool_forward(InterMapMode mode, int groups, const float* x, float* y, int n, int c,
                           size_t hw, void* stream) {
  const size_t outputs = size_t(n) * size_t(c / groups) * hw;
  if (!outputs) return;
  intermap_pool_forward_kernel<<<blocks_for(outputs), kThreads, 0, as_stream(stream)>>>(
      mode, groups, x, y, outputs, hw);
  CP_CUDA_CHECK_LAUNCH("intermap_pool_forward_kernel");
}

void intermap_pool_backward(InterMapMode mode, int groups, const float* x, const float* dy,
                            float* dx, int n, int c, size_t hw, void* stream) {
  const size_t inputs = size_t(n) * size_t(c) * hw;
  if (!inputs) return;
  intermap_pool_backward_kernel<<<blocks_for(inputs), kThreads, 0, as_stream(stream)>>>(
      mode, groups, x, dy, dx, inputs, hw);
  CP_CUDA_CHECK_LAUNCH("intermap_pool_backward_kernel");
}

}  // namespace convpool::cuda
