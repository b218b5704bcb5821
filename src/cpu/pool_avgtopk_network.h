// Avg-TopK's selection on the CPU's fast paths (src/cpu/pool_fast.cpp): a sorting network over
// one window's values in SIMD lanes, one window per lane. Ranks as pool_math.cuh's
// pool_ranks_before does (NaN first, then larger values), so the top k it leaves at the front
// are those of the shared window math; tmaxavg reads the same sort.
#pragma once
#include "pool_simd.h"

namespace convpool::cpu {

// Descending, NaN first: a bubble network (N(N-1)/2 compare-exchanges, unrolled).
template <int N>
inline void sort_descending(simd::vf (&v)[N]) {
  using namespace simd;
  for (int i = 0; i < N - 1; ++i)
    for (int j = N - 1; j > i; --j) {
      const vf a = v[j - 1], b = v[j];
      const vi keep = isnan(a) | (a >= b);
      v[j - 1] = sel(keep, a, b);
      v[j] = sel(keep, b, a);
    }
}

}  // namespace convpool::cpu
