// CUDA path of per-pixel pyramid pooling (src/layers/pyramid_pool.cpp): the pooling kernels'
// max at each size's geometry (kernels/pool.cuh), the concat op's copies, on one stream. The
// CPU twin is src/cpu/pyramid_pool.h; compared with it by the CUDA layer-parity suite
// (tests/test_cuda_parity.cpp, on the emulated engine in CI).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/pool_math.cuh"

namespace convpool::cuda {

// The layer state size i's kernels keep (its selection for the warp family, else none).
size_t pyramid_pool_state_ints(const PoolGeom& size, int batch);

// x: n x C x H x W; y: n x (C * sizes) x H x W (device). pooled: n * C * H * W floats of
// scratch; states[i]: size i's state (null when it keeps none). step: the device step.
void pyramid_pool_forward(std::span<const PoolGeom> sizes, bool training, const uint64_t* step,
                          int n, const float* x, float* y, float* pooled,
                          std::span<int32_t* const> states, void* stream);
// dx is overwritten: the sizes' gradients summed in size order. The kernels read each size's
// pooled output: its slice of y. work: 3 * n * C * H * W floats of scratch.
void pyramid_pool_backward(std::span<const PoolGeom> sizes, bool training, const uint64_t* step,
                           int n, const float* x, const float* y, const float* dy, float* dx,
                           float* work, std::span<int32_t* const> states, void* stream);

}  // namespace convpool::cuda
