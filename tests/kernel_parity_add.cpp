// Kernel parity of add: kernels/add.cu against its CPU twin (src/cpu/add.cpp) on the same
// inputs. Written once for the real GPU (convpool_tests, skipped without a device) and the
// emulated target (convpool_emu_tests, under several thread schedules), as
// tests/kernel_parity.cpp. Outputs are poisoned (NaN) before the kernels run.
// docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/add.h"
#include "kernels/add.cuh"
#include "kernel_parity_elementwise.h"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

TEST(KernelParityNn, AddMatchesCpuBitForBit) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(31);
  const size_t n = kElems;
  const std::vector<float> a = wide_input(n, rng), b = wide_input(n, rng);
  Dev<float> da(a), db(b), dy(n);
  dy.poison();
  {
    GRID_CAP(2);
    cuda::add_forward(da.get(), db.get(), dy.get(), n, nullptr);
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<float> y(n);
  cpu::add_forward(a.data(), b.data(), y.data(), n);
  expect_same_bits(dy.download(), y, "add");
}

}  // namespace
#endif
