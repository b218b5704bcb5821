// Weighted pooling: one thread per output (forward) and per input element (dx, the gather
// form: each element sums its windows' terms in output order, as the CPU's scatter adds them,
// so dx is the CPU's bits where the arithmetic is the host's, as on the emulated target; no
// atomics); the logit gradient is one block per channel, each thread's per-position sums
// reduced by cub's block reduction in a fixed order. The math is weighted_pool_math.cuh.
#include <cub/block/block_reduce.cuh>

#include "elementwise.cuh"
#include "weighted_pool.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;

__global__ void weighted_pool_forward_kernel(PoolGeom g, const float* __restrict__ logits,
                                             bool shared, const float* __restrict__ x,
                                             float* __restrict__ y, size_t outputs) {
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const int K = g.KH * g.KW;
  CP_GRID_STRIDE(o, outputs) {
    const size_t p = o / out_plane, q = o % out_plane;
    const float* lg = logits + (shared ? 0 : (p % g.C) * K);
    const PoolWindowRect r = pool_window_rect(g, int(q / g.OW), int(q % g.OW));
    float e[kWeightedPoolMaxWindow];
    const float den = weighted_pool_weights(g, r, lg, e);
    y[o] = weighted_pool_output(g, r, x + p * in_plane, e, den);
  }
}

__global__ void weighted_pool_input_grad_kernel(PoolGeom g, const float* __restrict__ logits,
                                                bool shared, const float* __restrict__ dy,
                                                float* __restrict__ dx, size_t inputs) {
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const int K = g.KH * g.KW;
  CP_GRID_STRIDE(i, inputs) {
    const size_t p = i / in_plane, at = i % in_plane;
    const int h = int(at / g.W), w = int(at % g.W);
    const float* lg = logits + (shared ? 0 : (p % g.C) * K);
    const PoolCoverage cover = pool_covering_outputs(g, h, w);
    float sum = 0.f;
    for (int oh = cover.oh_lo; oh <= cover.oh_hi; ++oh)
      for (int ow = cover.ow_lo; ow <= cover.ow_hi; ++ow) {
        const PoolWindowRect r = pool_window_rect(g, oh, ow);
        float e[kWeightedPoolMaxWindow];
        const float den = weighted_pool_weights(g, r, lg, e);
        const int j = (h - r.h_lo) * (r.w_hi - r.w_lo) + (w - r.w_lo);
        sum += weighted_pool_input_grad(e[j], den, dy[p * out_plane + size_t(oh) * g.OW + ow]);
      }
    dx[i] = sum;
  }
}

// Channel c's logit gradient (KH x KW floats) to out + c * KH * KW, a block a channel (blocks
// take further channels in turn when the grid is smaller than C).
__global__ void __launch_bounds__(kThreads)
    weighted_pool_logit_grad_kernel(PoolGeom g, const float* __restrict__ logits, bool shared,
                                    const float* __restrict__ x, const float* __restrict__ y,
                                    const float* __restrict__ dy, int n, float* __restrict__ out) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const int K = g.KH * g.KW;
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const size_t m = size_t(n) * out_plane;
  for (int c = blockIdx.x; c < g.C; c += gridDim.x) {
    const float* lg = logits + (shared ? 0 : size_t(c) * K);
    float acc[kWeightedPoolMaxWindow];
    for (int k = 0; k < K; ++k) acc[k] = 0.f;
    for (size_t t = threadIdx.x; t < m; t += kThreads) {
      const size_t p = (t / out_plane) * g.C + c, q = t % out_plane;
      const PoolWindowRect r = pool_window_rect(g, int(q / g.OW), int(q % g.OW));
      float e[kWeightedPoolMaxWindow];
      const float den = weighted_pool_weights(g, r, lg, e);
      const float* plane = x + p * in_plane;
      const float yo = y[p * out_plane + q], d = dy[p * out_plane + q];
      int j = 0;
      for (int h = r.h_lo; h < r.h_hi; ++h)
        for (int w = r.w_lo; w < r.w_hi; ++w, ++j)
          acc[r.k0 + (h - r.h_lo) * g.KW + (w - r.w_lo)] +=
              weighted_pool_logit_grad(e[j], den, plane[size_t(h) * g.W + w], yo, d);
    }
    for (int k = 0; k < K; ++k) {
      const float s = Reduce(tmp).Sum(acc[k]);
      if (threadIdx.x == 0) out[size_t(c) * K + k] = s;
      __syncthreads();  // tmp is read by the next reduction
    }
  }
}

// The shared logits' gradient: the channels' sums added in channel order.
__global__ void weighted_pool_sum_channels_kernel(const float* __restrict__ per_channel, int c,
                                                  int k_count, float* __restrict__ out) {
  CP_GRID_STRIDE(k, size_t(k_count)) {
    float s = 0.f;
    for (int ch = 0; ch < c; ++ch) s += per_channel[size_t(ch) * k_count + k];
    out[k] = s;
  }
}
}  // namespace

void weighted_pool_forward(const PoolGeom& g, const float* logits, bool shared, const float* x,
                           float* y, int n, void* stream) {
  CP_CHECK(weighted_pool_window_fits(g),
           "weighted_pool: windows of at most 8 columns and 64 positions, not "
               << g.KH << "x" << g.KW);
  const size_t outputs = size_t(n) * g.C * g.OH * g.OW;
  if (!outputs) return;
  weighted_pool_forward_kernel<<<blocks_for(outputs), kThreads, 0, as_stream(stream)>>>(
      g, logits, shared, x, y, outputs);
  CP_CUDA_CHECK_LAUNCH("weighted_pool_forward_kernel");
}

void weighted_pool_backward(const PoolGeom& g, const float* logits, bool shared, const float* x,
                            const float* y, const float* dy, float* dx, float* dlogits, int n,
                            float* scratch, void* stream) {
  CP_CHECK(weighted_pool_window_fits(g),
           "weighted_pool: windows of at most 8 columns and 64 positions, not "
               << g.KH << "x" << g.KW);
  const size_t inputs = size_t(n) * g.C * g.H * g.W;
  if (dx && inputs) {
    weighted_pool_input_grad_kernel<<<blocks_for(inputs), kThreads, 0, as_stream(stream)>>>(
        g, logits, shared, dy, dx, inputs);
    CP_CUDA_CHECK_LAUNCH("weighted_pool_input_grad_kernel");
  }
  const int K = g.KH * g.KW;
  weighted_pool_logit_grad_kernel<<<g.C, kThreads, 0, as_stream(stream)>>>(
      g, logits, shared, x, y, dy, n, shared ? scratch : dlogits);
  CP_CUDA_CHECK_LAUNCH("weighted_pool_logit_grad_kernel");
  if (shared) {
    weighted_pool_sum_channels_kernel<<<blocks_for(size_t(K)), kThreads, 0, as_stream(stream)>>>(
        scratch, g.C, K, dlogits);
    CP_CUDA_CHECK_LAUNCH("weighted_pool_sum_channels_kernel");
  }
}

}  // namespace convpool::cuda
