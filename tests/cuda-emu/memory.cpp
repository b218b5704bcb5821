// The emulated CUDA target's runtime API subset (cuda_runtime.h): device memory is host
// memory, poisoned when allocated; every call completes before it returns; a launch error
// stays until cudaGetLastError reads it, as the project's launch checks expect.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "cuda_runtime.h"
#include "emu_api.h"

namespace {
cudaError_t g_last_error = cudaSuccess;
// A fault of a kernel that "ran" (cuda_emu::FaultNextLaunch): like a GPU fault it is not seen
// at the launch, only by the next synchronisation, which makes it the last error.
cudaError_t g_async_error = cudaSuccess;
std::map<const void*, size_t> g_allocations;  // cudaFree refuses what cudaMalloc did not give
std::mutex g_alloc_mutex;
}  // namespace

namespace cuda_emu {
cudaError_t record_error(cudaError_t e) {
  if (e != cudaSuccess) g_last_error = e;  // sticky until cudaGetLastError reads it
  return e;
}
void record_async_fault() { g_async_error = cudaErrorLaunchFailure; }
}  // namespace cuda_emu

namespace {
cudaError_t synchronize() {
  if (g_async_error != cudaSuccess) g_last_error = g_async_error, g_async_error = cudaSuccess;
  return g_last_error;
}
}  // namespace

using cuda_emu::record_error;

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (!p) return record_error(cudaErrorInvalidValue);
  // Exactly `bytes` (aligned as cudaMalloc aligns), so that ASan's redzone starts at the
  // first byte past the buffer: an off-by-one in a kernel is reported at its .cu line.
  // Poisoned: a kernel that reads memory nobody wrote sees NaN (as float) or -1 (as int).
  if (posix_memalign(p, 256, std::max<size_t>(bytes, 1)) != 0) {
    *p = nullptr;
    return record_error(cudaErrorMemoryAllocation);
  }
  std::memset(*p, 0xFF, bytes);
  std::lock_guard lock(g_alloc_mutex);
  g_allocations[*p] = bytes;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  std::lock_guard lock(g_alloc_mutex);
  if (!g_allocations.erase(p)) return record_error(cudaErrorInvalidDevicePointer);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes && (!dst || !src)) return record_error(cudaErrorInvalidValue);
  if (bytes) std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (bytes && !p) return record_error(cudaErrorInvalidValue);
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(p, value, bytes);
}
cudaError_t cudaDeviceSynchronize() { return synchronize(); }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return synchronize(); }
cudaError_t cudaGetLastError() {
  const cudaError_t e = g_last_error;
  g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return g_last_error; }
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer:
      return "cudaErrorInvalidDevicePointer";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
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
  }
  return "unknown error";
}
