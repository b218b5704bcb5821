// scale: dst = scale * src, overwriting or accumulating (also dropout's evaluation pass).
#include "scale.cuh"
#include "elementwise.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;
using elementwise::store;

__global__ void scaled_copy_kernel(const float* __restrict__ src, float* __restrict__ dst, size_t n,
                                   float scale, bool accumulate) {
  CP_GRID_STRIDE(i, n) store(dst, i, scale * src[i], accumulate);
}
}  // namespace

void scaled_copy(const float* src, float* dst, size_t n, float scale, bool accumulate,
                 void* stream) {
  if (!n) return;
  scaled_copy_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(src, dst, n, scale,
                                                                        accumulate);
  CP_CUDA_CHECK_LAUNCH("scaled_copy_kernel");
}

}  // namespace convpool::cuda
