// CUDA launchers of pooling, every method (kernels/pool_small.cu, kernels/pool_warp.cu).
// Launchers take device pointers and a stream (void*, so this header needs no CUDA headers),
// launch, and check the launch; only built when CONVPOOL_HAVE_CUDA.
#pragma once
#include <cstddef>
#include <cstdint>

#include "pool_math.cuh"

namespace convpool::cuda {

// Pooling, every method, in two kernel families chosen by window size:
//  - kernels/pool_small.cu, windows of up to kPoolSmallWindow elements: one thread per output
//    (forward) or per input element (backward, gather form: deterministic, no atomics);
//  - kernels/pool_warp.cu, global pooling of planes up to 32x32 and other windows above
//    kPoolSmallWindow elements (up to kPoolWarpWindow) that do not overlap: one warp per window,
//    the selection by warp-level partial sort (kernels/pool_avgtopk_select.cuh), the indices it picked kept
//    in `ranked` (pool_state_ints of them) for backward.
// `step` is a device pointer (drives mixed and stochastic draws); `alpha` is the
// learned-mixed parameter (device, or null).
constexpr int kPoolSmallWindow = 64, kPoolWarpWindow = 1024;
// Global pooling (one window covering the plane) always takes the warp family.
inline bool pool_uses_warp_kernels(const PoolGeom& g) {
  const bool global = g.OH == 1 && g.OW == 1 && g.KH == g.H && g.KW == g.W;
  return global || g.KH * g.KW > kPoolSmallWindow;
}
// The layer state the warp kernels need: the selection of every output.
inline size_t pool_state_ints(const PoolGeom& g, const PoolWindowParams& p, int batch) {
  if (!pool_uses_warp_kernels(g)) return 0;
  return size_t(batch) * g.C * g.OH * g.OW * size_t(pool_ranks_needed(p, g.KH * g.KW));
}
// `first_output`: the global index of output 0, for the stochastic draws (data-parallel slices).
void pool_forward(const PoolGeom& g, const PoolWindowParams& p, uint64_t seed, uint32_t layer,
                  const uint64_t* step, const float* alpha, int n, const float* x, float* y,
                  int32_t* ranked, void* stream, uint64_t first_output = 0);
// dx (null: not wanted) is overwritten. dalpha (device, learned mixed only) receives the
// gradient of alpha.
void pool_backward(const PoolGeom& g, const PoolWindowParams& p, uint64_t seed, uint32_t layer,
                   const uint64_t* step, const float* alpha, int n, const float* x, const float* y,
                   const float* dy, float* dx, float* dalpha, const int32_t* ranked, void* stream,
                   uint64_t first_output = 0);

// kernels/pool_warp.cu, called by the two above for large windows.
struct PoolLaunch;
void pool_forward_warp(const PoolLaunch& L, int planes, const float* x, float* y, int32_t* ranked,
                       void* stream);
void pool_backward_warp(const PoolLaunch& L, int planes, const float* x, const float* y,
                        const float* dy, float* dx, const int32_t* ranked, void* stream);

// What every pooling kernel needs to know about its call.
struct PoolLaunch {
  PoolGeom g;
  PoolWindowParams p;
  uint64_t seed;
  uint32_t layer;
  const uint64_t* step;  // device
  const float* alpha;    // device, learned mixed only
  uint64_t first_output = 0;  // the global index of output 0 (data-parallel slices)
};

}  // namespace convpool::cuda
