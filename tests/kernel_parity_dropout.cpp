// Kernel parity of dropout: kernels/dropout.cu against its CPU twin (src/cpu/dropout.cpp) on the same
// inputs. Written once for the real GPU (convpool_tests, skipped without a device) and the
// emulated target (convpool_emu_tests, under several thread schedules), as
// tests/kernel_parity.cpp. Outputs are poisoned (NaN) before the kernels run; backward kernels
// run both overwriting dx and accumulating into a random prefill, compared with the CPU
// accumulating into the same prefill.
// docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/dropout.h"
#include "kernels/dropout.cuh"
#include "kernel_parity_elementwise.h"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

// The step is read from device memory: changing it there, with the same launch arguments,
// changes the mask as the CPU's does.
TEST(KernelParityNn, DropoutMatchesCpuBitForBitWithTheStepReadFromTheDevice) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(34);
  const size_t n = kElems;
  const float p = 0.3f;
  const uint64_t seed = 0x5eed1234abcdull;
  const uint32_t layer = 7;
  const std::vector<float> x = wide_input(n, rng), dy = wide_input(n, rng),
                           prefill = make_input(n, Fill::uniform, rng);
  Dev<float> dx_in(x), ddy(dy);
  Dev<uint64_t> dstep(1);
  std::vector<float> first;
  for (const uint64_t step : {uint64_t(41), (uint64_t(1) << 33) + 5}) {
    dstep.upload({step});
    Dev<float> dy_out(n);
    {
      GRID_CAP(2);
      // An offset slice of a larger batch (a data-parallel rank's): keyed by global index.
      cuda::dropout_forward(dx_in.get(), dy_out.get(), n, p, seed, layer, dstep.get(), nullptr,
                            step * 7);
    }
    CHECK_CUDA(cudaDeviceSynchronize());
    std::vector<float> y(n);
    cpu::dropout_forward(x.data(), y.data(), n, p, seed, layer, step, step * 7);
    const auto got = dy_out.download();
    expect_same_bits(got, y, "dropout y, step " + std::to_string(step));
    size_t dropped = 0, finite = 0;
    for (size_t i = 0; i < n; ++i)
      if (std::isfinite(x[i]) && x[i] != 0.f) ++finite, dropped += got[i] == 0.f;
    EXPECT_NEAR(double(dropped) / finite, p, 0.05) << "step " << step;
    if (first.empty())
      first = got;
    else
      EXPECT_NE(std::memcmp(first.data(), got.data(), n * 4), 0) << "the step did not matter";
    check_backward(
        prefill,
        [&](float* d, bool acc) {
          cuda::dropout_backward(ddy.get(), d, n, p, seed, layer, dstep.get(), acc, nullptr,
                                 step * 7);
        },
        [&](float* h, bool acc) {
          cpu::dropout_backward(dy.data(), h, n, p, seed, layer, step, acc, step * 7);
        },
        "dropout dx, step " + std::to_string(step));
  }
}

}  // namespace
#endif
