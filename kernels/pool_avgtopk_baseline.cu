// The vendor-library baseline of Avg-TopK: every window copied out as a segment, the
// segments sorted descending by CUB's segmented sort (src/cuda/pool_baselines.cu), then the
// mean of each segment's first k. It is what a user would write with library parts; `bench
// pool --device cuda` prints it beside our warp partial sort. These two kernels are ours and
// run on the emulated target; the sort between them is CUB's and runs only on a GPU.
#include "cuda/check.h"
#include "pool_avgtopk_baseline.cuh"
#include "pool_math.cuh"

namespace convpool::cuda {

namespace {
// One thread per (output, window element): segment o holds window o's KH*KW values in row
// order. Windows must lie inside the plane (no padding: the baseline's scope).
__global__ void gather_windows_kernel(PoolGeom g, long long outputs, const float* __restrict__ x,
                                      float* __restrict__ segments) {
  const int window = g.KH * g.KW;
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i >= outputs * window) return;
  const long long o = i / window;
  const int j = int(i % window);
  const int ow = int(o % g.OW), oh = int((o / g.OW) % g.OH);
  const long long plane = o / (long long)(g.OW * g.OH);
  const int y = oh * g.SH + j / g.KW, xx = ow * g.SW + j % g.KW;
  segments[i] = x[(plane * g.H + y) * g.W + xx];
}

// One thread per output: the mean of the first k values of its sorted segment, added in
// rank order (the largest first), as our kernels and the CPU add them.
__global__ void mean_of_leading_kernel(long long outputs, int window, int k,
                                       const float* __restrict__ sorted, float* __restrict__ y) {
  const long long o = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (o >= outputs) return;
  const float* s = sorted + o * window;
  float sum = 0.f;
  for (int j = 0; j < k; ++j) sum += s[j];
  y[o] = sum / float(k);
}

unsigned blocks_for(long long threads) { return unsigned((threads + 255) / 256); }
}  // namespace

void gather_windows(const PoolGeom& g, int n, const float* x, float* segments, void* stream) {
  CP_CHECK(g.PH == 0 && g.PW == 0, "gather_windows: padded windows are outside the baseline");
  const long long outputs = (long long)n * g.C * g.OH * g.OW;
  if (outputs == 0) return;
  gather_windows_kernel<<<blocks_for(outputs * g.KH * g.KW), 256, 0, as_stream(stream)>>>(
      g, outputs, x, segments);
  CP_CUDA_CHECK_LAUNCH("gather_windows_kernel");
}

void mean_of_leading(long long outputs, int window, int k, const float* sorted, float* y,
                     void* stream) {
  CP_CHECK(k >= 1 && k <= window, "mean_of_leading: k outside the window");
  if (outputs == 0) return;
  mean_of_leading_kernel<<<blocks_for(outputs), 256, 0, as_stream(stream)>>>(outputs, window, k,
                                                                             sorted, y);
  CP_CUDA_CHECK_LAUNCH("mean_of_leading_kernel");
}

}  // namespace convpool::cuda
