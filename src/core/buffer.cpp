#include "convpool/buffer.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "convpool/error.h"
#ifdef __linux__
#include <sys/mman.h>
#endif
#ifdef CONVPOOL_HAVE_CUDA
#include "cuda/check.h"
#endif

namespace convpool {

#ifndef CONVPOOL_HAVE_CUDA
namespace {
[[noreturn]] void no_cuda() {
  CP_USER_ERROR(
      "this convpool binary was built without CUDA; rebuild on a machine with the "
      "CUDA toolkit, cuDNN and cuBLAS, or use --device cpu");
}
}  // namespace
#endif

namespace {
struct Counter {
  std::atomic<size_t> current{0}, peak{0};
};
Counter& counter(Device d) {
  static Counter c[2];
  return c[d == Device::cpu ? 0 : 1];
}
void count_alloc(Device d, size_t bytes) {
  Counter& c = counter(d);
  const size_t now = c.current.fetch_add(bytes) + bytes;
  size_t peak = c.peak.load();
  while (now > peak && !c.peak.compare_exchange_weak(peak, now)) {
  }
}
}  // namespace

namespace {
// Host buffers of at least a huge page (the activation arena, large weights) are aligned to
// one and asked to be backed by huge pages: the CPU ops stream through planes of a few KiB
// spread over many megabytes, and with 4 KiB pages each plane costs a TLB miss (measured:
// weighted pooling's forward + backward on 32x64x32x32 some 30 % faster). Linux's
// transparent huge pages take the advice in its default "madvise" mode and ignore it when
// they are off. The cost: up to 2 MiB more per such buffer (its size is rounded up to whole
// huge pages), which the memory statistics (bytes asked for) do not count.
constexpr size_t kHugePage = size_t(2) << 20;

void* host_alloc(size_t bytes) {
  if (bytes < kHugePage) return std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, rounded);
#ifdef __linux__
  if (p) ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: a refusal changes nothing
#endif
  return p;
}
}  // namespace

MemoryStats memory_stats(Device d) { return {counter(d).current.load(), counter(d).peak.load()}; }
void reset_peak_memory(Device d) { counter(d).peak.store(counter(d).current.load()); }

Buffer::Buffer(Device device, size_t bytes) : bytes_(bytes), device_(device) {
  if (bytes == 0) return;
  if (device == Device::cpu) {
    ptr_ = host_alloc(bytes);  // 64-byte aligned at least, for SIMD
    if (!ptr_)
      CP_USER_ERROR("out of host memory: cannot allocate " << (bytes >> 20) << " MiB (" << bytes
                                                           << " bytes); try a smaller --batch "
                                                              "or model");
    count_alloc(device, bytes);
    return;
  }
#ifdef CONVPOOL_HAVE_CUDA
  if (cudaMalloc(&ptr_, bytes) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so the report below works
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    ptr_ = nullptr;
    CP_USER_ERROR("out of device memory: asked for " << bytes << " bytes, the device has "
                                                     << free_b << " free of " << total_b
                                                     << "; try a smaller --batch or model");
  }
  count_alloc(device, bytes);
#else
  no_cuda();
#endif
}

void Buffer::release() noexcept {
  if (!ptr_) return;
  counter(device_).current.fetch_sub(bytes_);
  if (device_ == Device::cpu) {
    std::free(ptr_);
  } else {
#ifdef CONVPOOL_HAVE_CUDA
    cudaFree(ptr_);  // a destructor must not throw; an error here is reported by the next call
#endif
  }
  ptr_ = nullptr;
}

Buffer::~Buffer() { release(); }

Buffer::Buffer(Buffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)),
      bytes_(std::exchange(o.bytes_, 0)),
      device_(o.device_) {}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    release();
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    device_ = o.device_;
  }
  return *this;
}

void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (bytes == 0) return;
  if (dst_dev == Device::cpu && src_dev == Device::cpu) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef CONVPOOL_HAVE_CUDA
  CP_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
  // cudaMemcpy may return before a copy into device memory has landed (device to device; and
  // from pageable host memory once it is staged for DMA), and the compute streams do not wait
  // for the default stream (they are non-blocking): wait here, as promised, before any kernel
  // of theirs reads the destination.
  if (dst_dev == Device::cuda) CP_CUDA_CHECK(cudaStreamSynchronize(0));
#else
  no_cuda();
#endif
}

double measure_copy_gbps(Device device, size_t bytes, int reps) {
  Buffer src(device, bytes), dst(device, bytes);
  if (device == Device::cpu) std::memset(src.get(), 1, bytes);  // touch every page first
  copy_bytes(dst.get(), device, src.get(), device, bytes);      // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) copy_bytes(dst.get(), device, src.get(), device, bytes);
#ifdef CONVPOOL_HAVE_CUDA
  if (device == Device::cuda) CP_CUDA_CHECK(cudaDeviceSynchronize());
#endif
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * double(bytes) * reps / s / 1e9;
}

}  // namespace convpool
