// Avg-TopK's selection on the CPU's fast paths (src/cpu/pool_fast.cpp): a sorting network over
// one window's values in SIMD lanes, one window per lane. Ranks as pool_math.cuh's
// pool_ranks_before does (NaN first, then larger values), so the top k it leaves at the front
// are those of the shared window math; tmaxavg reads the same sort.
//
// The network is Batcher's odd-even merge sort for the next power of two, generated at compile
// time, with every comparator that touches a position >= N removed: those positions would
// hold values below every real one, which no comparator moves, so the pruned network sorts N
// values (28 comparators for 3x3 windows, 140 for 5x5; a bubble network needs 36 and 300).
#pragma once
#include <algorithm>
#include <bit>
#include <utility>

#include "pool_simd.h"

namespace convpool::cpu {

template <int N>
struct SortNetwork {
  struct Pairs {
    int a[256] = {}, b[256] = {};
    int size = 0;
  };
  static constexpr Pairs make() {
    Pairs s;
    const int P = int(std::bit_ceil(unsigned(N)));
    for (int p = 1; p < P; p *= 2)
      for (int k = p; k >= 1; k /= 2)
        for (int j = k % p; j <= P - 1 - k; j += 2 * k)
          for (int i = 0; i <= std::min(k - 1, P - j - k - 1); ++i)
            if ((i + j) / (p * 2) == (i + j + k) / (p * 2) && i + j + k < N) {
              s.a[s.size] = i + j;
              s.b[s.size] = i + j + k;
              ++s.size;
            }
    return s;
  }
  static constexpr Pairs pairs = make();
};

// Descending, NaN first; the network unrolled at compile time.
template <int N>
inline void sort_descending(simd::vf (&v)[N]) {
  using namespace simd;
  constexpr auto& net = SortNetwork<N>::pairs;
  [&]<size_t... I>(std::index_sequence<I...>) {
    auto exchange = [&](int a, int b) {
      const vf x = v[a], y = v[b];
      const vi keep = isnan(x) | (x >= y);
      v[a] = sel(keep, x, y);
      v[b] = sel(keep, y, x);
    };
    (exchange(net.a[I], net.b[I]), ...);
  }
  (std::make_index_sequence<net.size>{});
}

}  // namespace convpool::cpu
