// The lane model: warp algorithms are written once against this small interface and run
// either on a real warp (DeviceWarp: one register per thread, __shfl_xor_sync) or on the CPU
// (HostWarp: all 32 lanes as arrays, stepped in lockstep), so CI executes the exact code
// path the GPU runs.
//
//   Warp::Reg<T>        a value per lane; r[lane] reads or writes a lane's copy
//   w.for_lanes(f)      runs f(lane) for every lane (on a warp: once, for its own lane)
//   w.shfl_xor(r, m)    each lane receives r from lane ^ m
//   w.any_lane(r)       the value of r at lane 0 (callers use it once all lanes agree)
#pragma once
#include "hd.cuh"

namespace convpool {

constexpr int kWarpLanes = 32;

#if defined(__CUDACC__)
struct DeviceWarp {
  template <class T>
  struct Reg {
    T value;
    __device__ __forceinline__ T& operator[](int) { return value; }
    __device__ __forceinline__ const T& operator[](int) const { return value; }
  };
  __device__ __forceinline__ static int lane() { return int(threadIdx.x) & (kWarpLanes - 1); }
  template <class F>
  __device__ __forceinline__ void for_lanes(F&& f) const {
    f(lane());
  }
  template <class T>
  __device__ __forceinline__ Reg<T> shfl_xor(const Reg<T>& r, int mask) const {
    return Reg<T>{__shfl_xor_sync(0xffffffffu, r.value, mask)};
  }
  template <class T>
  __device__ __forceinline__ T any_lane(const Reg<T>& r) const {
    return __shfl_sync(0xffffffffu, r.value, 0);
  }
};
#endif

struct HostWarp {
  template <class T>
  struct Reg {
    T value[kWarpLanes];
    T& operator[](int lane) { return value[lane]; }
    const T& operator[](int lane) const { return value[lane]; }
  };
  template <class F>
  void for_lanes(F&& f) const {
    for (int lane = 0; lane < kWarpLanes; ++lane) f(lane);
  }
  template <class T>
  Reg<T> shfl_xor(const Reg<T>& r, int mask) const {
    Reg<T> out;
    for (int lane = 0; lane < kWarpLanes; ++lane) out[lane] = r[lane ^ mask];
    return out;
  }
  template <class T>
  T any_lane(const Reg<T>& r) const {
    return r[0];
  }
};

}  // namespace convpool
