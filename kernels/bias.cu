// Bias add over NCHW and its gradient (a per-channel reduction, one block per channel, with
// a fixed reduction order so results are deterministic).
#include <cub/block/block_reduce.cuh>

#include "cuda/check.h"
#include "bias.cuh"

namespace convpool::cuda {

namespace {
__global__ void bias_add_kernel(float* __restrict__ y, const float* __restrict__ b, int c,
                                int plane, size_t total) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total;
       i += size_t(gridDim.x) * blockDim.x)
    y[i] += b[(i / plane) % c];
}

template <int kThreads>
__global__ void bias_grad_kernel(const float* __restrict__ dy, float* __restrict__ db, int n, int c,
                                 int plane) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const int ch = blockIdx.x;
  float s = 0.f;
  for (int i = threadIdx.x; i < n * plane; i += kThreads) {
    const int img = i / plane, p = i % plane;
    s += dy[(size_t(img) * c + ch) * plane + p];
  }
  const float total = Reduce(tmp).Sum(s);
  if (threadIdx.x == 0) db[ch] = total;
}
}  // namespace

void bias_add(float* y, const float* b, int n, int c, int plane, void* stream) {
  const size_t total = size_t(n) * c * plane;
  if (!total) return;
  bias_add_kernel<<<std::min(ceil_div(total, 256), 8192u), 256, 0, as_stream(stream)>>>(
      y, b, c, plane, total);
  CP_CUDA_CHECK_LAUNCH("bias_add_kernel");
}

void bias_grad(const float* dy, float* db, int n, int c, int plane, void* stream) {
  if (!c) return;
  bias_grad_kernel<256><<<c, 256, 0, as_stream(stream)>>>(dy, db, n, c, plane);
  CP_CUDA_CHECK_LAUNCH("bias_grad_kernel");
}

}  // namespace convpool::cuda
