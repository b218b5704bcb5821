// The emulated target's device, memory and errors. Device memory is one reserved range of
// address space, mapped inaccessible except while a device operation runs (DeviceAccess), so
// a host read of device memory faults as it does on a GPU. Allocations are poisoned (0xFF:
// NaN as float, -1 as int) and, under ASan, fenced by poisoned gaps so that an overrun is
// reported at the kernel's line. Copies follow the documented host-side behaviour of each
// direction: a copy from pageable memory is taken at the call and lands when its stream runs;
// one from page-locked memory reads the source when it runs; copies into pageable memory
// complete before the call returns.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "cuda_runtime.h"
#include "emu_api.h"

#ifdef CUDA_EMU_ASAN
#include <sanitizer/asan_interface.h>
#define EMU_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define EMU_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define EMU_POISON(p, n) ((void)(p), (void)(n))
#define EMU_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace {
cudaError_t g_last_error = cudaSuccess;
// A fault of a kernel that "ran" (cuda_emu::FaultNextLaunch): like a GPU fault it is not seen
// at the launch, only by the next synchronisation, which makes it the last error.
cudaError_t g_async_error = cudaSuccess;

// ---- the device memory arena ----
constexpr size_t kDeviceBytes = size_t(16) << 30;  // what the emulated device reports
constexpr size_t kAlign = 256;                     // cudaMalloc's alignment
constexpr size_t kGap = 256;                       // between allocations: ASan's fence
char* g_base = nullptr;
size_t g_top = 0;     // bytes of the arena handed out so far (bump pointer)
size_t g_mapped = 0;  // page-rounded extent that DeviceAccess opens
size_t g_in_use = 0;
std::map<size_t, size_t> g_live;         // offset -> requested bytes
std::map<size_t, size_t> g_free;         // offset -> usable bytes (including the gap), coalesced
int g_open = 0;                          // DeviceAccess nesting
std::map<const char*, size_t> g_pinned;  // page-locked host blocks: start -> bytes

size_t page() {
  static const size_t p = size_t(sysconf(_SC_PAGESIZE));
  return p;
}

void protect(size_t from, size_t to, int prot) {
  if (to > from && mprotect(g_base + from, to - from, prot) != 0) {
    std::perror("cuda-emu: mprotect of device memory");
    std::abort();
  }
}

#ifndef CUDA_EMU_ASAN
struct sigaction g_previous_segv;
void on_segv(int sig, siginfo_t* info, void* uctx) {
  const char* a = static_cast<const char*>(info->si_addr);
  if (g_base && a >= g_base && a < g_base + kDeviceBytes) {
    char msg[200];
    const int n = std::snprintf(msg, sizeof msg,
                                "\ncuda-emu: the host touched device memory at offset %zu: "
                                "device memory is not host-dereferenceable (copy it with "
                                "cudaMemcpy)\n",
                                size_t(a - g_base));
    if (write(2, msg, size_t(n)) < 0) {
    }
    std::abort();
  }
  // Not ours: let the previous handler (or the default action) have it.
  sigaction(SIGSEGV, &g_previous_segv, nullptr);
  (void)sig, (void)uctx;
}
#endif

void reserve_arena() {
  if (g_base) return;
  void* m =
      mmap(nullptr, kDeviceBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    std::fprintf(stderr, "cuda-emu: cannot reserve the emulated device's memory\n");
    std::abort();
  }
  g_base = static_cast<char*>(m);
#ifndef CUDA_EMU_ASAN
  struct sigaction sa {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_previous_segv);
#endif
}

// A block of `bytes` (plus its gap) from the free list or the top; SIZE_MAX when none.
size_t take_block(size_t bytes) {
  const size_t need = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign + kGap;
  for (auto it = g_free.begin(); it != g_free.end(); ++it) {
    if (it->second < need) continue;
    const size_t off = it->first, have = it->second;
    g_free.erase(it);
    if (have > need) g_free[off + need] = have - need;
    return off;
  }
  if (g_top + need > kDeviceBytes) return SIZE_MAX;
  const size_t off = g_top;
  g_top += need;
  const size_t mapped = (g_top + page() - 1) / page() * page();
  if (mapped > g_mapped) {
    if (g_open) protect(g_mapped, mapped, PROT_READ | PROT_WRITE);
    g_mapped = mapped;
  }
  return off;
}

