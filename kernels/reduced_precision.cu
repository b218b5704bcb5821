// Float arrays to bf16 or fp16 and back, one thread per element, through CUDA's own
// conversions (__float2bfloat16_rn, __float2half_rn: one instruction each from sm_80), which
// round as kernels/reduced_precision_math.cuh does: the parity tests hold CUDA's rounding to
// the CPU's, bit for bit, on a GPU as on the emulated target (whose __nv_bfloat16 and __half
// are the shared functions).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "elementwise.cuh"
#include "reduced_precision.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;

__global__ void floats_to_bf16_kernel(const float* __restrict__ x, uint16_t* __restrict__ y,
                                      size_t n) {
  CP_GRID_STRIDE(i, n) y[i] = __bfloat16_as_ushort(__float2bfloat16_rn(x[i]));
}
__global__ void bf16_to_floats_kernel(const uint16_t* __restrict__ x, float* __restrict__ y,
                                      size_t n) {
  CP_GRID_STRIDE(i, n) y[i] = __bfloat162float(__ushort_as_bfloat16(x[i]));
}
__global__ void floats_to_half_kernel(const float* __restrict__ x, uint16_t* __restrict__ y,
                                      size_t n) {
  CP_GRID_STRIDE(i, n) y[i] = __half_as_ushort(__float2half_rn(x[i]));
}
__global__ void half_to_floats_kernel(const uint16_t* __restrict__ x, float* __restrict__ y,
                                      size_t n) {
  CP_GRID_STRIDE(i, n) y[i] = __half2float(__ushort_as_half(x[i]));
}
}  // namespace

void floats_to_bf16(const float* x, uint16_t* y, size_t n, void* stream) {
  if (!n) return;
  floats_to_bf16_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, y, n);
  CP_CUDA_CHECK_LAUNCH("floats_to_bf16_kernel");
}
void bf16_to_floats(const uint16_t* x, float* y, size_t n, void* stream) {
  if (!n) return;
  bf16_to_floats_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, y, n);
  CP_CUDA_CHECK_LAUNCH("bf16_to_floats_kernel");
}
void floats_to_half(const float* x, uint16_t* y, size_t n, void* stream) {
  if (!n) return;
  floats_to_half_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, y, n);
  CP_CUDA_CHECK_LAUNCH("floats_to_half_kernel");
}
void half_to_floats(const uint16_t* x, float* y, size_t n, void* stream) {
  if (!n) return;
  half_to_floats_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, y, n);
  CP_CUDA_CHECK_LAUNCH("half_to_floats_kernel");
}

}  // namespace convpool::cuda
