// cub::DeviceSegmentedSort::SortKeysDescending for the emulated target (the Avg-TopK
// baseline of `bench pool`): the two-phase call (temporary size, then the sort), with the sort
// queued on the stream as one operation over the segments.
#pragma once
#include <algorithm>
#include <functional>

#include "cuda_runtime.h"
#include "emu_api.h"

namespace cub {
struct DeviceSegmentedSort {
  template <class Key, class Offsets>
  static cudaError_t SortKeysDescending(void* temp, size_t& temp_bytes, const Key* in, Key* out,
                                        long long items, long long segments, Offsets begin,
                                        Offsets end, cudaStream_t stream = nullptr) {
    if (!temp) {
      temp_bytes = 256;  // some: callers must allocate and pass it
      return cudaSuccess;
    }
    if (temp_bytes < 256 || !::cuda_emu::is_device(temp, temp_bytes)) return cudaErrorInvalidValue;
    return ::cuda_emu::enqueue(stream, "cub::DeviceSegmentedSort", [=] {
      std::copy(in, in + items, out);
      for (long long s = 0; s < segments; ++s)
        std::stable_sort(out + begin[s], out + end[s], std::greater<Key>());
    });
  }
};
}  // namespace cub
