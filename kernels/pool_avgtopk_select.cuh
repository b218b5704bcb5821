// Warp-level partial sorts: the r top-ranked elements of v[0..n), two ways.
//  - warp_rank_top: r rounds of warp arg-max. Each round every lane scans its strided share of v
//    for the best element ranked after the previous round's pick (no mask, no extra memory),
//    then a 5-step xor butterfly agrees on the warp's best. About r * (n/32 + 10) steps.
//  - warp_rank_top_bitonic (r <= 32): the warp keeps a sorted top-32 list, one entry per lane;
//    each chunk of 32 elements is bitonic-sorted across the lanes (15 shuffle stages), merged
//    into the list by an elementwise max with its reverse and a 5-stage bitonic merge. About
//    (n/32) * 21 stages, whatever r is.
// Both rank as pool_ranks_before does (NaN first, larger values, lower index): a strict total
// order, so both equal pool_rank_top exactly. Written once over the lane model
// (kernels/warp_lanes.cuh): the CUDA pooling kernels run them on a warp, the tests on HostWarp.
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
        if (oi >= 0 && (best_i[lane] < 0 ||
                        pool_ranks_before(other_v[lane], oi, best_v[lane], best_i[lane]))) {
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

// An entry of the bitonic list; index -1 is an empty slot, ranked after every element.
CP_HD bool warp_entry_before(float a, int ia, float b, int ib) {
  return ia >= 0 && (ib < 0 || pool_ranks_before(a, ia, b, ib));
}

// One compare-exchange stage between lanes `lane` and `lane ^ j`: the lane for which
// `keep_better(lane)` holds keeps the better-ranked entry of the two, its partner the other.
template <class Warp, class KeepBetter>
CP_HD void warp_exchange(const Warp& w, typename Warp::template Reg<float>& val,
                         typename Warp::template Reg<int>& idx, int j, KeepBetter keep_better) {
  const auto ov = w.shfl_xor(val, j);
  const auto oi = w.shfl_xor(idx, j);
  w.for_lanes([&](int lane) {
    const bool other_first = warp_entry_before(ov[lane], oi[lane], val[lane], idx[lane]);
    if (other_first == keep_better(lane)) {
      val[lane] = ov[lane];
      idx[lane] = oi[lane];
    }
  });
}

template <class Warp>
CP_HD void warp_rank_top_bitonic(const Warp& w, const float* v, int n, int r, int* ranked) {
  typename Warp::template Reg<float> top_v, chunk_v;
  typename Warp::template Reg<int> top_i, chunk_i;
  w.for_lanes([&](int lane) {
    top_v[lane] = 0.f;
    top_i[lane] = -1;
  });
  for (int base = 0; base < n; base += kWarpLanes) {
    w.for_lanes([&](int lane) {
      const int i = base + lane;
      chunk_v[lane] = i < n ? v[i] : 0.f;
      chunk_i[lane] = i < n ? i : -1;
    });
    // Bitonic sort of the chunk into rank order (lane 0 best).
    for (int k = 2; k <= kWarpLanes; k *= 2)
      for (int j = k / 2; j > 0; j /= 2)
        warp_exchange(w, chunk_v, chunk_i, j,
                      [&](int lane) { return ((lane & j) == 0) == ((lane & k) == 0); });
    // The best 32 of list + chunk: each slot against the chunk's reverse, then a bitonic merge.
    const auto rev_v = w.shfl_xor(chunk_v, kWarpLanes - 1);
    const auto rev_i = w.shfl_xor(chunk_i, kWarpLanes - 1);
    w.for_lanes([&](int lane) {
      if (warp_entry_before(rev_v[lane], rev_i[lane], top_v[lane], top_i[lane])) {
        top_v[lane] = rev_v[lane];
        top_i[lane] = rev_i[lane];
      }
    });
    for (int j = kWarpLanes / 2; j > 0; j /= 2)
      warp_exchange(w, top_v, top_i, j, [&](int lane) { return (lane & j) == 0; });
  }
  w.for_lanes([&](int lane) {
    if (lane < r) ranked[lane] = top_i[lane];  // one writer per slot
  });
}

}  // namespace convpool
