// Kernel parity of spp_pool: kernels/spp_pool.cu against its CPU twin (src/cpu/spp_pool.cpp)
// on the same inputs: the output, the kept indices and the input gradient bit for bit on the
// emulated target and a GPU alike (no products: maxima, sums in element order, dy over the
// area), for max and mean, planes the levels divide and do not, levels finer than the plane,
// enough planes for the CPU's threads, on uniform values, ties and NaN/+-inf; outputs
// poisoned (NaN) before the kernels run, and the same bits under every schedule.
// Written once for the real GPU (convpool_tests, skipped without a device) and the emulated
// target (convpool_emu_tests); docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cpu/spp_pool.h"
#include "kernel_parity_elementwise.h"
#include "kernels/spp_pool.cuh"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

struct SppCase {
  int n, c, h, w;
  std::vector<int> cells;
  bool max;
  SppLevels levels() const {
    SppLevels s;
    for (int L : cells) s.cells[s.count++] = L;
    s.max = max;
    return s;
  }
  std::string str() const {
    std::string l;
    for (int L : cells) l += std::to_string(L) + ",";
    return std::string("spp_pool ") + (max ? "max" : "avg") + " levels=" + l + " on " +
           std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w) + " x" +
           std::to_string(n);
  }
};

struct SppRun {
  std::vector<float> y, arg, dx;
};

SppRun run_device(const SppCase& k, const std::vector<float>& x, const std::vector<float>& dy) {
  const SppLevels s = k.levels();
  Dev<float> dxin(x), ddy(dy), dout(dy.size()), darg(dy.size()), ddx(x.size());
  {
    GRID_CAP(2);  // grid-stride second passes
    cuda::spp_pool_forward(s, dxin.get(), dout.get(), darg.get(), k.n, k.c, k.h, k.w, nullptr);
    cuda::spp_pool_backward(s, darg.get(), ddy.get(), ddx.get(), k.n, k.c, k.h, k.w, nullptr);
  }
  if (cudaDeviceSynchronize() != cudaSuccess) ADD_FAILURE() << "spp_pool kernels";
  return {dout.download(), darg.download(), ddx.download()};
}

const SppCase kCases[] = {
    {2, 3, 8, 8, {1, 2, 4}, true},     {2, 3, 8, 8, {1, 2, 4}, false},
    {3, 2, 7, 5, {1, 3}, true},        {3, 2, 7, 5, {1, 3}, false},
    {2, 2, 3, 2, {2, 4}, true},        {2, 2, 3, 2, {2, 4}, false},
    {1, 1, 1, 1, {1, 16}, true},       {4, 5, 13, 9, {6, 5, 1}, false},
    {64, 16, 16, 16, {1, 2, 4}, true},  // the CPU's threads
};

TEST(KernelParityNn, SppPoolMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(59);
  for (const SppCase& k : kCases)
    for (const Fill fill : {Fill::uniform, Fill::ties, Fill::special}) {
      const std::string what = k.str() + " fill " + std::to_string(int(fill));
      const SppLevels s = k.levels();
      const size_t outs = size_t(k.n) * k.c * spp_features_per_channel(s);
      const std::vector<float> x = make_input(size_t(k.n) * k.c * k.h * k.w, fill, rng),
                               dy = make_input(outs, Fill::uniform, rng);
      const SppRun got = run_device(k, x, dy);
      std::vector<float> y(outs, std::nanf("")), arg(outs, std::nanf("")),
          dx(x.size(), std::nanf(""));
      cpu::spp_pool_forward(s, x.data(), y.data(), arg.data(), k.n, k.c, k.h, k.w);
      cpu::spp_pool_backward(s, arg.data(), dy.data(), dx.data(), k.n, k.c, k.h, k.w);
      expect_same_bits(got.y, y, what);
      expect_same_bits(got.arg, arg, what + " arg");
      expect_same_bits(got.dx, dx, what + " dx");
    }
}

TEST(KernelParityNn, SppPoolIsTheSameBitsUnderEverySchedule) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(60);
  for (const bool max : {true, false}) {
    const SppCase k{3, 4, 9, 7, {1, 2, 3}, max};
    const size_t outs = size_t(k.n) * k.c * spp_features_per_channel(k.levels());
    const std::vector<float> x = make_input(size_t(k.n) * k.c * k.h * k.w, Fill::ties, rng),
                             dy = make_input(outs, Fill::uniform, rng);
    std::vector<SppRun> runs;
    run_under_four_schedules(340, [&](int) { runs.push_back(run_device(k, x, dy)); });
    for (size_t r = 1; r < runs.size(); ++r) {
      expect_same_bits(runs[r].y, runs[0].y, k.str());
      expect_same_bits(runs[r].dx, runs[0].dx, k.str() + " dx");
    }
  }
}

}  // namespace
#endif
