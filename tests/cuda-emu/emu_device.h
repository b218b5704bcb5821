// Force-included into every kernels/*.cu of the emulated target (after tests/cuda-emu/rewrite
// has turned its launches into cuda_emu::Launch calls): the CUDA language as the kernels use
// it, on the host. Each CUDA thread is a fiber (tests/cuda-emu/runtime.cpp); barriers, warp
// shuffles and votes are real rendezvous of the participating lanes, and the runtime aborts
// with a report on a lane outside its mask, a read of a lane that did not take part, or a
// deadlock. What this can and cannot show: docs/emulation.md.
#pragma once
// The library headers first: they use attribute spellings (__noinline__) defined below.
#include <functional>
#include <memory>
#include <mutex>

#define __CUDACC__ 1
#define __CUDA_ARCH__ 900
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
// __shared__ is rewritten by tests/cuda-emu/rewrite; this only covers a stray use.
#define __shared__ static

#include <math.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime.h"
#include "emu_api.h"

extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

namespace cuda_emu {

// What the rewriter turns `k<<<grid, block, smem, stream>>>(args)` into. Arguments are converted
// to the kernel's parameter types once, at launch, as CUDA copies them into parameter space.
struct Launch {
  const char *name, *file;
  int line;
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  Launch(const char* n, const char* f, int l, dim3 g, dim3 b, size_t sm = 0,
         cudaStream_t st = nullptr)
      : name(n), file(f), line(l), grid(g), block(b), smem(sm), stream(st) {}
  template <class... P, class... A>
  void operator()(void (*kernel)(P...), A&&... args) const {
    static_assert(sizeof...(P) == sizeof...(A), "wrong number of kernel arguments");
    struct Ctx {
      void (*kernel)(P...);
      std::tuple<std::decay_t<P>...> args;
    };
    // Owned by the queued operation (and by a graph that captures it): the launch returns
    // before the kernel runs.
    auto ctx = std::make_shared<Ctx>(Ctx{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)});
    run_grid(
        name, file, line, grid, block, smem, stream,
        [](void* c) {
          auto* x = static_cast<Ctx*>(c);
          std::apply(x->kernel, x->args);
        },
        std::move(ctx));
  }
};

template <class T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a wide type");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof v);
  return b;
}
template <class T>
T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

}  // namespace cuda_emu

inline void __syncthreads() { cuda_emu::sync_block(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  cuda_emu::warp_collective(cuda_emu::WarpOp::sync, mask, 0, 0, warpSize);
}
template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = warpSize) {
  using namespace cuda_emu;
  return from_bits<T>(warp_collective(WarpOp::shfl_idx, mask, to_bits(v), src, width));
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
  using namespace cuda_emu;
  return from_bits<T>(warp_collective(WarpOp::shfl_up, mask, to_bits(v), int(delta), width));
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
  using namespace cuda_emu;
  return from_bits<T>(warp_collective(WarpOp::shfl_down, mask, to_bits(v), int(delta), width));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) {
  using namespace cuda_emu;
  return from_bits<T>(warp_collective(WarpOp::shfl_xor, mask, to_bits(v), lane_mask, width));
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return unsigned(cuda_emu::warp_collective(cuda_emu::WarpOp::ballot, mask, pred != 0, 0, 32));
}
inline int __any_sync(unsigned mask, int pred) {
  return int(cuda_emu::warp_collective(cuda_emu::WarpOp::any, mask, pred != 0, 0, 32));
}
inline int __all_sync(unsigned mask, int pred) {
  return int(cuda_emu::warp_collective(cuda_emu::WarpOp::all, mask, pred != 0, 0, 32));
}

// Atomics. Fibers of a block share one OS thread and switch only at barriers, so these are
// atomic already; std::atomic_ref keeps them right should blocks ever run in parallel.
template <class T>
T atomicAdd(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_add(v);
}
template <class T>
T atomicSub(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_sub(v);
}
template <class T>
T atomicExch(T* p, T v) {
  return std::atomic_ref<T>(*p).exchange(v);
}
template <class T>
T atomicCAS(T* p, T expected, T desired) {
  std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired);
  return expected;
}
template <class T>
T atomicMin(T* p, T v) {
  std::atomic_ref<T> a(*p);
  T old = a.load();
  while (v < old && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
template <class T>
T atomicMax(T* p, T v) {
  std::atomic_ref<T> a(*p);
  T old = a.load();
  while (v > old && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}

// Device integer and float min/max (CUDA declares them globally).
#define CUDA_EMU_MINMAX(T)                         \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
CUDA_EMU_MINMAX(int)
CUDA_EMU_MINMAX(unsigned)
CUDA_EMU_MINMAX(long)
CUDA_EMU_MINMAX(unsigned long)
CUDA_EMU_MINMAX(long long)
CUDA_EMU_MINMAX(unsigned long long)
#undef CUDA_EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

// Correctly rounded arithmetic intrinsics: plain IEEE operations on the host (no contraction;
// the emulated build passes -ffp-contract=off).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float a) { return 1.f / a; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __expf(float a) { return expf(a); }
inline float __logf(float a) { return logf(a); }
inline float __powf(float a, float b) { return powf(a, b); }
inline float rsqrtf(float a) { return 1.f / sqrtf(a); }
inline int __float_as_int(float f) { return __builtin_bit_cast(int, f); }
inline float __int_as_float(int i) { return __builtin_bit_cast(float, i); }
inline unsigned __float_as_uint(float f) { return __builtin_bit_cast(unsigned, f); }
inline float __uint_as_float(unsigned i) { return __builtin_bit_cast(float, i); }
