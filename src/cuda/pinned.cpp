#include "pinned.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "check.h"

namespace convpool::cuda {

PinnedBuffer::PinnedBuffer(size_t bytes) {
  if (cudaHostAlloc(&ptr_, bytes, cudaHostAllocDefault) == cudaSuccess) {
    pinned_ = true;
    return;
  }
  cudaGetLastError();  // clear the failed allocation's error
  static bool warned = false;
  if (!warned) {
    std::fprintf(stderr,
                 "convpool: warning: pinned host memory unavailable; using pageable "
                 "memory (host-to-device copies will overlap less)\n");
    warned = true;
  }
  ptr_ = std::malloc(bytes);
  if (!ptr_) CP_FAIL("out of host memory allocating " << bytes << " bytes");
}

void PinnedBuffer::release() noexcept {
  if (!ptr_) return;
  if (pinned_) {
    cudaFreeHost(ptr_);
  } else {
    std::free(ptr_);
  }
  ptr_ = nullptr;
}

PinnedBuffer::~PinnedBuffer() { release(); }
PinnedBuffer::PinnedBuffer(PinnedBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), pinned_(o.pinned_) {}
PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
  if (this != &o) {
    release();
    ptr_ = std::exchange(o.ptr_, nullptr);
    pinned_ = o.pinned_;
  }
  return *this;
}

Event::Event(bool timing) {
  CP_CUDA_CHECK(cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming));
}
Event::~Event() {
  if (e_) cudaEventDestroy(e_);
}

Stream::Stream() { CP_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
Stream::~Stream() {
  if (s_) cudaStreamDestroy(s_);
}

}  // namespace convpool::cuda
