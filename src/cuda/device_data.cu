#include "device_data.h"

#include <thrust/execution_policy.h>
#include <thrust/system/cuda/execution_policy.h>

#include <vector>

#include "data/epoch_order_thrust.h"
#include "check.h"

namespace convpool::cuda {

bool ResidentDataset::hold(const Dataset& ds, void* stream) {
  if (source_ == ds.pixel_data() && size_ == ds.size()) return false;
  CP_CHECK(ds.mapped || ds.pixels.size() == ds.pixel_bytes(), "malformed data set");
  images_ = Buffer(Device::cuda, std::max<size_t>(ds.pixel_bytes(), 1));
  labels_ = Buffer(Device::cuda, std::max<size_t>(ds.size(), 1));
  // On the compute stream, before every kernel that reads the data (the compute stream is
  // non-blocking: a copy on the legacy stream would not be ordered before them).
  cudaStream_t s = as_stream(stream);
  CP_CUDA_CHECK(
      cudaMemcpyAsync(images_.get(), ds.pixel_data(), ds.pixel_bytes(), cudaMemcpyHostToDevice, s));
  CP_CUDA_CHECK(
      cudaMemcpyAsync(labels_.get(), ds.labels.data(), ds.size(), cudaMemcpyHostToDevice, s));
  // redundant-sync: the copies precede every kernel on this stream and `ds` outlives them;
  // the wait puts the upload's time here instead of in the first step.
  CP_CUDA_CHECK(cudaStreamSynchronize(s));
  source_ = ds.pixel_data();
  size_ = ds.size();
  return true;
}

bool DeviceEpochOrder::make(size_t n, uint64_t seed, uint64_t epoch, void* stream) {
  const bool moved = n > capacity_;
  if (moved) {
    order_ = Buffer(Device::cuda, n * sizeof(uint32_t));
    keys_ = Buffer(Device::cuda, n * sizeof(uint64_t));
    capacity_ = n;
  }
  try {
    epoch_order_by_sort(thrust::cuda::par.on(as_stream(stream)), order_.as<uint32_t>(),
                        keys_.as<uint64_t>(), n, seed, epoch);
  } catch (const std::exception& e) {  // thrust::system_error: a failed launch or allocation
    CP_FAIL("making the epoch order on the GPU failed: " << e.what());
  }
  return moved;
}

size_t DeviceEpochOrder::first_difference(const uint32_t* host, size_t n) const {
  std::vector<uint32_t> device(n);
  copy_bytes(device.data(), Device::cpu, order_.get(), Device::cuda, n * sizeof(uint32_t));
  for (size_t i = 0; i < n; ++i)
    if (device[i] != host[i]) return i;
  return n;
}

bool fits_in_free_memory(size_t bytes, double fraction) {
  size_t free = 0, total = 0;
  CP_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return double(bytes) <= fraction * double(free);
}

}  // namespace convpool::cuda
