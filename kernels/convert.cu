// uint8 batch -> float in [0, 1] on the GPU: the host ships bytes, a quarter of the floats.
#include "../src/cuda/check.h"
#include "../src/cuda/ops.h"

namespace convpool::cuda {

namespace {
__global__ void u8_to_float_kernel(const uint8_t* __restrict__ src, float* __restrict__ dst,
                                   size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x)
    dst[i] = float(src[i]) * (1.f / 255.f);  // the same expression as the CPU path
}
}  // namespace

void u8_to_float(const uint8_t* src, float* dst, size_t n, void* stream) {
  if (!n) return;
  u8_to_float_kernel<<<std::min(ceil_div(n, 256), 8192u), 256, 0, as_stream(stream)>>>(src, dst, n);
  CP_CUDA_CHECK_LAUNCH("u8_to_float_kernel");
}

}  // namespace convpool::cuda
