// What the kernel side of the emulator (emu_device.h) calls in its runtime (runtime.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "cuda_runtime.h"

// CUDA_EMU_ASAN: built with AddressSanitizer (GCC or clang).
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDA_EMU_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CUDA_EMU_ASAN 1
#endif

namespace cuda_emu {

enum class WarpOp : int { sync, shfl_idx, shfl_up, shfl_down, shfl_xor, ballot, any, all };
// One warp collective of the calling thread: waits until every lane of `mask` has reached a
// collective with the same mask, then returns this lane's result.
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width);
void sync_block();
// Records a __shared__ variable, so that it is poisoned at the start of every block.
void shared_seen(void* p, size_t bytes);

// Sets the sticky last error (cudaGetLastError clears it); returns e.
cudaError_t record_error(cudaError_t e);
// What a synchronisation returns: an asynchronous fault raised by the work it waited for
// (which also becomes the last error), else cudaSuccess.
cudaError_t sync_result();
// An asynchronous kernel fault, reported by the next synchronisation (not by the launch).
void record_async_fault();
// True once after a FaultNextLaunch: the launch being made faults instead of running.
bool take_fault_request();

// A launch: checked and counted now, queued on `stream` (or recorded into its capture) to run
// when the stream is drained; `ctx` (the kernel and its arguments) lives as long as the queued
// operation, or the graph that captured it.
using KernelBody = void (*)(void*);
void run_grid(const char* name, const char* file, int line, dim3 grid, dim3 block, size_t smem,
              cudaStream_t stream, KernelBody body, std::shared_ptr<void> ctx);

// Held by every runtime call (and while device operations run).
std::recursive_mutex& runtime_mutex();

// ---- the stream machinery (streams.cpp), for the stand-ins of the libraries ----

// One device operation: it runs with device memory open to the host (DeviceAccess).
using Op = std::function<void()>;
// Queues `op` on stream `s` (null: the legacy stream) behind what `s` must wait for, or
// records it into the capture `s` takes part in. `what` names it in reports. Returns an error
// (and records it) when the stream cannot take work now: an unknown handle, the legacy stream
// during a capture.
cudaError_t enqueue(cudaStream_t s, const char* what, Op op);
// Runs everything queued on `s` so far, and what it waits for (cudaStreamSynchronize without
// its capture check).
void drain(cudaStream_t s);
// Runs every queue to its end (cudaDeviceSynchronize without its capture check).
void drain_all();
// Whether `s` is being captured (its operations go into a graph, not a queue).
bool capturing(cudaStream_t s);
// For a call that capture forbids ("potentially unsafe": cudaMalloc, a blocking copy, a
// synchronisation): invalidates the captures it breaks and returns
// cudaErrorStreamCaptureUnsupported, or cudaSuccess when no capture is affected.
cudaError_t forbidden_during_capture(const char* what);
// Whether the handle names a live stream (null and cudaStreamLegacy do).
bool valid_stream(cudaStream_t s);

// A float rounded to TF32 (10 mantissa bits, to nearest even), as tensor cores read their
// inputs: the cuDNN and cuBLAS stand-ins' tensor-op math.
inline float round_to_tf32(float v) {
  if (!(v - v == 0.f)) return v;  // NaN and infinities as they are
  uint32_t b = __builtin_bit_cast(uint32_t, v);
  b = (b + 0xFFFu + ((b >> 13) & 1u)) & ~0x1FFFu;
  return __builtin_bit_cast(float, b);
}

// ---- device memory (memory.cpp) ----

// Device memory is mapped inaccessible except while a device operation runs: a host read or
// write of it faults, as on a GPU. While a DeviceAccess lives (nested freely), it is open.
class DeviceAccess {
 public:
  DeviceAccess();
  ~DeviceAccess();
  DeviceAccess(const DeviceAccess&) = delete;
  DeviceAccess& operator=(const DeviceAccess&) = delete;
};
// Whether [p, p + bytes) lies inside one live device allocation.
bool is_device(const void* p, size_t bytes = 1);
// Whether p lies in page-locked host memory (cudaHostAlloc).
bool is_pinned(const void* p);

}  // namespace cuda_emu
