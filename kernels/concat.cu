// Channel concatenation (launchers in concat.cuh, CPU twins in src/cpu/concat.cpp): x
// (n x c x plane) is channels [c_offset, c_offset + c) of y (n x c_total x plane). One
// grid-stride loop over the n * c * plane elements of the slice; backward reads that slice of
// dy and overwrites or accumulates dx.
#include "cuda/check.h"
#include "concat.cuh"

namespace convpool::cuda {

namespace {
// Element i of the slice (image i / slice, offset i % slice) in the concatenated tensor.
__device__ __forceinline__ size_t concat_index(size_t i, size_t slice, int c_total, int c_offset,
                                               int plane) {
  return ((i / slice) * c_total + c_offset) * plane + i % slice;
}

__global__ void concat_forward_kernel(int c_total, int c_offset, int plane, size_t slice,
                                      const float* __restrict__ x, float* __restrict__ y,
                                      size_t total) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total;
       i += size_t(gridDim.x) * blockDim.x)
    y[concat_index(i, slice, c_total, c_offset, plane)] = x[i];
}

__global__ void concat_backward_kernel(int c_total, int c_offset, int plane, size_t slice,
                                       const float* __restrict__ dy, float* __restrict__ dx,
                                       size_t total, bool accumulate) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total;
       i += size_t(gridDim.x) * blockDim.x) {
    const float v = dy[concat_index(i, slice, c_total, c_offset, plane)];
    dx[i] = accumulate ? dx[i] + v : v;
  }
}

constexpr unsigned kThreads = 256;
unsigned blocks_for(size_t n) { return std::min(ceil_div(n, kThreads), 8192u); }
}  // namespace

void concat_forward(int n, int c, int c_total, int c_offset, int plane, const float* x, float* y,
                    void* stream) {
  const size_t slice = size_t(c) * plane, total = size_t(n) * slice;
  if (!total) return;
  concat_forward_kernel<<<blocks_for(total), kThreads, 0, as_stream(stream)>>>(
      c_total, c_offset, plane, slice, x, y, total);
  CP_CUDA_CHECK_LAUNCH("concat_forward_kernel");
}

void concat_backward(int n, int c, int c_total, int c_offset, int plane, const float* dy, float* dx,
                     bool accumulate, void* stream) {
  const size_t slice = size_t(c) * plane, total = size_t(n) * slice;
  if (!total) return;
  concat_backward_kernel<<<blocks_for(total), kThreads, 0, as_stream(stream)>>>(
      c_total, c_offset, plane, slice, dy, dx, total, accumulate);
  CP_CUDA_CHECK_LAUNCH("concat_backward_kernel");
}

}  // namespace convpool::cuda
