// Kernel parity of concat: kernels/concat.cu against its CPU twin (src/cpu/concat.cpp) on the same
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

#include "cpu/concat.h"
#include "kernels/concat.cuh"
#include "kernel_parity_elementwise.h"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

// Two inputs (5 and 3 channels) into one poisoned 8-channel tensor: every element written,
// each where the CPU puts it; backward takes each slice back.
TEST(KernelParityNn, ConcatForwardAndBackwardMatchCpuBitForBit) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(35);
  const int n = 3, c0 = 5, c1 = 3, ct = c0 + c1, plane = 37;  // 555 and 333 elements
  const std::vector<float> x0 = make_input(size_t(n) * c0 * plane, Fill::special, rng),
                           x1 = make_input(size_t(n) * c1 * plane, Fill::special, rng),
                           dy = make_input(size_t(n) * ct * plane, Fill::special, rng);
  std::vector<float> y(size_t(n) * ct * plane);
  cpu::concat_forward(n, c0, ct, 0, plane, x0.data(), y.data());
  cpu::concat_forward(n, c1, ct, c0, plane, x1.data(), y.data());
  Dev<float> dx0(x0), dx1(x1), ddy(dy), dout(y.size());
  {
    GRID_CAP(2);
    cuda::concat_forward(n, c0, ct, 0, plane, dx0.get(), dout.get(), nullptr);
    cuda::concat_forward(n, c1, ct, c0, plane, dx1.get(), dout.get(), nullptr);
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  expect_same_bits(dout.download(), y, "concat y");
  for (const int input : {0, 1}) {  // (no structured bindings: clang 14 cannot capture them)
    const int c = input ? c1 : c0, off = input ? c0 : 0;
    const std::vector<float> prefill = make_input(size_t(n) * c * plane, Fill::uniform, rng);
    check_backward(
        prefill,
        [&](float* d, bool acc) {
          cuda::concat_backward(n, c, ct, off, plane, ddy.get(), d, acc, nullptr);
        },
        [&](float* h, bool acc) { cpu::concat_backward(n, c, ct, off, plane, dy.data(), h, acc); },
        "concat dx at channel " + std::to_string(off));
  }
}

}  // namespace
#endif
