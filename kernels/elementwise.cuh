// What the element-wise kernels share (add, scale, gelu, leaky_relu, dropout): a grid-stride
// loop, the launch shape, and a gradient store that overwrites or accumulates. Each kernel does
// the CPU's float operations in the CPU's order, so it matches the CPU bit for bit on a GPU too
// (GELU aside: CUDA's erff and expf differ from the host's in the last bits).
#pragma once
#include <algorithm>
#include <cstddef>

#include "cuda/check.h"

namespace convpool::cuda::elementwise {

#define CP_GRID_STRIDE(i, n)                                              \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n); \
       i += size_t(gridDim.x) * blockDim.x)

// With `accumulate` a backward kernel adds to dx instead of overwriting it. __fadd_rn: nvcc
// never contracts it with the product in v into an FMA, so the sum rounds as the CPU's does.
__device__ __forceinline__ void store(float* dx, size_t i, float v, bool accumulate) {
  dx[i] = accumulate ? __fadd_rn(dx[i], v) : v;
}

constexpr unsigned kThreads = 256;
inline unsigned blocks_for(size_t n) { return std::min(ceil_div(n, kThreads), 8192u); }

}  // namespace convpool::cuda::elementwise
