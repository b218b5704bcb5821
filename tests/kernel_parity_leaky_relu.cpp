// Kernel parity of leaky_relu: kernels/leaky_relu.cu against its CPU twin (src/cpu/leaky_relu.cpp) on the same
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

#include "cpu/leaky_relu.h"
#include "kernels/leaky_relu.cuh"
#include "kernel_parity_elementwise.h"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

TEST(KernelParityNn, LeakyReluForwardAndBackwardMatchCpuBitForBit) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(33);
  const size_t n = kElems;
  const float slope = 0.1f;
  const std::vector<float> x = wide_input(n, rng), dy = wide_input(n, rng),
                           prefill = make_input(n, Fill::uniform, rng);
  Dev<float> dx_in(x), ddy(dy), dy_out(n);
  {
    GRID_CAP(2);
    cuda::leaky_relu_forward(dx_in.get(), dy_out.get(), n, slope, nullptr);
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<float> y(n);
  cpu::leaky_relu_forward(x.data(), y.data(), n, slope);
  expect_same_bits(dy_out.download(), y, "leaky_relu");
  check_backward(
      prefill,
      [&](float* d, bool acc) {
        cuda::leaky_relu_backward(dx_in.get(), ddy.get(), d, n, slope, acc, nullptr);
      },
      [&](float* h, bool acc) { cpu::leaky_relu_backward(x.data(), dy.data(), h, n, slope, acc); },
      "leaky_relu dx");
}

}  // namespace
#endif