size_t block_size(size_t bytes) {
  return (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign + kGap;
}

void give_back(size_t off, size_t size) {
  auto next = g_free.lower_bound(off);
  if (next != g_free.end() && next->first == off + size) {
    size += next->second;
    g_free.erase(next);
  }
  auto it = g_free.lower_bound(off);
  if (it != g_free.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second == off) {
      prev->second += size;
      return;
    }
  }
  g_free[off] = size;
}

enum class Where { pageable, pinned, device };
Where where(const void* p) {
  if (cuda_emu::is_device(p)) return Where::device;
  return cuda_emu::is_pinned(p) ? Where::pinned : Where::pageable;
}

}  // namespace

namespace cuda_emu {
std::recursive_mutex& runtime_mutex() {
  static std::recursive_mutex m;
  return m;
}
cudaError_t record_error(cudaError_t e) {
  if (e != cudaSuccess) g_last_error = e;  // sticky until cudaGetLastError reads it
  return e;
}
void record_async_fault() { g_async_error = cudaErrorLaunchFailure; }
cudaError_t sync_result() {
  // Only a fault of the work waited for: an earlier call's error (a bad launch configuration,
  // a refused capture) is cudaGetLastError's to report, not a synchronisation's.
  const cudaError_t e = g_async_error;
  if (e != cudaSuccess) g_last_error = e, g_async_error = cudaSuccess;
  return e;
}

DeviceAccess::DeviceAccess() {
  std::lock_guard lock(cuda_emu::runtime_mutex());
  if (g_open++ == 0 && g_base) protect(0, g_mapped, PROT_READ | PROT_WRITE);
}
DeviceAccess::~DeviceAccess() {
  std::lock_guard lock(cuda_emu::runtime_mutex());
  if (--g_open == 0 && g_base) protect(0, g_mapped, PROT_NONE);
}

bool is_device(const void* p, size_t bytes) {
  std::lock_guard lock(cuda_emu::runtime_mutex());
  const char* c = static_cast<const char*>(p);
  if (!g_base || c < g_base || c >= g_base + g_top) return false;
  const size_t off = size_t(c - g_base);
  auto it = g_live.upper_bound(off);
  if (it == g_live.begin()) return false;
  --it;
  return off + std::max<size_t>(bytes, 1) <= it->first + std::max<size_t>(it->second, 1);
}

bool is_pinned(const void* p) {
  std::lock_guard lock(cuda_emu::runtime_mutex());
  const char* c = static_cast<const char*>(p);
  auto it = g_pinned.upper_bound(c);
  if (it == g_pinned.begin()) return false;
  --it;
  return c < it->first + it->second;
}
}  // namespace cuda_emu

