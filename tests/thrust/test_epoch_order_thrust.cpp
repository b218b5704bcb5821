// The device placement's Thrust code (src/data/epoch_order_thrust.h), run on the CPU through
// Thrust's own systems: this file is compiled by the host compiler with
// THRUST_DEVICE_SYSTEM=OMP, so thrust::device_vector lives in host memory and its algorithms
// run under OpenMP, and thrust::cpp::par runs the same source serially. Both must give the CPU
// data path's epoch order (epoch_order in src/data/cifar.cpp, a std::sort) exactly: the
// CUDA build instantiates the same template with thrust::cuda::par (src/cuda/device_data.cu).
#include <gtest/gtest.h>
#include <thrust/device_vector.h>
#include <thrust/system/cpp/execution_policy.h>
#include <thrust/system/omp/execution_policy.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "convpool/data.h"
#include "data/epoch_order_thrust.h"

using namespace convpool;

static_assert(THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP,
              "this test runs the device code through Thrust's OMP system");

namespace {
std::vector<uint32_t> order_on_omp_device(size_t n, uint64_t seed, uint64_t epoch) {
  thrust::device_vector<uint32_t> order(n, 0xFFFFFFFFu);  // poisoned
  thrust::device_vector<uint64_t> keys(n);
  epoch_order_by_sort(thrust::device, thrust::raw_pointer_cast(order.data()),
                      thrust::raw_pointer_cast(keys.data()), n, seed, epoch);
  std::vector<uint32_t> out(n);
  // Through a raw pointer: Thrust's copy into a std::vector iterator dereferences begin()
  // even for n = 0, and its element references upcast a null policy (UBSan reports both).
  if (n) thrust::copy(order.begin(), order.end(), out.data());
  return out;
}

std::vector<uint32_t> order_on_cpp_system(size_t n, uint64_t seed, uint64_t epoch) {
  std::vector<uint32_t> order(n, 0xFFFFFFFFu);
  std::vector<uint64_t> keys(n);
  epoch_order_by_sort(thrust::cpp::par, order.data(), keys.data(), n, seed, epoch);
  return order;
}
}  // namespace

TEST(ThrustEpochOrder, CppAndOmpSystemsGiveTheCpuOrderExactly) {
  // Sizes around the sorts' internal thresholds, a rank-sized slice and the whole data set.
  for (const size_t n : {size_t(0), size_t(1), size_t(2), size_t(31), size_t(1000),
                         size_t(4097), size_t(50000)})
    for (const uint64_t seed : {uint64_t(1), uint64_t(0xDEADBEEFCAFEull)})
      for (const uint64_t epoch : {uint64_t(0), uint64_t(7), uint64_t(1) << 33}) {
        const std::vector<uint32_t> cpu = epoch_order(n, seed, epoch);
        ASSERT_EQ(order_on_omp_device(n, seed, epoch), cpu) << n << " " << seed << " " << epoch;
        ASSERT_EQ(order_on_cpp_system(n, seed, epoch), cpu) << n << " " << seed << " " << epoch;
        std::vector<uint32_t> sorted = cpu;
        std::sort(sorted.begin(), sorted.end());
        std::vector<uint32_t> identity(n);
        std::iota(identity.begin(), identity.end(), 0u);
        ASSERT_EQ(sorted, identity) << "not a permutation of " << n;
      }
}

TEST(ThrustEpochOrder, TiedKeysFallBackToTheIndexOnBothSides) {
  // Keys collide with probability ~n^2 / 2^65, too rarely to meet by chance; force ties
  // through the sort step the epoch order uses: keys with few distinct values, against
  // std::sort of (key, index) pairs, which is what the CPU's epoch_order does.
  const size_t n = 3000;
  std::vector<uint64_t> host_keys(n);
  for (size_t i = 0; i < n; ++i) host_keys[i] = (i * 2654435761u) % 7;
  thrust::device_vector<uint64_t> keys(host_keys.begin(), host_keys.end());
  thrust::device_vector<uint32_t> order(n, 0xFFFFFFFFu);
  order_by_keys(thrust::device, thrust::raw_pointer_cast(order.data()),
                thrust::raw_pointer_cast(keys.data()), n);
  std::vector<std::pair<uint64_t, uint32_t>> want(n);
  for (size_t i = 0; i < n; ++i) want[i] = {host_keys[i], uint32_t(i)};
  std::sort(want.begin(), want.end());
  std::vector<uint32_t> got(n);
  thrust::copy(order.begin(), order.end(), got.data());  // not order[i]: see order_on_omp_device
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], want[i].second) << i;
}
