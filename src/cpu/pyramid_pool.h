// CPU path of per-pixel pyramid pooling (src/layers/pyramid_pool.cpp): max pooling of x at each
// size's geometry (stride 1, padding size/2: the input's height and width) with the pooling
// layer's recording paths, the pooled maps concatenated along channels, size by size. The CUDA
// twin is src/cuda/pyramid_pool.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/pool_math.cuh"

namespace convpool::cpu {

// x: n x C x H x W; y: n x (C * sizes) x H x W. pooled: n * C * H * W floats of scratch.
// selections[i]: size i's selection (n * C * H * W int32), kept for backward.
void pyramid_pool_forward(std::span<const PoolGeom> sizes, int n, const float* x, float* y,
                          float* pooled, std::span<int32_t* const> selections);
// dx (n x C x H x W) is overwritten: the sizes' gradients summed in size order. work: 2 * n *
// C * H * W floats of scratch.
void pyramid_pool_backward(std::span<const PoolGeom> sizes, int n, const float* x,
                           const float* dy, float* dx, float* work,
                           std::span<int32_t* const> selections);

}  // namespace convpool::cpu
