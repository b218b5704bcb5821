// Buffer: RAII owner of one block of host or device memory. All memory in convpool comes
// from a Buffer, usually through the Arena; layer code never allocates.
#pragma once
#include <cstddef>

#include "convpool/tensor.h"

namespace convpool {

class Buffer {
 public:
  Buffer() = default;
  Buffer(Device device, size_t bytes);  // throws Error on failure (out-of-memory names the size)
  ~Buffer();
  Buffer(Buffer&& o) noexcept;
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void release() noexcept;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  Device device_ = Device::cpu;
};

// Bytes held by live Buffers of a device, now and at most since the last reset: the engine's
// peak memory (every allocation goes through Buffer). Library-internal workspaces of cuBLAS
// and the CUDA context itself are not included.
struct MemoryStats {
  size_t current = 0, peak = 0;
};
MemoryStats memory_stats(Device device);
void reset_peak_memory(Device device);

// The device's copy bandwidth in GB/s (bytes read + bytes written, per second) for a buffer
// of `bytes` copied `reps` times: the yardstick of memory-bound kernels in `convpool bench`.
double measure_copy_gbps(Device device, size_t bytes, int reps);

// Copies between any two devices (host<->host, host<->cuda, cuda<->cuda), synchronously.
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes);

}  // namespace convpool