using cuda_emu::record_error;

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (!p) return record_error(cudaErrorInvalidValue);
  if (cudaError_t e = cuda_emu::forbidden_during_capture("cudaMalloc")) return e;
  std::lock_guard lock(cuda_emu::runtime_mutex());
  reserve_arena();
  const size_t off = take_block(bytes);
  if (off == SIZE_MAX) {
    *p = nullptr;
    return record_error(cudaErrorMemoryAllocation);
  }
  *p = g_base + off;
  // Exactly `bytes` are usable: ASan's fence (the rest of the block and its gap) starts at
  // the first byte past the buffer.
  EMU_UNPOISON(*p, bytes);
  EMU_POISON(static_cast<char*>(*p) + bytes, block_size(bytes) - bytes);
  {
    cuda_emu::DeviceAccess open;
    std::memset(*p, 0xFF, bytes);
  }
  g_live[off] = bytes;
  g_in_use += block_size(bytes);
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  if (cudaError_t e = cuda_emu::forbidden_during_capture("cudaFree")) return e;
  std::lock_guard lock(cuda_emu::runtime_mutex());
  const char* c = static_cast<const char*>(p);
  if (!g_base || c < g_base || c >= g_base + g_top)
    return record_error(cudaErrorInvalidDevicePointer);
  const size_t off = size_t(c - g_base);
  auto it = g_live.find(off);
  if (it == g_live.end()) return record_error(cudaErrorInvalidDevicePointer);
  cuda_emu::drain_all();  // cudaFree waits for the device, so no queued work reads freed memory
  const size_t bytes = it->second, size = block_size(bytes);
  {
    cuda_emu::DeviceAccess open;
    std::memset(p, 0xFF, bytes);  // a use after free reads poison where ASan is absent
  }
  EMU_POISON(p, size);
  g_live.erase(it);
  g_in_use -= size;
  give_back(off, size);
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned flags) {
  if (!p || flags) return record_error(cudaErrorInvalidValue);
  if (posix_memalign(p, 4096, std::max<size_t>(bytes, 1)) != 0) {
    *p = nullptr;
    return record_error(cudaErrorMemoryAllocation);
  }
  std::memset(*p, 0xFF, bytes);
  std::lock_guard lock(cuda_emu::runtime_mutex());
  g_pinned[static_cast<char*>(*p)] = std::max<size_t>(bytes, 1);
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }
cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  std::lock_guard lock(cuda_emu::runtime_mutex());
  if (!g_pinned.erase(static_cast<char*>(p))) return record_error(cudaErrorInvalidValue);
  cuda_emu::drain_all();  // as cudaFreeHost: no queued copy may still read it
  std::free(p);
  return cudaSuccess;
}

namespace {
// The direction the pointers say, checked against the one the caller named.
bool direction(const void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, Where& d,
               Where& s) {
  d = where(dst);
  s = where(src);
  const bool dst_dev = d == Where::device, src_dev = s == Where::device;
  // A device range must lie inside one allocation: a GPU would fault or corrupt a neighbour.
  if (dst_dev && !cuda_emu::is_device(dst, bytes)) return false;
  if (src_dev && !cuda_emu::is_device(src, bytes)) return false;
  switch (kind) {
    case cudaMemcpyHostToHost:
      return !dst_dev && !src_dev;
    case cudaMemcpyHostToDevice:
      return dst_dev && !src_dev;
    case cudaMemcpyDeviceToHost:
      return !dst_dev && src_dev;
    case cudaMemcpyDeviceToDevice:
      return dst_dev && src_dev;
    case cudaMemcpyDefault:
      return true;
  }
  return false;
}

cudaError_t copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s,
                 bool blocking) {
  if (bytes && (!dst || !src)) return record_error(cudaErrorInvalidValue);
  if (!bytes) return cudaSuccess;
  if (blocking)
    if (cudaError_t e = cuda_emu::forbidden_during_capture("cudaMemcpy")) return e;
  Where d, w;
  if (!direction(dst, src, bytes, kind, d, w)) return record_error(cudaErrorInvalidValue);
  if (d != Where::device && w != Where::device) {  // host to host: done now
    std::memcpy(dst, src, bytes);
    return cudaSuccess;
  }
  const bool captured = cuda_emu::capturing(s);
  if (captured && (d == Where::pageable || w == Where::pageable)) {
    cuda_emu::forbidden_during_capture("a copy to or from pageable memory");
    return record_error(cudaErrorStreamCaptureUnsupported);
  }
  cudaError_t e = cudaSuccess;
  if (w == Where::pageable && blocking) {
    // cudaMemcpy from pageable memory: the legacy stream first, then the source is staged
    // (a later change of it does not travel) and the device write lands when the stream
    // runs, as documented.
    cuda_emu::drain(nullptr);
    auto staged = std::make_shared<std::vector<char>>(static_cast<const char*>(src),
                                                      static_cast<const char*>(src) + bytes);
    e = cuda_emu::enqueue(s, "cudaMemcpy from pageable memory",
                          [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); });
  } else {
    e = cuda_emu::enqueue(s, "cudaMemcpy", [dst, src, bytes] { std::memcpy(dst, src, bytes); });
  }
  if (e) return e;
  // A blocking copy to the host, or from page-locked memory, returns once the copy is done.
  // Everything else returns at once: cudaMemcpyAsync "might be synchronous" with pageable
  // memory, so its source is read and its destination written only when the stream runs.
  if (blocking && (d != Where::device || w == Where::pinned)) {
    cuda_emu::drain(s);
    return cuda_emu::sync_result();
  }
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return copy(dst, src, bytes, kind, nullptr, true);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  return copy(dst, src, bytes, kind, stream, false);
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream) {
  if (!bytes) return cudaSuccess;
  if (!p || !cuda_emu::is_device(p, bytes)) return record_error(cudaErrorInvalidValue);
  return cuda_emu::enqueue(stream, "cudaMemset",
                           [p, value, bytes] { std::memset(p, value, bytes); });
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  return cudaMemsetAsync(p, value, bytes, nullptr);
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = g_last_error;
  g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return g_last_error; }

