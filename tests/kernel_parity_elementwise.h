// What the element-wise kernel parity tests share (add, scale, gelu, leaky_relu, dropout,
// concat): bit comparison, wide inputs, and a backward run both overwriting and accumulating.
#pragma once
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernel_parity.h"

namespace convpool::kernel_test {

// Same bits everywhere (NaN payloads aside: any NaN matches a NaN).
inline void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want,
                      const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) && std::isnan(got[i])) continue;
    ASSERT_EQ(std::memcmp(&got[i], &want[i], 4), 0)
        << what << "[" << i << "]: got " << got[i] << ", CPU " << want[i];
  }
}

// The CPU's bits on the emulated target (the host's expf, no contraction into FMAs); within
// rounding on a GPU, whose expf differs in the last bits and whose compiler contracts.
inline void expect_same_outputs(const std::vector<float>& got, const std::vector<float>& want,
                                const std::string& what) {
#ifdef CONVPOOL_EMULATED_CUDA
  expect_same_bits(got, want, what);
#else
  expect_match(got, want, 1e-5, what);
#endif
}

// Values for the element-wise ops: every fourth one from `special` (NaN, +-inf, exact
// -1/0/1/2), the rest uniform in [-6, 6], so GELU's erf and exp see their whole range.
inline std::vector<float> wide_input(size_t n, std::mt19937_64& rng) {
  std::vector<float> v = make_input(n, Fill::special, rng);
  std::uniform_real_distribution<float> u(-6.f, 6.f);
  for (size_t i = 0; i < n; ++i)
    if (i % 4) v[i] = u(rng);
  return v;
}

constexpr size_t kElems = 3001;  // 2 capped blocks of 256 threads: several passes each

// A backward launcher run twice, overwriting a poisoned dx and accumulating into `prefill`;
// `cpu` does the same on the host. Bit for bit.
template <class Gpu, class Cpu>
void check_backward(const std::vector<float>& prefill, Gpu gpu, Cpu cpu, const std::string& what) {
  for (bool accumulate : {false, true}) {
    std::vector<float> want = prefill;
    cpu(want.data(), accumulate);
    Dev<float> ddx(prefill.size());
    if (accumulate) ddx.upload(prefill);
    {
      GRID_CAP(2);
      gpu(ddx.get(), accumulate);
    }
    CHECK_CUDA(cudaDeviceSynchronize());
    expect_same_bits(ddx.download(), want, what + (accumulate ? " (accumulate)" : ""));
  }
}

}  // namespace convpool::kernel_test
#endif
