// Kernel parity of scale: kernels/scale.cu against its CPU twin (src/cpu/scale.cpp) on the same
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

#include "cpu/scale.h"
#include "kernels/scale.cuh"
#include "kernel_parity_elementwise.h"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

TEST(KernelParityNn, ScaledCopyMatchesCpuBitForBit) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(30);
  const size_t n = kElems;
  const std::vector<float> a = wide_input(n, rng), prefill = make_input(n, Fill::uniform, rng);
  Dev<float> da(a);
  const float scale = -0.375f;
  check_backward(
      prefill, [&](float* d, bool acc) { cuda::scaled_copy(da.get(), d, n, scale, acc, nullptr); },
      [&](float* h, bool acc) { cpu::scaled_copy(a.data(), h, n, scale, acc); }, "scaled_copy");
}

}  // namespace
#endif
