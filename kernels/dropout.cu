// Dropout (inverted), the draws of dropout_math.cuh: the CPU's elements, bit for bit.
#include "dropout.cuh"
#include "dropout_math.cuh"
#include "elementwise.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;
using elementwise::store;

// The step is read from device memory at run time, so a captured graph replays correctly.
__global__ void dropout_forward_kernel(const float* __restrict__ x, float* __restrict__ y, size_t n,
                                       float p, uint64_t seed, uint32_t layer,
                                       const uint64_t* __restrict__ step, uint64_t first) {
  const uint64_t s = *step;
  CP_GRID_STRIDE(i, n) y[i] = x[i] * ::convpool::dropout_factor(seed, layer, s, first + i, p);
}
__global__ void dropout_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx,
                                        size_t n, float p, uint64_t seed, uint32_t layer,
                                        const uint64_t* __restrict__ step, bool accumulate,
                                        uint64_t first) {
  const uint64_t s = *step;
  CP_GRID_STRIDE(i, n)
  store(dx, i, dy[i] * ::convpool::dropout_factor(seed, layer, s, first + i, p), accumulate);
}
}  // namespace

void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t seed, uint32_t layer,
                     const uint64_t* step, void* stream, uint64_t first_element) {
  if (!n) return;
  dropout_forward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, y, n, p, seed, layer,
                                                                            step, first_element);
  CP_CUDA_CHECK_LAUNCH("dropout_forward_kernel");
}

void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t seed, uint32_t layer,
                      const uint64_t* step, bool accumulate, void* stream,
                      uint64_t first_element) {
  if (!n) return;
  dropout_backward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(
      dy, dx, n, p, seed, layer, step, accumulate, first_element);
  CP_CUDA_CHECK_LAUNCH("dropout_backward_kernel");
}

}  // namespace convpool::cuda