// ---- the device: one, with the compute capability the build targets ----
namespace {
int g_device = 0;
// CUDA_EMU_DEVICES=N: the devices this process sees (1 by default): the multi-GPU node of the
// data-parallel tests. They share the one memory arena.
int device_count() {
  static const int n = [] {
    const char* v = std::getenv("CUDA_EMU_DEVICES");
    const int k = v ? std::atoi(v) : 1;
    return k >= 0 && k <= 64 ? k : 1;
  }();
  return n;
}
}  // namespace
cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return record_error(cudaErrorInvalidValue);
  *count = device_count();
  return *count ? cudaSuccess : record_error(cudaErrorNoDevice);
}
cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= device_count()) return record_error(cudaErrorInvalidDevice);
  g_device = device;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (!device) return record_error(cudaErrorInvalidValue);
  *device = g_device;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop || device < 0 || device >= device_count()) return record_error(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "convpool emulated device (CPU)");
  prop->totalGlobalMem = kDeviceBytes;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 1;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  if (!v) return record_error(cudaErrorInvalidValue);
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) { return cudaDriverGetVersion(v); }
cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  if (!free || !total) return record_error(cudaErrorInvalidValue);
  std::lock_guard lock(cuda_emu::runtime_mutex());
  *total = kDeviceBytes;
  *free = kDeviceBytes - g_in_use;
  return cudaSuccess;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
#define CUDA_EMU_NAME(x) \
  case x:                \
    return #x;
    CUDA_EMU_NAME(cudaSuccess)
    CUDA_EMU_NAME(cudaErrorInvalidValue)
    CUDA_EMU_NAME(cudaErrorMemoryAllocation)
    CUDA_EMU_NAME(cudaErrorInvalidConfiguration)
    CUDA_EMU_NAME(cudaErrorInvalidDevicePointer)
    CUDA_EMU_NAME(cudaErrorInvalidMemcpyDirection)
    CUDA_EMU_NAME(cudaErrorInsufficientDriver)
    CUDA_EMU_NAME(cudaErrorNoDevice)
    CUDA_EMU_NAME(cudaErrorInvalidDevice)
    CUDA_EMU_NAME(cudaErrorInvalidResourceHandle)
    CUDA_EMU_NAME(cudaErrorIllegalState)
    CUDA_EMU_NAME(cudaErrorNotReady)
    CUDA_EMU_NAME(cudaErrorLaunchFailure)
    CUDA_EMU_NAME(cudaErrorStreamCaptureUnsupported)
    CUDA_EMU_NAME(cudaErrorStreamCaptureInvalidated)
    CUDA_EMU_NAME(cudaErrorStreamCaptureUnmatched)
    CUDA_EMU_NAME(cudaErrorStreamCaptureIsolation)
    CUDA_EMU_NAME(cudaErrorStreamCaptureImplicit)
    CUDA_EMU_NAME(cudaErrorStreamCaptureWrongThread)
#undef CUDA_EMU_NAME
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer:
      return "invalid device pointer";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorNotReady:
      return "device not ready";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorStreamCaptureIsolation:
      return "dependency created on uncaptured work in another stream";
    default:
      return "unknown error";
  }
}
