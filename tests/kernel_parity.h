// Shared by the three files of the kernel parity suite (tests/kernel_parity.cpp,
// tests/kernel_parity_pool.cpp, tests/kernel_parity_<op>.cpp): device buffers, the comparison,
// the input fills, and the two macros that differ between the real GPU and the emulated target.
#pragma once
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef CONVPOOL_EMULATED_CUDA
#include "cuda_emu.h"
#else
#include "convpool/device.h"
#endif

namespace convpool::kernel_test {

#ifdef CONVPOOL_EMULATED_CUDA
#define REQUIRE_DEVICE() (void)0
// Stands in for an input larger than the launcher's whole grid: the grid-stride loops of the
// kernels launched in this scope take a second pass. A GPU runs the real grid.
#define GRID_CAP(n) const cuda_emu::GridCap grid_cap_(n)
#else
#define REQUIRE_DEVICE()                                                 \
  do {                                                                   \
    if (!cuda_device_available())                                        \
      GTEST_SKIP() << "no usable CUDA device: " << cuda_device_report(); \
  } while (0)
#define GRID_CAP(n) (void)(n)
#endif

#define CHECK_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

// run(i) four times, i = 0..3: on the emulated target under the forward, reverse and two random
// thread schedules (seeds seed0 + i; the suite's own schedule restored after), on a GPU four
// times as it schedules them. For results that must be the same bits under every schedule.
template <class Run>
void run_under_four_schedules(uint64_t seed0, Run run) {
#ifdef CONVPOOL_EMULATED_CUDA
  const std::string previous = cuda_emu::schedule_name();
  const cuda_emu::Schedule orders[] = {cuda_emu::Schedule::forward, cuda_emu::Schedule::reverse,
                                       cuda_emu::Schedule::random, cuda_emu::Schedule::random};
  for (int i = 0; i < 4; ++i) {
    cuda_emu::set_schedule(orders[i], seed0 + uint64_t(i));
    run(i);
  }
  cuda_emu::Schedule sched;
  uint64_t seed = 0;
  cuda_emu::parse_schedule(previous, sched, seed);
  cuda_emu::set_schedule(sched, seed);
#else
  (void)seed0;
  for (int i = 0; i < 4; ++i) run(i);
#endif
}

// A device buffer of T, filled from the host or poisoned (all bits set: NaN as float).
template <class T>
class Dev {
 public:
  explicit Dev(size_t n) : n_(n) {
    if (cudaMalloc(reinterpret_cast<void**>(&p_), std::max<size_t>(n, 1) * sizeof(T)) !=
        cudaSuccess)
      throw std::runtime_error("cudaMalloc failed");
    poison();
  }
  explicit Dev(const std::vector<T>& v) : Dev(v.size()) { upload(v); }
  ~Dev() { cudaFree(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  T* get() const { return p_; }
  void poison() { cudaMemset(p_, 0xFF, std::max<size_t>(n_, 1) * sizeof(T)); }
  void upload(const std::vector<T>& v) {
    cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  std::vector<T> download() const {
    std::vector<T> v(n_);
    if (cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost) != cudaSuccess)
      ADD_FAILURE() << "cudaMemcpy to the host failed";
    return v;
  }

 private:
  T* p_ = nullptr;
  size_t n_;
};

// NaN where the reference has NaN, the same infinity where it has one, and within `tol` in
// the relative 2-norm over the finite rest.
inline void expect_match(const std::vector<float>& got, const std::vector<float>& want, double tol,
                         const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) || std::isinf(want[i]) || !std::isfinite(got[i])) {
      const bool same = std::isnan(want[i]) ? std::isnan(got[i]) : got[i] == want[i];
      ASSERT_TRUE(same) << what << "[" << i << "]: got " << got[i] << ", CPU " << want[i];
      continue;
    }
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  EXPECT_LE(std::sqrt(num / std::max(den, 1e-30)), tol) << what;
}

// Input values. `special` mixes exact ties, zeros, NaN and both infinities; `ties` draws from
// a few small integers so that most windows hold equal values.
enum class Fill { uniform, non_negative, ties, special, special_non_negative };

inline std::vector<float> make_input(size_t n, Fill fill, std::mt19937_64& rng) {
  std::vector<float> v(n);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& x : v) {
    const unsigned r = unsigned(rng() % 32);
    switch (fill) {
      case Fill::uniform:
        x = u(rng);
        break;
      case Fill::non_negative:
        x = std::fabs(u(rng));
        break;
      case Fill::ties:
        x = float(int(r % 4) - 1);
        break;
      case Fill::special:
        x = r == 0 ? nan : r == 1 ? inf : r == 2 ? -inf : float(int(r % 4) - 1);
        break;
      case Fill::special_non_negative:
        x = r == 0 ? nan : r == 1 ? inf : float(r % 3);
        break;
    }
  }
  return v;
}

}  // namespace convpool::kernel_test
#endif
