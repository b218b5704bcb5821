// Pooling of large windows (more than kPoolSmallWindow elements, up to kPoolWarpWindow) that
// do not overlap, global pooling among them: one warp per window. The warp gathers the window
// into shared memory with coalesced loads, finds the method's selection (max, top k) with the
// warp-level partial sort of pool_avgtopk_select.cuh (the code the CPU lane-model tests run), then
// lane 0 applies the shared window formula: the CPU's float operations in the CPU's order.
// That is bit for bit on the emulated target (compiled with -ffp-contract=off); on a GPU,
// nvcc contracts a*b+c into FMA and CUDA's expf/powf/logf differ from glibc's in the last
// bits, so results there are within the parity tolerance, and bit-identical from run to run
// (no atomics, a fixed order). Forward keeps the selection per output; backward recomputes
// nothing but the window formula and writes dx directly (windows do not overlap).
#include <cstdlib>
#include <string>

#include "cuda/check.h"
#include "pool.cuh"
#include "pool_launch.cuh"
#include "pool_avgtopk_select.cuh"

namespace convpool::cuda {

namespace {

constexpr int kWarpsPerBlock = 4;

// Which warp partial sort selects (kernels/pool_avgtopk_select.cuh). `automatic` follows a cost model
// (rounds ~ r * (n/32 + 10) steps, bitonic ~ 42 * n/32), not a measurement: no GPU has run
// these yet. CONVPOOL_WARP_SELECT=rounds|bitonic forces one, for benchmarking both.
enum class SelectAlgo : int { automatic, rounds, bitonic };

SelectAlgo select_algo() {
  static const SelectAlgo algo = [] {
    const char* env = std::getenv("CONVPOOL_WARP_SELECT");
    const std::string s = env ? env : "";
    if (s == "rounds") return SelectAlgo::rounds;
    if (s == "bitonic") return SelectAlgo::bitonic;
    if (!s.empty() && s != "auto")
      CP_USER_ERROR("CONVPOOL_WARP_SELECT must be auto, rounds or bitonic (got '" << s << "')");
    return SelectAlgo::automatic;
  }();
  return algo;
}

__device__ void select_top(SelectAlgo algo, const float* v, int n, int r, int* ranked) {
  const DeviceWarp w;
  const int chunks = (n + kWarpLanes - 1) / kWarpLanes;
  const bool bitonic =
      r <= kWarpLanes && (algo == SelectAlgo::bitonic ||
                          (algo == SelectAlgo::automatic && 42 * chunks < r * (chunks + 10)));
  if (bitonic)
    warp_rank_top_bitonic(w, v, n, r, ranked);
  else
    warp_rank_top(w, v, n, r, ranked);
}

// Where the valid (unpadded) part of window (oh, ow) lies: rows [h0, h1), columns [w0, w1).
struct WindowRect {
  int h0, h1, w0, w1;
  __device__ int count() const { return (h1 - h0) * (w1 - w0); }
  // The plane offset of the e-th valid element, in pool_gather_window's row-major order.
  __device__ int offset(int e, int W) const {
    const int vw = w1 - w0;
    return (h0 + e / vw) * W + w0 + e % vw;
  }
};

__device__ WindowRect window_rect(const PoolGeom& g, int oh, int ow) {
  const int h = oh * g.SH - g.PH, w = ow * g.SW - g.PW;
  return {max(h, 0), min(h + g.KH, g.H), max(w, 0), min(w + g.KW, g.W)};
}

struct WarpOutput {
  size_t oi, plane;
  int oh, ow;
};

__device__ WarpOutput decompose(const PoolGeom& g, size_t oi) {
  return {oi, oi / (size_t(g.OH) * g.OW), int((oi / g.OW) % g.OH), int(oi % g.OW)};
}

// The warp loads window (o.oh, o.ow) of its plane into `values` (coalesced along rows, the
// fused ReLU applied); returns the window's valid count. All lanes call it.
__device__ int warp_load_window(const PoolGeom& g, const float* x, const WarpOutput& o,
                                const WindowRect& r, float* values, int lane) {
  const float* plane = x + o.plane * g.H * g.W;
  const int cnt = r.count();
  for (int e = lane; e < cnt; e += kWarpLanes) values[e] = pool_input(g, plane[r.offset(e, g.W)]);
  __syncwarp();
  return cnt;
}

__global__ void pool_forward_warp_kernel(PoolLaunch L, int planes, const float* __restrict__ x,
                                         float* __restrict__ y, int32_t* __restrict__ ranked_out,
                                         int ranks, SelectAlgo algo) {
  __shared__ float values[kWarpsPerBlock][kPoolWarpWindow];
  __shared__ int ranked[kWarpsPerBlock][kPoolMaxTopK];
  const PoolGeom& g = L.g;
  const int warp = threadIdx.x / kWarpLanes, lane = threadIdx.x % kWarpLanes;
  const size_t total = size_t(planes) * g.OH * g.OW;
  // Every lane of a warp runs the same iterations: the shuffles and __syncwarp stay uniform.
  for (size_t oi = size_t(blockIdx.x) * kWarpsPerBlock + warp; oi < total;
       oi += size_t(gridDim.x) * kWarpsPerBlock) {
    const WarpOutput o = decompose(g, oi);
    const WindowRect r = window_rect(g, o.oh, o.ow);
    const int cnt = warp_load_window(g, x, o, r, values[warp], lane);
    const PoolWindowParams p = params_for(L, oi);
    const int need = pool_ranks_needed(p, cnt);
    if (need > 0) select_top(algo, values[warp], cnt, need, ranked[warp]);
    __syncwarp();
    if (lane == 0) {
      y[oi] = pool_window_forward_ranked(p, values[warp], cnt, g.include_pad ? g.KH * g.KW : cnt,
                                         ranked[warp]);
      for (int i = 0; i < ranks; ++i) ranked_out[oi * ranks + i] = i < need ? ranked[warp][i] : -1;
    }
    __syncwarp();  // the buffers are reused by the next window
  }
}

__global__ void pool_backward_warp_kernel(PoolLaunch L, int planes, const float* __restrict__ x,
                                          const float* __restrict__ y, const float* __restrict__ dy,
                                          float* __restrict__ dx,
                                          const int32_t* __restrict__ ranked_in, int ranks) {
  __shared__ float values[kWarpsPerBlock][kPoolWarpWindow];
  __shared__ float grads[kWarpsPerBlock][kPoolWarpWindow];
  __shared__ int ranked[kWarpsPerBlock][kPoolMaxTopK];
  const PoolGeom& g = L.g;
  const int warp = threadIdx.x / kWarpLanes, lane = threadIdx.x % kWarpLanes;
  const size_t total = size_t(planes) * g.OH * g.OW;
  for (size_t oi = size_t(blockIdx.x) * kWarpsPerBlock + warp; oi < total;
       oi += size_t(gridDim.x) * kWarpsPerBlock) {
    const WarpOutput o = decompose(g, oi);
    const WindowRect r = window_rect(g, o.oh, o.ow);
    const size_t base = o.plane * g.H * g.W;
    for (int i = lane; i < ranks; i += kWarpLanes) ranked[warp][i] = ranked_in[oi * ranks + i];
    const int cnt = warp_load_window(g, x, o, r, values[warp], lane);  // syncs the warp
    if (lane == 0)
      pool_window_backward_ranked(params_for(L, oi), values[warp], cnt,
                                  g.include_pad ? g.KH * g.KW : cnt, ranked[warp], y[oi], dy[oi],
                                  grads[warp]);
    __syncwarp();
    for (int e = lane; e < cnt; e += kWarpLanes) {
      const size_t at = base + r.offset(e, g.W);
      dx[at] = pool_input_grad(g, x[at], grads[warp][e]);
    }
    __syncwarp();  // redundant-barrier: the barriers of the load and of grads already order
                   // every reuse of the buffers (docs/emulation.md); kept against reordering
  }
}

unsigned blocks_for(size_t windows) {
  return unsigned(std::min<size_t>((windows + kWarpsPerBlock - 1) / kWarpsPerBlock, 65535));
}

}  // namespace

void pool_forward_warp(const PoolLaunch& L, int planes, const float* x, float* y, int32_t* ranked,
                       void* stream) {
  const int ranks = pool_ranks_needed(L.p, L.g.KH * L.g.KW);
  CP_CHECK(ranks == 0 || ranked, "large-window pooling needs its selection state");
  const size_t windows = size_t(planes) * L.g.OH * L.g.OW;
  pool_forward_warp_kernel<<<blocks_for(windows), kWarpsPerBlock * kWarpLanes, 0,
                             as_stream(stream)>>>(L, planes, x, y, ranked, ranks, select_algo());
  CP_CUDA_CHECK_LAUNCH("pool_forward_warp_kernel");
}

void pool_backward_warp(const PoolLaunch& L, int planes, const float* x, const float* y,
                        const float* dy, float* dx, const int32_t* ranked, void* stream) {
  const PoolGeom& g = L.g;
  const int ranks = pool_ranks_needed(L.p, g.KH * g.KW);
  // As in forward: the kernel reads the selection forward kept, and writes dx.
  CP_CHECK(ranks == 0 || ranked, "large-window pooling backward needs its forward's selection");
  CP_CHECK(dx, "large-window pooling backward needs dx");
  // Elements no window covers (stride above the window, or a remainder) get zero gradient.
  const bool covers_all = g.SH == g.KH && g.SW == g.KW && g.PH == 0 && g.PW == 0 &&
                          g.OH * g.KH == g.H && g.OW * g.KW == g.W;
  if (!covers_all)
    CP_CUDA_CHECK(
        cudaMemsetAsync(dx, 0, sizeof(float) * size_t(planes) * g.H * g.W, as_stream(stream)));
  const size_t windows = size_t(planes) * g.OH * g.OW;
  pool_backward_warp_kernel<<<blocks_for(windows), kWarpsPerBlock * kWarpLanes, 0,
                              as_stream(stream)>>>(L, planes, x, y, dy, dx, ranked, ranks);
  CP_CUDA_CHECK_LAUNCH("pool_backward_warp_kernel");
}

}  // namespace convpool::cuda
