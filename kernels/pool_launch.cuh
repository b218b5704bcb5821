// Device-side helpers shared by the pooling kernel families (pool_small.cu, pool_warp.cu).
#pragma once
#include "pool.cuh"
#include "philox.cuh"
#include "pool_math.cuh"

namespace convpool::cuda {

// The window parameters of one output at the current step: the same draws as the CPU backend.
__device__ __forceinline__ PoolWindowParams params_for(const PoolLaunch& L, uint64_t out_index) {
  PoolWindowParams p = L.p;
  const uint64_t step = *L.step;
  if (p.method == PoolMethod::mixed) {
    if (L.alpha) {
      p.lambda = 1.f / (1.f + expf(-L.alpha[0]));
    } else if (p.training) {
      p.lambda = philox_uniform(L.seed, kRngPoolMix, L.layer, uint32_t(step), 0) < 0.5f ? 1.f : 0.f;
    } else {
      p.lambda = 0.5f;
    }
  }
  if (pool_draws_per_window(p.method) && p.training)
    p.u = philox_uniform(L.seed, kRngPoolSample, L.layer, uint32_t(step), L.first_output + out_index);
  return p;
}

}  // namespace convpool::cuda
