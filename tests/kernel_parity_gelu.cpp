// Kernel parity of gelu: kernels/gelu.cu against its CPU twin (src/cpu/gelu.cpp) on the same
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

#include "cpu/gelu.h"
#include "kernels/gelu.cuh"
#include "kernel_parity_elementwise.h"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

TEST(KernelParityNn, GeluForwardAndBackwardMatchCpuBitForBit) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(32);
  const size_t n = kElems;
  const std::vector<float> x = wide_input(n, rng), dy = wide_input(n, rng),
                           prefill = make_input(n, Fill::uniform, rng);
  Dev<float> dx_in(x), ddy(dy), dy_out(n);
  {
    GRID_CAP(2);
    cuda::gelu_forward(dx_in.get(), dy_out.get(), n, nullptr);
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<float> y(n);
  cpu::gelu_forward(x.data(), y.data(), n);
  // The emulator calls the host's erff and expf, as the CPU does. A GPU's differ in the last
  // bits: there the comparison is within a tolerance.
#ifdef CONVPOOL_EMULATED_CUDA
  expect_same_bits(dy_out.download(), y, "gelu");
  check_backward(
      prefill,
      [&](float* d, bool acc) { cuda::gelu_backward(dx_in.get(), ddy.get(), d, n, acc, nullptr); },
      [&](float* h, bool acc) { cpu::gelu_backward(x.data(), dy.data(), h, n, acc); }, "gelu dx");
#else
  expect_match(dy_out.download(), y, 1e-6, "gelu");
  for (bool acc : {false, true}) {
    std::vector<float> want = prefill;
    cpu::gelu_backward(x.data(), dy.data(), want.data(), n, acc);
    Dev<float> ddx(prefill);
    if (!acc) ddx.poison();
    cuda::gelu_backward(dx_in.get(), ddy.get(), ddx.get(), n, acc, nullptr);
    CHECK_CUDA(cudaDeviceSynchronize());
    expect_match(ddx.download(), want, 1e-6, acc ? "gelu dx (accumulate)" : "gelu dx");
  }
#endif
}

}  // namespace
#endif
