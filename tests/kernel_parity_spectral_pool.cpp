// Kernel parity of spectral_pool: kernels/spectral_pool.cu against its CPU twin
// (src/cpu/spectral_pool.cpp) on the same inputs: the output and the input gradient bit for
// bit on the emulated target (within rounding on a GPU, whose compiler contracts products
// into FMAs), for sizes odd and even, square and not, down to 1 x 1 and at the input's own
// size, enough planes for the CPU's threads, on uniform values, ties and NaN/+-inf; outputs
// poisoned (NaN) before the kernels run, and the same bits under every schedule.
// Written once for the real GPU (convpool_tests, skipped without a device) and the emulated
// target (convpool_emu_tests); docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cpu/spectral_pool.h"
#include "kernel_parity_elementwise.h"
#include "kernels/spectral_pool.cuh"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

struct SpectralCase {
  size_t planes;
  int h_in, w_in, h_out, w_out;
  std::string str() const {
    return "spectral_pool " + std::to_string(h_in) + "x" + std::to_string(w_in) + " -> " +
           std::to_string(h_out) + "x" + std::to_string(w_out) + " x" + std::to_string(planes);
  }
};

std::pair<std::vector<float>, std::vector<float>> run_device(const SpectralCase& k,
                                                             const std::vector<float>& x,
                                                             const std::vector<float>& dy) {
  Dev<float> dxin(x), ddy(dy), dout(dy.size()), ddx(x.size()),
      scratch(spectral_pool_scratch_floats(k.planes, k.h_in, k.w_in, k.h_out, k.w_out));
  {
    GRID_CAP(2);  // grid-stride second passes
    cuda::spectral_pool_forward(dxin.get(), dout.get(), k.planes, k.h_in, k.w_in, k.h_out, k.w_out,
                                scratch.get(), nullptr);
    cuda::spectral_pool_backward(ddy.get(), ddx.get(), k.planes, k.h_in, k.w_in, k.h_out, k.w_out,
                                 scratch.get(), nullptr);
  }
  if (cudaDeviceSynchronize() != cudaSuccess) ADD_FAILURE() << "spectral_pool kernels";
  return {dout.download(), ddx.download()};
}

const SpectralCase kCases[] =
    {
        {3, 6, 6, 3, 3}, {2, 7, 5, 4, 3},   {4, 8, 8, 4, 4},
        {2, 5, 4, 1, 1}, {2, 9, 9, 9, 9},   {5, 16, 12, 11, 7},
        {1, 1, 1, 1, 1}, {3, 3, 40, 2, 20}, {64, 32, 32, 16, 16},  // the CPU's threads
};

TEST(KernelParityNn, SpectralPoolMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(57);
  for (const SpectralCase& k : kCases)
    for (const Fill fill : {Fill::uniform, Fill::ties, Fill::special}) {
      const std::string what = k.str() + " fill " + std::to_string(int(fill));
      const std::vector<float> x = make_input(k.planes * k.h_in * k.w_in, fill, rng),
                               dy = make_input(k.planes * k.h_out * k.w_out, Fill::uniform, rng);
      const auto [y, dx] = run_device(k, x, dy);
      std::vector<float> want_y(dy.size(), std::nanf("")), want_dx(x.size(), std::nanf("")),
          scratch(spectral_pool_scratch_floats(k.planes, k.h_in, k.w_in, k.h_out, k.w_out),
                  std::nanf(""));
      cpu::spectral_pool_forward(x.data(), want_y.data(), k.planes, k.h_in, k.w_in, k.h_out,
                                 k.w_out, scratch.data());
      cpu::spectral_pool_backward(dy.data(), want_dx.data(), k.planes, k.h_in, k.w_in, k.h_out,
                                  k.w_out, scratch.data());
      expect_same_outputs(y, want_y, what);
      expect_same_outputs(dx, want_dx, what + " dx");
    }
}

TEST(KernelParityNn, SpectralPoolIsTheSameBitsUnderEverySchedule) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(58);
  const SpectralCase k{6, 10, 9, 5, 4};
  const std::vector<float> x = make_input(k.planes * k.h_in * k.w_in, Fill::uniform, rng),
                           dy = make_input(k.planes * k.h_out * k.w_out, Fill::uniform, rng);
  std::vector<std::pair<std::vector<float>, std::vector<float>>> runs;
  run_under_four_schedules(330, [&](int) { runs.push_back(run_device(k, x, dy)); });
  for (size_t r = 1; r < runs.size(); ++r) {
    expect_same_bits(runs[r].first, runs[0].first, "y");
    expect_same_bits(runs[r].second, runs[0].second, "dx");
  }
}

}  // namespace
#endif
