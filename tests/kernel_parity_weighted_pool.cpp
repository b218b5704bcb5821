// Kernel parity of weighted_pool: kernels/weighted_pool.cu against its CPU twin
// (src/cpu/weighted_pool.cpp) on the same inputs: the output and the input gradient bit for
// bit on the emulated target (within rounding on a GPU), the logit gradient (summed in another
// order) within a relative 1e-5, per channel and shared, at whole, padded, overlapping and
// strided-past windows, on uniform values, exact ties and NaN/+-inf; outputs poisoned (NaN)
// before the kernels run. The logit gradient is also the same bits under every thread
// schedule. Written once for the real GPU (convpool_tests, skipped without a device) and the
// emulated target (convpool_emu_tests); docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cpu/weighted_pool.h"
#include "kernels/weighted_pool.cuh"
#include "kernel_parity_elementwise.h"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

struct WpCase {
  int n, c, h, w, k, s, p;
  bool shared;
  std::string str() const {
    return "weighted_pool size=" + std::to_string(k) + " stride=" + std::to_string(s) +
           " pad=" + std::to_string(p) + (shared ? " shared=1" : "") + " on " +
           std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w) + " x" +
           std::to_string(n);
  }
};

struct WpRun {
  std::vector<float> y, dx, dlogits;
};

WpRun run_device(const WpCase& k, const PoolGeom& g, const std::vector<float>& logits,
                 const std::vector<float>& x, const std::vector<float>& dy) {
  Dev<float> dl(logits), dxin(x), ddy(dy), dout(dy.size()), ddx(x.size()), ddl(logits.size()),
      scratch(std::max<size_t>(1, weighted_pool_scratch_floats(g, k.shared)));
  {
    GRID_CAP(2);  // grid-stride second passes
    cuda::weighted_pool_forward(g, dl.get(), k.shared, dxin.get(), dout.get(), k.n, nullptr);
    cuda::weighted_pool_backward(g, dl.get(), k.shared, dxin.get(), dout.get(), ddy.get(),
                                 ddx.get(), ddl.get(), k.n, scratch.get(), nullptr);
  }
  if (cudaDeviceSynchronize() != cudaSuccess) ADD_FAILURE() << "weighted_pool kernels";
  return {dout.download(), ddx.download(), ddl.download()};
}

const WpCase kCases[] = {
    {3, 4, 8, 8, 2, 2, 0, false},   {2, 3, 9, 7, 3, 2, 1, false}, {2, 2, 7, 6, 3, 1, 1, true},
    {2, 3, 11, 10, 2, 3, 0, false}, {1, 2, 9, 9, 8, 4, 4, true},  {2, 2, 5, 5, 5, 1, 2, false},
    {2, 3, 9, 8, 2, 2, 1, false},   {2, 2, 10, 9, 3, 3, 1, true},  // padded, side by side
    {9, 2, 12, 12, 2, 2, 0, true},  // 2 x 9 x 36 = 648 windows a channel: several passes a block
};

TEST(KernelParityNn, WeightedPoolMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(43);
  std::uniform_real_distribution<float> lu(-3.f, 3.f);
  for (const WpCase& k : kCases)
    for (const Fill fill : {Fill::uniform, Fill::ties, Fill::special}) {
      const std::string what = k.str() + " fill " + std::to_string(int(fill));
      const PoolGeom g = make_pool_geom(k.c, k.h, k.w, k.k, k.k, k.s, k.s, k.p, k.p, false, false);
      std::vector<float> logits(size_t(k.shared ? 1 : k.c) * k.k * k.k);
      for (auto& v : logits) v = lu(rng);
      const std::vector<float> x = make_input(size_t(k.n) * k.c * k.h * k.w, fill, rng),
                               dy = make_input(size_t(k.n) * k.c * g.OH * g.OW, Fill::uniform, rng);
      const WpRun got = run_device(k, g, logits, x, dy);
      std::vector<float> y(dy.size(), std::nanf("")), dx(x.size(), std::nanf("")),
          dl(logits.size(), std::nanf("")),
          scratch(weighted_pool_scratch_floats(g, k.shared), std::nanf(""));
      cpu::weighted_pool_forward(g, logits.data(), k.shared, x.data(), y.data(), k.n);
      cpu::weighted_pool_backward(g, logits.data(), k.shared, x.data(), y.data(), dy.data(),
                                  dx.data(), dl.data(), k.n, scratch.data());
      expect_same_outputs(got.y, y, what);
      expect_same_outputs(got.dx, dx, what + " dx");
      for (size_t i = 0; i < dl.size(); ++i) {
        if (!std::isfinite(dl[i])) {  // NaN or an infinity: which one depends on the order
          EXPECT_FALSE(std::isfinite(got.dlogits[i])) << what << " dlogits " << i;
          continue;
        }
        EXPECT_NEAR(got.dlogits[i], dl[i], 1e-5f * (1.f + std::fabs(dl[i])))
            << what << " dlogits " << i;
      }
    }
}

TEST(KernelParityNn, WeightedPoolLogitGradientIsTheSameBitsUnderEverySchedule) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(44);
  const WpCase k{7, 3, 19, 17, 3, 2, 1, true};  // 7 x 90 = 630 windows a channel
  const PoolGeom g = make_pool_geom(k.c, k.h, k.w, k.k, k.k, k.s, k.s, k.p, k.p, false, false);
  std::vector<float> logits = make_input(9, Fill::uniform, rng),
                     x = make_input(size_t(k.n) * k.c * k.h * k.w, Fill::uniform, rng),
                     dy = make_input(size_t(k.n) * k.c * g.OH * g.OW, Fill::uniform, rng);
  for (size_t i = 0; i < x.size(); ++i)  // magnitudes over several orders: rounding shows
    x[i] *= std::pow(10.f, float(int(i % 7) - 3));
  std::vector<std::vector<float>> runs;
  run_under_four_schedules(300,
                           [&](int) { runs.push_back(run_device(k, g, logits, x, dy).dlogits); });
  for (size_t r = 1; r < runs.size(); ++r) expect_same_bits(runs[r], runs[0], "dlogits");
}

}  // namespace
#endif
