// Kernel parity of the bf16 and fp16 conversions: kernels/reduced_precision.cu (CUDA's own
// __float2bfloat16_rn and __float2half_rn on a GPU; the emulated target's __nv_bfloat16 and
// __half) against the CPU's (src/cpu/reduced_precision.cpp), bit for bit on both, since each
// side rounds exactly: every 16-bit pattern to float, and random float patterns with every
// exponent's edges, ties and NaN to each format; outputs poisoned before the kernels run.
// Written once for the real GPU (convpool_tests, skipped without a device) and the emulated
// target (convpool_emu_tests); docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "cpu/reduced_precision.h"
#include "kernel_parity_elementwise.h"
#include "kernels/reduced_precision.cuh"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

std::vector<float> pattern_floats() {
  std::mt19937_64 rng(61);
  std::vector<float> v;
  for (uint32_t e = 0; e < 256; ++e)
    for (uint32_t m : {0u, 1u, 0x7fffffu, 0x8000u, 0x7fffu, 0x18000u, 0x1000u, 0xfffu, 0x3000u})
      for (uint32_t s : {0u, 1u}) {
        const uint32_t b = (s << 31) | (e << 23) | m;
        float f;
        std::memcpy(&f, &b, 4);
        v.push_back(f);
      }
  for (int i = 0; i < 20000; ++i) {
    const uint32_t b = uint32_t(rng());
    float f;
    std::memcpy(&f, &b, 4);
    v.push_back(f);
  }
  return v;
}

std::vector<uint16_t> every_pattern() {
  std::vector<uint16_t> v(0x10000u);
  for (uint32_t p = 0; p < 0x10000u; ++p) v[p] = uint16_t(p);
  return v;
}

void expect_same(const std::vector<uint16_t>& got, const std::vector<uint16_t>& want,
                 const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << what << " [" << i << "]";
}

TEST(KernelParityNn, Bf16AndHalfConversionsMatchCpu) {
  REQUIRE_DEVICE();
  const std::vector<float> x = pattern_floats();
  const std::vector<uint16_t> p = every_pattern();
  Dev<float> dx(x), dback(p.size());
  Dev<uint16_t> dp(p), db(x.size()), dh(x.size());
  for (const bool bf16 : {true, false}) {
    dback.poison();  // all bits set: a pattern neither conversion gives
    {
      GRID_CAP(2);  // grid-stride second passes
      if (bf16) {
        cuda::floats_to_bf16(dx.get(), db.get(), x.size(), nullptr);
        cuda::bf16_to_floats(dp.get(), dback.get(), p.size(), nullptr);
      } else {
        cuda::floats_to_half(dx.get(), dh.get(), x.size(), nullptr);
        cuda::half_to_floats(dp.get(), dback.get(), p.size(), nullptr);
      }
    }
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<uint16_t> want(x.size());
    std::vector<float> want_back(p.size());
    if (bf16) {
      cpu::floats_to_bf16(x.data(), want.data(), x.size());
      cpu::bf16_to_floats(p.data(), want_back.data(), p.size());
    } else {
      cpu::floats_to_half(x.data(), want.data(), x.size());
      cpu::half_to_floats(p.data(), want_back.data(), p.size());
    }
    expect_same((bf16 ? db : dh).download(), want, bf16 ? "to bf16" : "to fp16");
    expect_same_bits(dback.download(), want_back, bf16 ? "from bf16" : "from fp16");
  }
}

}  // namespace
#endif
