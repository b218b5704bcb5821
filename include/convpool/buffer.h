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

// Copies between any two devices (host<->host, host<->cuda, cuda<->cuda), synchronously.
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes);

}  // namespace convpool
