// RAII for page-locked host memory and CUDA events. Pinned memory makes cudaMemcpyAsync truly
// asynchronous; when it cannot be had, PinnedBuffer falls back to pageable memory (copies
// then partly synchronise) and says so once.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace convpool::cuda {

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& o) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  bool pinned() const { return pinned_; }

 private:
  void release() noexcept;
  void* ptr_ = nullptr;
  bool pinned_ = false;
};

class Event {
 public:
  // Without timing (the default) events only order work, which is cheaper.
  explicit Event(bool timing = false);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

class Stream {
 public:
  Stream();  // non-blocking with respect to the legacy default stream
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

}  // namespace convpool::cuda
