// What the kernel side of the emulator (emu_device.h) calls in its runtime (runtime.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda_runtime.h"

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
// An asynchronous kernel fault, reported by the next synchronisation (not by the launch).
void record_async_fault();
// True once after a FaultNextLaunch: the launch being made faults instead of running.
bool take_fault_request();

using KernelBody = void (*)(void*);
void run_grid(const char* name, const char* file, int line, dim3 grid, dim3 block, size_t smem,
              cudaStream_t stream, KernelBody body, void* ctx);

}  // namespace cuda_emu
