// Kernel parity of relu: kernels/relu.cu against the shared math of
// kernels/activation_math.cuh on the same inputs (NaN, infinities, exact zeros). Written once
// for the real GPU (convpool_tests, skipped without a device) and the emulated target
// (convpool_emu_tests, under several thread schedules), as tests/kernel_parity.cpp.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/activation_math.cuh"
#include "kernels/relu.cuh"
#include "kernel_parity.h"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

TEST(KernelParity, ReluForwardAndBackwardMatchCpuBitForBit) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(11);
  const size_t n = 3001;  // 2 capped blocks of 256 threads: every thread takes several passes
  const std::vector<float> x = make_input(n, Fill::special, rng),
                           dy = make_input(n, Fill::uniform, rng);
  std::vector<float> y(n), dx(n);
  for (size_t i = 0; i < n; ++i) y[i] = relu_forward(x[i]), dx[i] = relu_backward(y[i], dy[i]);
  Dev<float> dx_in(x), ddy(dy), dy_out(n), ddx(n);
  {
    GRID_CAP(2);
    cuda::relu_forward(dx_in.get(), dy_out.get(), n, nullptr);
    cuda::relu_backward(dy_out.get(), ddy.get(), ddx.get(), n, nullptr);
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  const auto gy = dy_out.download(), gdx = ddx.download();
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(std::memcmp(&gy[i], &y[i], 4), 0) << "y[" << i << "] of x " << x[i];
    ASSERT_EQ(std::memcmp(&gdx[i], &dx[i], 4), 0) << "dx[" << i << "]";
  }
}

}  // namespace
#endif
