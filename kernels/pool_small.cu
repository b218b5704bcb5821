// Pooling kernels for windows of up to kPoolSmallWindow elements (larger ones go to
// kernels/pool_warp.cu), every method: one thread per
// output in forward, one thread per input element in backward (gather form: each input sums
// the gradients of the windows covering it, so overlapping windows need no atomics and the
// result is deterministic). The window math is kernels/pool_math.cuh, shared with the CPU.
#include <cub/block/block_reduce.cuh>

#include "cuda/check.h"
#include "pool.cuh"
#include "philox.cuh"
#include "pool_launch.cuh"
#include "pool_math.cuh"

namespace convpool::cuda {

namespace {

constexpr int kMaxWindow = kPoolSmallWindow;

__global__ void pool_forward_kernel(PoolLaunch L, int planes, const float* __restrict__ x,
                                    float* __restrict__ y) {
  const PoolGeom& g = L.g;
  const size_t total = size_t(planes) * g.OH * g.OW;
  float v[kMaxWindow];
  for (size_t oi = blockIdx.x * size_t(blockDim.x) + threadIdx.x; oi < total;
       oi += size_t(gridDim.x) * blockDim.x) {
    const int ow = int(oi % g.OW), oh = int((oi / g.OW) % g.OH);
    const size_t pl = oi / (size_t(g.OH) * g.OW);
    const int cnt = pool_gather_window(g, x + pl * g.H * g.W, oh, ow, v, nullptr);
    y[oi] = pool_window_forward(params_for(L, oi), v, cnt, g.include_pad ? g.KH * g.KW : cnt);
  }
}

__global__ void pool_backward_kernel(PoolLaunch L, int planes, const float* __restrict__ x,
                                     const float* __restrict__ y, const float* __restrict__ dy,
                                     float* __restrict__ dx) {
  const PoolGeom& g = L.g;
  const size_t total = size_t(planes) * g.H * g.W;
  float v[kMaxWindow], gr[kMaxWindow];
  for (size_t ii = blockIdx.x * size_t(blockDim.x) + threadIdx.x; ii < total;
       ii += size_t(gridDim.x) * blockDim.x) {
    const int w = int(ii % g.W), h = int((ii / g.W) % g.H);
    const size_t pl = ii / (size_t(g.H) * g.W);
    const float* plane = x + pl * g.H * g.W;
    const PoolCoverage cover = pool_covering_outputs(g, h, w);
    float sum = 0.f;
    for (int oh = cover.oh_lo; oh <= cover.oh_hi; ++oh)
      for (int ow = cover.ow_lo; ow <= cover.ow_hi; ++ow) {
        const int pos = pool_window_position(g, oh, ow, h, w);
        if (pos < 0) continue;
        const int cnt = pool_gather_window(g, plane, oh, ow, v, nullptr);
        const size_t oi = (pl * g.OH + oh) * g.OW + ow;
        pool_window_backward(params_for(L, oi), v, cnt, g.include_pad ? g.KH * g.KW : cnt, y[oi],
                             dy[oi], gr);
        sum += gr[pos];
      }
    dx[ii] = pool_input_grad(g, plane[h * g.W + w], sum);
  }
}

// d(alpha) for learned mixed pooling: sigma'(alpha) * sum dy * (max - avg), reduced by one
// block in a fixed order (deterministic).
// __launch_bounds__: without it nvcc may give a thread more registers than a 1024-thread
// block can have, and the launch fails on the GPU (compile-only: the emulator ignores it).
template <int kThreads>
__global__ void __launch_bounds__(kThreads)
    pool_dalpha_kernel(PoolLaunch L, int planes, const float* __restrict__ x,
                       const float* __restrict__ dy, float* __restrict__ dalpha) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const PoolGeom& g = L.g;
  const size_t total = size_t(planes) * g.OH * g.OW;
  float v[kMaxWindow];
  float s = 0.f;
  for (size_t oi = threadIdx.x; oi < total; oi += kThreads) {
    const int ow = int(oi % g.OW), oh = int((oi / g.OW) % g.OH);
    const size_t pl = oi / (size_t(g.OH) * g.OW);
    const int cnt = pool_gather_window(g, x + pl * g.H * g.W, oh, ow, v, nullptr);
    const int divisor = g.include_pad ? g.KH * g.KW : cnt;
    s += dy[oi] * (v[pool_argmax(v, cnt)] - pool_mean(v, cnt, divisor));
  }
  const float total_sum = Reduce(tmp).Sum(s);
  if (threadIdx.x == 0) {
    const float lambda = 1.f / (1.f + expf(-L.alpha[0]));
    dalpha[0] = total_sum * lambda * (1.f - lambda);
  }
}

PoolLaunch make_launch(const PoolGeom& g, const PoolWindowParams& p, uint64_t seed, uint32_t layer,
                       const uint64_t* step, const float* alpha) {
  if (pool_uses_warp_kernels(g)) {
    if (g.KH * g.KW > kPoolWarpWindow)
      CP_USER_ERROR("CUDA pooling supports windows of up to "
                    << kPoolWarpWindow << " elements (got " << g.KH << "x" << g.KW
                    << "); use --device cpu");
    // Windows overlap only where a stride below the window meets a second output along it.
    if ((g.SH < g.KH && g.OH > 1) || (g.SW < g.KW && g.OW > 1))
      CP_USER_ERROR("CUDA pooling supports overlapping windows of up to "
                    << kMaxWindow << " elements (got " << g.KH << "x" << g.KW << " stride " << g.SH
                    << "x" << g.SW << "); use --device cpu");
    // d(alpha) is pool_dalpha_kernel's, which gathers windows of up to kMaxWindow elements
    // (global pooling of small planes takes the warp family too).
    if (alpha && g.KH * g.KW > kMaxWindow)
      CP_USER_ERROR("CUDA: learned mixed pooling supports windows of up to "
                    << kMaxWindow << " elements; use --device cpu");
  }
  CP_CHECK(step != nullptr, "CUDA pooling needs the device step counter");
  return {g, p, seed, layer, step, alpha};
}

constexpr unsigned kThreads = 256;

}  // namespace

