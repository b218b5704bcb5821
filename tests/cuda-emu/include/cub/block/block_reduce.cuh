// cub::BlockReduce stand-in for the emulated target: the same interface as the calls in
// kernels/ use (TempStorage in __shared__, Sum and Reduce, result valid in thread 0), built on
// the emulator's own __syncthreads, so a kernel that reuses TempStorage without a barrier
// shows the race here too. It sums in thread order, not in cub's tree order: results may
// differ from the GPU's in the last bits (docs/emulation.md).
#pragma once
#include <cstdio>
#include <cstdlib>

namespace cub {

template <class T, int kThreads, int = 0, int kDimY = 1, int kDimZ = 1>
class BlockReduce {
  static constexpr int kCount = kThreads * kDimY * kDimZ;

 public:
  struct TempStorage {
    T partial[kCount];
  };
  explicit BlockReduce(TempStorage& s) : s_(s) {}

  T Sum(T v) {
    return Reduce(v, [](const T& a, const T& b) { return a + b; });
  }
  template <class Op>
  T Reduce(T v, Op op) {
    const int tid = int(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
    if (int(blockDim.x * blockDim.y * blockDim.z) != kCount) {
      std::fprintf(stderr, "cuda-emu: cub::BlockReduce<%d> in a block of %u threads\n", kCount,
                   blockDim.x * blockDim.y * blockDim.z);
      std::abort();
    }
    s_.partial[tid] = v;
    __syncthreads();
    T r = v;
    if (tid == 0)
      for (int i = 1; i < kCount; ++i) r = op(r, s_.partial[i]);
    return r;  // as in cub: reusing the storage needs a __syncthreads first
  }

 private:
  TempStorage& s_;
};

}  // namespace cub
