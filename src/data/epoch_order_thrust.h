// The epoch order made by Thrust, on whichever system the policy names: the CUDA backend's
// device placement runs it on the GPU (thrust::cuda::par.on(stream), src/cuda/device_data.cu);
// tests run the same source on the CPU through Thrust's CPP and OMP systems and compare it
// with epoch_order() (src/data/cifar.cpp). Header-only: each system instantiates it.
#pragma once
#include <thrust/sequence.h>
#include <thrust/sort.h>
#include <thrust/tabulate.h>

#include <cstddef>
#include <cstdint>

#include "kernels/epoch_order.cuh"

namespace convpool {

// order[0..n) := 0..n-1 sorted by keys[0..n) (which the sort reorders), ties by index: a
// stable sort of the identity. Both arrays live in the policy's memory.
template <class Policy>
void order_by_keys(const Policy& policy, uint32_t* order, uint64_t* keys, size_t n) {
  if (n == 0) return;
  thrust::sequence(policy, order, order + n);
  thrust::stable_sort_by_key(policy, keys, keys + n, order);
}

// order[0..n) := images 0..n-1 sorted by EpochOrderKey{seed, epoch}, ties by index. `keys`:
// n values of scratch.
template <class Policy>
void epoch_order_by_sort(const Policy& policy, uint32_t* order, uint64_t* keys, size_t n,
                         uint64_t seed, uint64_t epoch) {
  if (n == 0) return;
  thrust::tabulate(policy, keys, keys + n, EpochOrderKey{seed, epoch});
  order_by_keys(policy, order, keys, n);
}

}  // namespace convpool
