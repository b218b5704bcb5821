// Kernel parity of gem_pool: kernels/gem_pool.cu against its CPU twin (src/cpu/gem_pool.cpp)
// on the same inputs: the output, the input gradient and the exponent's gradient bit for bit on
// the emulated target (within rounding on a GPU, whose compiler contracts products into FMAs),
// with one exponent and one per channel, on planes of 1 to 1,500 positions (one or many planes
// a CPU block, and planes in runs), enough planes for the CPU's threads, on uniform values
// (many below eps), non-negative values, exact ties and NaN/+-inf; outputs poisoned (NaN)
// before the kernels run.
// Written once for the real GPU (convpool_tests, skipped without a device) and the emulated
// target (convpool_emu_tests); docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cpu/gem_pool.h"
#include "kernel_parity_elementwise.h"
#include "kernels/gem_pool.cuh"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

struct GemCase {
  int n, c, hw;
  bool shared;
  float eps;
  std::string str() const {
    return "gem_pool" + std::string(shared ? "" : " shared=0") + " eps=" + std::to_string(eps) +
           " on " + std::to_string(c) + "x" + std::to_string(hw) + " x" + std::to_string(n);
  }
};

struct GemRun {
  std::vector<float> y, dx, dtheta;
};

GemRun run_device(const GemCase& k, const std::vector<float>& p, const std::vector<float>& x,
                  const std::vector<float>& dy) {
  Dev<float> dpar(p), dxin(x), ddy(dy), dout(dy.size()), ddx(x.size()), ddp(p.size()),
      scratch(gem_pool_scratch_floats(k.n, k.c));
  {
    GRID_CAP(2);  // grid-stride second passes
    cuda::gem_pool_forward(dpar.get(), k.shared, k.eps, dxin.get(), dout.get(), k.n, k.c, k.hw,
                           nullptr);
    cuda::gem_pool_backward(dpar.get(), k.shared, k.eps, dxin.get(), dout.get(), ddy.get(),
                            ddx.get(), ddp.get(), k.n, k.c, k.hw, scratch.get(), nullptr);
  }
  if (cudaDeviceSynchronize() != cudaSuccess) ADD_FAILURE() << "gem_pool kernels";
  return {dout.download(), ddx.download(), ddp.download()};
}

// A sum over many planes: the same bits on the emulated target, within a looser rounding on a
// GPU.
void expect_same_sums(const std::vector<float>& got, const std::vector<float>& want,
                      const std::string& what) {
#ifdef CONVPOOL_EMULATED_CUDA
  expect_same_bits(got, want, what);
#else
  expect_match(got, want, 1e-4, what);
#endif
}

const GemCase kCases[] = {
    {3, 4, 64, true, 1e-6f},  {2, 5, 16, false, 1e-6f},   {4, 3, 1, false, 1e-6f},
    {2, 3, 49, true, 0.25f},  {9, 70, 4, false, 1e-6f},    // 630 planes: grid-stride passes
    {1, 600, 3, true, 1e-6f}, {2, 3, 1500, false, 1e-6f},  // planes in runs of the CPU's block
    {4, 8, 700, true, 1e-6f},                              // 22,400 elements: the CPU's threads
};

TEST(KernelParityNn, GemPoolMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(47);
  std::uniform_real_distribution<float> pu(-2.f, 2.f);  // p from 1.14 to 8.4
  for (const GemCase& k : kCases)
    for (const Fill fill : {Fill::uniform, Fill::non_negative, Fill::ties, Fill::special}) {
      const std::string what = k.str() + " fill " + std::to_string(int(fill));
      std::vector<float> p(k.shared ? 1 : k.c);
      for (auto& v : p) v = pu(rng);
      const std::vector<float> x = make_input(size_t(k.n) * k.c * k.hw, fill, rng),
                               dy = make_input(size_t(k.n) * k.c, Fill::uniform, rng);
      const GemRun got = run_device(k, p, x, dy);
      std::vector<float> y(dy.size(), std::nanf("")), dx(x.size(), std::nanf("")),
          dp(p.size(), std::nanf("")), scratch(gem_pool_scratch_floats(k.n, k.c), std::nanf(""));
      cpu::gem_pool_forward(p.data(), k.shared, k.eps, x.data(), y.data(), k.n, k.c, k.hw);
      cpu::gem_pool_backward(p.data(), k.shared, k.eps, x.data(), y.data(), dy.data(), dx.data(),
                             dp.data(), k.n, k.c, k.hw, scratch.data());
      expect_same_outputs(got.y, y, what);
      expect_same_outputs(got.dx, dx, what + " dx");
      expect_same_sums(got.dtheta, dp, what + " dtheta");
    }
}

TEST(KernelParityNn, GemPoolExponentGradientIsTheSameBitsUnderEverySchedule) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(48);
  const GemCase k{7, 90, 9, true, 1e-6f};  // 630 planes
  const std::vector<float> p = {gem_parameter(2.5f)},
                           x = make_input(size_t(k.n) * k.c * k.hw, Fill::uniform, rng),
                           dy = make_input(size_t(k.n) * k.c, Fill::uniform, rng);
  std::vector<std::vector<float>> runs;
  run_under_four_schedules(310, [&](int) { runs.push_back(run_device(k, p, x, dy).dtheta); });
  for (size_t r = 1; r < runs.size(); ++r) expect_same_bits(runs[r], runs[0], "dtheta");
}

}  // namespace
#endif
