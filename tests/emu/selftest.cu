// The emulator's own test kernels (tests/emu/selftest.h). Compiled like kernels/*.cu, through
// the launch rewriter, but not part of the kernel census.
#include "selftest.h"

namespace emu_selftest {

namespace {
__global__ void broadcast_kernel(float* out, bool barrier) {
  __shared__ float value;
  if (threadIdx.x == 0) value = 42.f;
  if (barrier) __syncthreads();
  out[threadIdx.x] = value;
}

__global__ void shuffle_kernel(int32_t* out) {
  const int lane = threadIdx.x;
  int32_t* o = out + lane * 8;
  o[0] = __shfl_sync(0xffffffffu, lane * 10, 3);
  o[1] = __shfl_up_sync(0xffffffffu, lane * 10, 2);
  o[2] = __shfl_down_sync(0xffffffffu, lane * 10, 2);
  o[3] = __shfl_xor_sync(0xffffffffu, lane * 10, 5);
  o[4] = __shfl_down_sync(0xffffffffu, lane * 10, 2, 8);
  o[5] = int32_t(__ballot_sync(0xffffffffu, lane % 3 == 0));
  o[6] = __any_sync(0xffffffffu, lane == 31);
  o[7] = __all_sync(0xffffffffu, lane < 31);
}

__global__ void half_mask_kernel(bool all_lanes, int lane_mask) {
  if (!all_lanes && threadIdx.x >= 16) return;
  volatile int v = __shfl_xor_sync(0x0000ffffu, int(threadIdx.x), lane_mask);
  (void)v;
}

__global__ void deadlock_kernel() {
  if (threadIdx.x < 16)
    __syncwarp();
  else
    __syncthreads();
}

__global__ void empty_kernel() {}

// Each frame stays live across the call below it (its bytes are read after the call returns),
// so no compiler can turn the recursion into a loop.
__device__ __noinline__ int deep(int n, volatile char* parent) {
  volatile char frame[1024];  // 1000 frames of 1 KB: past any emulated thread's stack
  frame[0] = char(n);
  frame[1023] = parent[0];
  const int below = n ? deep(n - 1, frame) : 0;
  return below + frame[0] + frame[1023];
}
__global__ void overflow_kernel(int* out) {
  volatile char top[1] = {1};
  out[threadIdx.x] = deep(1000, top);
}
}  // namespace

void broadcast(float* out, int threads, bool barrier) {
  broadcast_kernel<<<1, threads>>>(out, barrier);
}
void shuffles(int32_t* out) { shuffle_kernel<<<1, 32>>>(out); }
void lane_outside_mask() { half_mask_kernel<<<1, 32>>>(true, 1); }
void read_of_absent_lane() { half_mask_kernel<<<1, 32>>>(false, 16); }
void deadlock() { deadlock_kernel<<<1, 32>>>(); }
void invalid_launch() { empty_kernel<<<1, 2048>>>(); }
void stack_overflow(int* out) { overflow_kernel<<<1, 2>>>(out); }

}  // namespace emu_selftest