void pool_forward(const PoolGeom& g, const PoolWindowParams& p, uint64_t seed, uint32_t layer,
                  const uint64_t* step, const float* alpha, int n, const float* x, float* y,
                  int32_t* ranked, void* stream, uint64_t first_output) {
  PoolLaunch L = make_launch(g, p, seed, layer, step, alpha);
  L.first_output = first_output;
  const size_t total = size_t(n) * g.C * g.OH * g.OW;
  if (!total) return;
  if (pool_uses_warp_kernels(g)) return pool_forward_warp(L, n * g.C, x, y, ranked, stream);
  pool_forward_kernel<<<std::min(ceil_div(total, kThreads), 65535u), kThreads, 0,
                        as_stream(stream)>>>(L, n * g.C, x, y);
  CP_CUDA_CHECK_LAUNCH("pool_forward_kernel");
}

void pool_backward(const PoolGeom& g, const PoolWindowParams& p, uint64_t seed, uint32_t layer,
                   const uint64_t* step, const float* alpha, int n, const float* x, const float* y,
                   const float* dy, float* dx, float* dalpha, const int32_t* ranked, void* stream,
                   uint64_t first_output) {
  PoolLaunch L = make_launch(g, p, seed, layer, step, alpha);
  L.first_output = first_output;
  const size_t total = size_t(n) * g.C * g.H * g.W;
  if (!total) return;
  if (pool_uses_warp_kernels(g)) {
    if (dx) pool_backward_warp(L, n * g.C, x, y, dy, dx, ranked, stream);
  } else if (dx) {  // null when the pooling layer is the first layer
    pool_backward_kernel<<<std::min(ceil_div(total, kThreads), 65535u), kThreads, 0,
                           as_stream(stream)>>>(L, n * g.C, x, y, dy, dx);
    CP_CUDA_CHECK_LAUNCH("pool_backward_kernel");
  }
  if (alpha && dalpha) {
    pool_dalpha_kernel<1024><<<1, 1024, 0, as_stream(stream)>>>(L, n * g.C, x, dy, dalpha);
    CP_CUDA_CHECK_LAUNCH("pool_dalpha_kernel");
  }
}

}  // namespace convpool::cuda
