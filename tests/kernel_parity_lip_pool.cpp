// Kernel parity of lip_pool: kernels/lip_pool.cu against its CPU twin (src/cpu/lip_pool.cpp)
// (its generic path) on the same inputs: the output and the input gradient bit for bit on the
// emulated target (within rounding on a GPU), dgamma (summed in another order) within a relative
// 1e-5, at whole, padded, overlapping and strided-past windows, scales of both signs and zero, on
// uniform values, exact ties and NaN/+-inf; outputs poisoned (NaN) before the kernels run.
// dgamma is also the same bits under every thread schedule. Written once for the real GPU
// (convpool_tests, skipped without a device) and the emulated target (convpool_emu_tests);
// docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cpu/lip_pool.h"
#include "kernel_parity_elementwise.h"
#include "kernels/lip_pool.cuh"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

struct LipCase {
  int n, c, h, w, k, s, p;
  std::string str() const {
    return "lip_pool size=" + std::to_string(k) + " stride=" + std::to_string(s) +
           " pad=" + std::to_string(p) + " on " + std::to_string(c) + "x" + std::to_string(h) +
           "x" + std::to_string(w) + " x" + std::to_string(n);
  }
};

struct LipRun {
  std::vector<float> y, dx, dgamma;
};

LipRun run_device(const LipCase& k, const PoolGeom& g, const std::vector<float>& gamma,
                  const std::vector<float>& x, const std::vector<float>& dy) {
  Dev<float> dg(gamma), dxin(x), ddy(dy), dout(dy.size()), ddx(x.size()), ddg(gamma.size());
  {
    GRID_CAP(2);  // grid-stride second passes; blocks take several channels
    cuda::lip_pool_forward(g, dg.get(), dxin.get(), dout.get(), k.n, nullptr);
    cuda::lip_pool_backward(g, dg.get(), dxin.get(), dout.get(), ddy.get(), ddx.get(), ddg.get(),
                            k.n, nullptr);
  }
  if (cudaDeviceSynchronize() != cudaSuccess) ADD_FAILURE() << "lip_pool kernels";
  return {dout.download(), ddx.download(), ddg.download()};
}

const LipCase kCases[] =
    {
        {3, 4, 8, 8, 2, 2, 0},   {2, 3, 9, 7, 3, 2, 1}, {2, 3, 7, 6, 3, 1, 1},
        {2, 3, 11, 10, 2, 3, 0}, {1, 3, 9, 9, 8, 4, 4}, {2, 3, 9, 8, 2, 2, 1},
        {9, 3, 12, 12, 2, 2, 0},  // 9 x 36 = 324 windows a channel: two passes of the block
};

TEST(KernelParityNn, LipPoolMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(45);
  std::uniform_real_distribution<float> gu(-3.f, 3.f);
  for (const LipCase& k : kCases)
    for (const Fill fill : {Fill::uniform, Fill::ties, Fill::special}) {
      const std::string what = k.str() + " fill " + std::to_string(int(fill));
      const PoolGeom g = make_pool_geom(k.c, k.h, k.w, k.k, k.k, k.s, k.s, k.p, k.p, false, false);
      std::vector<float> gamma(size_t(k.c));
      for (auto& v : gamma) v = gu(rng);
      gamma[0] = 0.f;  // average pooling
      const std::vector<float> x = make_input(size_t(k.n) * k.c * k.h * k.w, fill, rng),
                               dy = make_input(size_t(k.n) * k.c * g.OH * g.OW, Fill::uniform, rng);
      const LipRun got = run_device(k, g, gamma, x, dy);
      std::vector<float> y(dy.size(), std::nanf("")), dx(x.size(), std::nanf("")),
          dgm(gamma.size(), std::nanf(""));
      cpu::lip_pool_forward_generic(g, gamma.data(), x.data(), y.data(), k.n);
      cpu::lip_pool_backward_generic(g, gamma.data(), x.data(), y.data(), dy.data(), dx.data(),
                                     dgm.data(), k.n);
      expect_same_outputs(got.y, y, what);
      expect_same_outputs(got.dx, dx, what + " dx");
      for (size_t i = 0; i < dgm.size(); ++i) {
        if (!std::isfinite(dgm[i])) {  // NaN or an infinity: which one depends on the order
          EXPECT_FALSE(std::isfinite(got.dgamma[i])) << what << " dgamma " << i;
          continue;
        }
        EXPECT_NEAR(got.dgamma[i], dgm[i], 1e-5f * (1.f + std::fabs(dgm[i])))
            << what << " dgamma " << i;
      }
    }
}

TEST(KernelParityNn, LipPoolScaleGradientIsTheSameBitsUnderEverySchedule) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(46);
  const LipCase k{7, 3, 19, 17, 3, 2, 1};  // 7 x 90 = 630 windows a channel
  const PoolGeom g = make_pool_geom(k.c, k.h, k.w, k.k, k.k, k.s, k.s, k.p, k.p, false, false);
  std::vector<float> gamma = make_input(size_t(k.c), Fill::uniform, rng),
                     x = make_input(size_t(k.n) * k.c * k.h * k.w, Fill::uniform, rng),
                     dy = make_input(size_t(k.n) * k.c * g.OH * g.OW, Fill::uniform, rng);
  for (size_t i = 0; i < x.size(); ++i)  // magnitudes over several orders: rounding shows
    x[i] *= std::pow(10.f, float(int(i % 5) - 2));
  std::vector<std::vector<float>> runs;
  run_under_four_schedules(400,
                           [&](int) { runs.push_back(run_device(k, g, gamma, x, dy).dgamma); });
  for (size_t r = 1; r < runs.size(); ++r) expect_same_bits(runs[r], runs[0], "dgamma");
}

}  // namespace
#endif
