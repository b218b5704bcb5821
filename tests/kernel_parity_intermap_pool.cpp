// Kernel parity of intermap_pool: kernels/intermap_pool.cu against its CPU twin
// (src/cpu/intermap_pool.cpp) on the same inputs, bit for bit, for both modes, on uniform
// values, exact ties and NaN/+-inf; outputs poisoned (NaN) before the kernels run. Written once
// for the real GPU (convpool_tests, skipped without a device) and the emulated target
// (convpool_emu_tests, under several thread schedules); docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cpu/intermap_pool.h"
#include "kernels/intermap_pool.cuh"
#include "kernel_parity_elementwise.h"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

TEST(KernelParityNn, InterMapPoolMatchesCpuBitForBit) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(41);
  struct Case {
    int n, c, h, w, groups;
  };
  for (const Case& k : {Case{3, 12, 7, 5, 3}, Case{2, 8, 17, 19, 4}, Case{4, 6, 1, 1, 2},
                        Case{2, 5, 3, 3, 5}})
    for (const InterMapMode mode : {InterMapMode::max, InterMapMode::mean})
      for (const Fill fill : {Fill::uniform, Fill::ties, Fill::special}) {
        const std::string what = "intermap_pool groups=" + std::to_string(k.groups) +
                                 (mode == InterMapMode::max ? " max" : " mean") + " fill " +
                                 std::to_string(int(fill));
        const size_t hw = size_t(k.h) * k.w, in = size_t(k.n) * k.c * hw,
                     out = in / size_t(k.groups);
        const std::vector<float> x = make_input(in, fill, rng), dy = wide_input(out, rng);
        Dev<float> dx_in(x), ddy(dy), dy_out(out), ddx(in);  // outputs poisoned
        {
          GRID_CAP(2);  // grid-stride second passes
          cuda::intermap_pool_forward(mode, k.groups, dx_in.get(), dy_out.get(), k.n, k.c, hw,
                                      nullptr);
          cuda::intermap_pool_backward(mode, k.groups, dx_in.get(), ddy.get(), ddx.get(), k.n,
                                       k.c, hw, nullptr);
        }
        CHECK_CUDA(cudaDeviceSynchronize());
        std::vector<float> y(out, std::nanf("")), dx(in, std::nanf(""));
        cpu::intermap_pool_forward(mode, k.groups, x.data(), y.data(), k.n, k.c, hw);
        cpu::intermap_pool_backward(mode, k.groups, x.data(), dy.data(), dx.data(), k.n, k.c, hw);
        expect_same_bits(dy_out.download(), y, what);
        expect_same_bits(ddx.download(), dx, what + " dx");
      }
}

}  // namespace
#endif
