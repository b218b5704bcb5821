// Element-wise network ops (launchers in src/cuda/ops_nn.h, CPU twins in src/cpu/nn_ops.cpp,
// the per-element math in nn_math.cuh): scaled copy, add, GELU, leaky ReLU and dropout, each
// a grid-stride loop. With `accumulate` a backward kernel adds to dx instead of overwriting it.
// Each is the CPU's float operations in the CPU's order, so they match it bit for bit on a GPU
// too, except GELU (CUDA's erff and expf differ from the host's in the last bits).
#include "cuda/check.h"
#include "batchnorm.cuh"
#include "batchnorm_math.cuh"

namespace convpool::cuda {

namespace {
#define CP_GRID_STRIDE(i, n)                                              \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n); \
       i += size_t(gridDim.x) * blockDim.x)

// __fadd_rn: nvcc never contracts it with the product in v into an FMA, so the sum rounds as
// the CPU's does.
__device__ __forceinline__ void store(float* dx, size_t i, float v, bool accumulate) {
  dx[i] = accumulate ? __fadd_rn(dx[i], v) : v;
}

__global__ void scaled_copy_kernel(const float* __restrict__ src, float* __restrict__ dst, size_t n,
                                   float scale, bool accumulate) {
  CP_GRID_STRIDE(i, n) store(dst, i, scale * src[i], accumulate);
}
__global__ void add_kernel(const float* __restrict__ a, const float* __restrict__ b,
                           float* __restrict__ y, size_t n) {
  CP_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

__global__ void gelu_forward_kernel(const float* __restrict__ x, float* __restrict__ y, size_t n) {
  CP_GRID_STRIDE(i, n) y[i] = ::convpool::gelu_forward(x[i]);
}
__global__ void gelu_backward_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                     float* __restrict__ dx, size_t n, bool accumulate) {
  CP_GRID_STRIDE(i, n) store(dx, i, ::convpool::gelu_backward(x[i], dy[i]), accumulate);
}

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
#undef CP_GRID_STRIDE

constexpr unsigned kThreads = 256;
unsigned blocks_for(size_t n) { return std::min(ceil_div(n, kThreads), 8192u); }
}  // namespace

void scaled_copy(const float* src, float* dst, size_t n, float scale, bool accumulate,
                 void* stream) {
  if (!n) return;
  scaled_copy_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(src, dst, n, scale,
                                                                        accumulate);
  CP_CUDA_CHECK_LAUNCH("scaled_copy_kernel");
}

void add_forward(const float* a, const float* b, float* y, size_t n, void* stream) {
  if (!n) return;
  add_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(a, b, y, n);
  CP_CUDA_CHECK_LAUNCH("add_kernel");
}

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
