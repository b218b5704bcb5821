// The warp partial sorts of kernels/pool_avgtopk_select.cuh (k rounds of arg-max, and the bitonic
// top-32 list), executed on the CPU lane model: the same code the CUDA large-window and global
// pooling kernels run, checked against the sequential selection (pool_rank_top) on random
// planes with ties, NaN and infinities.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "kernels/pool_avgtopk_select.cuh"
#include "layer_harness.h"

using namespace convpool;

TEST(LaneModel, ShuffleXorExchangesBetweenPartnerLanes) {
  HostWarp w;
  HostWarp::Reg<int> r;
  w.for_lanes([&](int lane) { r[lane] = lane * 10; });
  for (int mask : {1, 2, 4, 8, 16, 31}) {
    const auto s = w.shfl_xor(r, mask);
    for (int lane = 0; lane < kWarpLanes; ++lane) EXPECT_EQ(s[lane], (lane ^ mask) * 10);
  }
}

TEST(WarpSelect, MatchesTheSequentialSelectionOnRandomPlanes) {
  std::mt19937_64 rng(test::fresh_seed());
  std::uniform_int_distribution<int> coarse(-3, 3);  // few distinct values: many ties
  std::uniform_real_distribution<float> fine(-2.f, 2.f);
  const float specials[] = {std::nanf(""), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), 0.f, -0.f};
  HostWarp w;
  int cases = 0;
  for (int n : {1, 2, 5, 31, 32, 33, 64, 100, 225, 961, 1024}) {
    for (int trial = 0; trial < 6; ++trial) {
      std::vector<float> v(static_cast<size_t>(n));
      for (auto& x : v) x = trial % 2 ? float(coarse(rng)) : fine(rng);
      if (trial >= 4)  // sprinkle NaN and infinities
        for (int s = 0; s < 1 + n / 50; ++s) v[rng() % n] = specials[rng() % 5];
      for (int r : {1, 2, 3, 7, 32, 64}) {
        if (r > n) continue;
        std::vector<int> want(static_cast<size_t>(r), -7), got(static_cast<size_t>(r), -7);
        pool_rank_top(v.data(), n, r, want.data());
        warp_rank_top(w, v.data(), n, r, got.data());
        ASSERT_EQ(got, want) << "rounds: n=" << n << " r=" << r << " trial " << trial;
        if (r <= kWarpLanes) {
          std::vector<int> bitonic(static_cast<size_t>(r), -7);
          warp_rank_top_bitonic(w, v.data(), n, r, bitonic.data());
          ASSERT_EQ(bitonic, want) << "bitonic: n=" << n << " r=" << r << " trial " << trial;
        }
        ++cases;
      }
    }
  }
  EXPECT_GT(cases, 200);
}

// The ranked forms give what the plain window functions give, for every rank-based method.
TEST(WarpSelect, RankedWindowMathAgreesWithThePlainForm) {
  std::mt19937_64 rng(test::fresh_seed());
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  HostWarp w;
  for (PoolMethod m :
       {PoolMethod::max, PoolMethod::avgtopk, PoolMethod::tmaxavg, PoolMethod::mixed}) {
    PoolWindowParams p;
    p.method = m;
    p.k = 5;
    p.threshold = 0.9f;
    p.lambda = 0.3f;
    const int n = 300;
    std::vector<float> v(n), g1(n), g2(n);
    for (auto& x : v) x = u(rng);
    int ranked[kPoolMaxTopK];
    warp_rank_top(w, v.data(), n, pool_ranks_needed(p, n), ranked);
    const float y = pool_window_forward(p, v.data(), n, n);
    EXPECT_EQ(pool_window_forward_ranked(p, v.data(), n, n, ranked), y) << int(m);
    pool_window_backward(p, v.data(), n, n, y, 0.7f, g1.data());
    pool_window_backward_ranked(p, v.data(), n, n, ranked, y, 0.7f, g2.data());
    EXPECT_EQ(g1, g2) << int(m);
  }
}
