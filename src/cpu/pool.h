// CPU pooling: every method, by gathering each window and applying kernels/pool_math.cuh.
#pragma once
#include <cstdint>

#include "../../kernels/pool_math.cuh"

namespace convpool::cpu {

using convpool::PoolGeom;
using convpool::PoolRng;

// `argmax` (one int per output, or null) lets max pooling remember its choice so backward
// is a scatter; other methods recompute their windows in backward.
void pool_forward(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                  const float* x, float* y, int32_t* argmax);
// dx (null: not wanted) is overwritten. If dlambda is non-null (learned mixed), it receives
// sum dy*(max-avg).
void pool_backward(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                   const float* x, const float* y, const float* dy, float* dx, float* dlambda,
                   const int32_t* argmax);

}  // namespace convpool::cpu
