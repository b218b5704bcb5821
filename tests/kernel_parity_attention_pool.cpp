// Kernel parity of attention_pool: kernels/attention_pool.cu against its CPU twin
// (src/cpu/attention_pool.cpp) on the same inputs: the output, the attention, the input
// gradient and the weights' gradient bit for bit on the emulated target (within rounding on a
// GPU: its expf differs in the last bits and its compiler contracts products into FMAs), with
// 1 to 3 heads, on planes of 1 to 64 positions, on uniform values, exact ties and NaN/+-inf;
// outputs poisoned (NaN) before the kernels run. Written once for the real GPU (convpool_tests,
// skipped without a device) and the emulated target (convpool_emu_tests); docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cpu/attention_pool.h"
#include "kernel_parity_elementwise.h"
#include "kernels/attention_pool.cuh"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

struct ApCase {
  int n, c, hw, heads;
  std::string str() const {
    return "attention_pool heads=" + std::to_string(heads) + " on " + std::to_string(c) + "x" +
           std::to_string(hw) + " x" + std::to_string(n);
  }
};

struct ApRun {
  std::vector<float> y, a, dx, dw;
};

ApRun run_device(const ApCase& k, const std::vector<float>& w, const std::vector<float>& x,
                 const std::vector<float>& dy) {
  const size_t rows = size_t(k.n) * k.heads * k.hw;
  Dev<float> dwt(w), dxin(x), ddy(dy), dout(dy.size()), da(rows), ddx(x.size()), ddw(w.size()),
      scratch(attention_pool_scratch_floats(k.n, k.heads, k.c, k.hw));
  {
    GRID_CAP(2);  // grid-stride second passes
    cuda::attention_pool_forward(dwt.get(), k.heads, dxin.get(), dout.get(), da.get(), k.n, k.c,
                                 k.hw, nullptr);
    cuda::attention_pool_backward(dwt.get(), k.heads, dxin.get(), da.get(), ddy.get(), ddx.get(),
                                  ddw.get(), k.n, k.c, k.hw, scratch.get(), nullptr);
  }
  if (cudaDeviceSynchronize() != cudaSuccess) ADD_FAILURE() << "attention_pool kernels";
  return {dout.download(), da.download(), ddx.download(), ddw.download()};
}

const ApCase kCases[] = {
    {3, 4, 64, 1},  {2, 5, 16, 2}, {4, 3, 1, 1},
    {2, 11, 49, 3}, {9, 20, 9, 2},  // 360 outputs, 324 scores, 3240 inputs: grid-stride passes
    {8, 40, 64, 2},                 // 40,960 terms: the CPU's threads (images; dw by channels)
};

TEST(KernelParityNn, AttentionPoolMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(49);
  for (const ApCase& k : kCases)
    for (const Fill fill : {Fill::uniform, Fill::ties, Fill::special}) {
      const std::string what = k.str() + " fill " + std::to_string(int(fill));
      std::vector<float> w = make_input(size_t(k.heads) * k.c, Fill::uniform, rng);
      for (auto& v : w) v *= 3.f;  // peaked attention
      const std::vector<float> x = make_input(size_t(k.n) * k.c * k.hw, fill, rng),
                               dy = make_input(size_t(k.n) * k.heads * k.c, Fill::uniform, rng);
      const ApRun got = run_device(k, w, x, dy);
      const size_t rows = size_t(k.n) * k.heads * k.hw;
      std::vector<float> y(dy.size(), std::nanf("")), a(rows, std::nanf("")),
          dx(x.size(), std::nanf("")), dw(w.size(), std::nanf("")),
          scratch(attention_pool_scratch_floats(k.n, k.heads, k.c, k.hw), std::nanf(""));
      cpu::attention_pool_forward(w.data(), k.heads, x.data(), y.data(), a.data(), k.n, k.c, k.hw,
                                  scratch.data());
      cpu::attention_pool_backward(w.data(), k.heads, x.data(), a.data(), dy.data(), dx.data(),
                                   dw.data(), k.n, k.c, k.hw, scratch.data());
      expect_same_outputs(got.y, y, what);
      expect_same_outputs(got.a, a, what + " attention");
      expect_same_outputs(got.dx, dx, what + " dx");
      expect_same_outputs(got.dw, dw, what + " dw");
      if (fill == Fill::uniform)  // finite inputs: each head's attention sums to 1
        for (size_t r = 0; r < rows; r += k.hw) {
          float s = 0.f;
          for (int i = 0; i < k.hw; ++i) s += a[r + i];
          EXPECT_NEAR(s, 1.f, 1e-5f) << what;
        }
    }
}

TEST(KernelParityNn, AttentionPoolWeightGradientIsTheSameBitsUnderEverySchedule) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(50);
  const ApCase k{7, 40, 16, 2};
  const std::vector<float> w = make_input(size_t(k.heads) * k.c, Fill::uniform, rng),
                           x = make_input(size_t(k.n) * k.c * k.hw, Fill::uniform, rng),
                           dy = make_input(size_t(k.n) * k.heads * k.c, Fill::uniform, rng);
  std::vector<std::vector<float>> runs;
  run_under_four_schedules(320, [&](int) { runs.push_back(run_device(k, w, x, dy).dw); });
  for (size_t r = 1; r < runs.size(); ++r) expect_same_bits(runs[r], runs[0], "dw");
}

}  // namespace
#endif
