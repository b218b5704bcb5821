// Warp-level partial sort: the r top-ranked elements of v[0..n) by r rounds of warp arg-max.
// Each round every lane scans its strided share of v for the best element ranked after the
// previous round's pick (no mask, no extra memory), then a 5-step xor butterfly agrees on the
// warp's best. The ranking is pool_ranks_before's (NaN first, larger values, lower index), so
// the result equals pool_rank_top's exactly. Written once over the lane model
// (kernels/warp_lanes.cuh): the CUDA pooling kernels run it on a warp, the tests on HostWarp.
#pragma once
#include "pool_math.cuh"
#include "warp_lanes.cuh"

namespace convpool {

// Cost: r * (n / 32 + 10) steps per lane; v is read r times (from shared memory on the GPU).
template <class Warp>
CP_HD void warp_rank_top(const Warp& w, const float* v, int n, int r, int* ranked) {
  float prev_v = 0.f;
  int prev_i = -1;
  for (int round = 0; round < r; ++round) {
    typename Warp::template Reg<float> best_v;
    typename Warp::template Reg<int> best_i;
    w.for_lanes([&](int lane) {
      int bi = -1;
      float bv = 0.f;
      for (int i = lane; i < n; i += kWarpLanes) {
        if (prev_i >= 0 && !pool_ranks_before(prev_v, prev_i, v[i], i)) continue;
        if (bi < 0 || pool_ranks_before(v[i], i, bv, bi)) bi = i, bv = v[i];
      }
      best_v[lane] = bv;
      best_i[lane] = bi;
    });
    for (int mask = kWarpLanes / 2; mask >= 1; mask /= 2) {
      const auto other_v = w.shfl_xor(best_v, mask);
      const auto other_i = w.shfl_xor(best_i, mask);
      w.for_lanes([&](int lane) {
        const int oi = other_i[lane];
        if (oi >= 0 && (best_i[lane] < 0 || pool_ranks_before(other_v[lane], oi, best_v[lane],
                                                              best_i[lane]))) {
          best_v[lane] = other_v[lane];
          best_i[lane] = oi;
        }
      });
    }
    prev_v = w.any_lane(best_v);
    prev_i = w.any_lane(best_i);
    w.for_lanes([&](int lane) {
      if (lane == 0) ranked[round] = prev_i;  // one writer: ranked may be shared memory
    });
  }
}

}  // namespace convpool
