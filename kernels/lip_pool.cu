// Local importance-based pooling: one thread per output (forward) and per input element (dx,
// the gather form: each element sums its windows' terms in output order, as the CPU's scatter
// adds them, so dx is the CPU's bits where the arithmetic is the host's, as on the emulated
// target; no atomics); dgamma is one block per channel, each thread's sum reduced by cub's
// block reduction in a fixed order. The math is lip_pool_math.cuh.
#include <cub/block/block_reduce.cuh>

#include "elementwise.cuh"
#include "lip_pool.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;

__global__ void lip_pool_forward_kernel(PoolGeom g, const float* __restrict__ gamma,
                                        const float* __restrict__ x, float* __restrict__ y,
                                        size_t outputs) {
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  CP_GRID_STRIDE(o, outputs) {
    const size_t p = o / out_plane, q = o % out_plane;
    const PoolWindowRect r = pool_window_rect(g, int(q / g.OW), int(q % g.OW));
    const float* plane = x + p * in_plane;
    float e[kLipPoolMaxWindow];
    const float den = lip_pool_weights(g, r, plane, gamma[p % g.C], e);
    y[o] = lip_pool_output(g, r, plane, e, den);
  }
}

__global__ void lip_pool_input_grad_kernel(PoolGeom g, const float* __restrict__ gamma,
                                           const float* __restrict__ x,
                                           const float* __restrict__ y,
                                           const float* __restrict__ dy, float* __restrict__ dx,
                                           size_t inputs) {
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  CP_GRID_STRIDE(i, inputs) {
    const size_t p = i / in_plane, at = i % in_plane;
    const int h = int(at / g.W), w = int(at % g.W);
    const float gm = gamma[p % g.C];
    const float* plane = x + p * in_plane;
    const PoolCoverage cover = pool_covering_outputs(g, h, w);
    float sum = 0.f;
    for (int oh = cover.oh_lo; oh <= cover.oh_hi; ++oh)
      for (int ow = cover.ow_lo; ow <= cover.ow_hi; ++ow) {
        const PoolWindowRect r = pool_window_rect(g, oh, ow);
        float e[kLipPoolMaxWindow];
        const float den = lip_pool_weights(g, r, plane, gm, e);
        const int j = (h - r.h_lo) * (r.w_hi - r.w_lo) + (w - r.w_lo);
        const size_t o = p * out_plane + size_t(oh) * g.OW + ow;
        sum += lip_pool_input_grad(e[j], den, plane[at], y[o], gm, dy[o]);
      }
    dx[i] = sum;
  }
}

// Channel c's dgamma, a block a channel (blocks take further channels in turn when the grid is
// smaller than C).
__global__ void __launch_bounds__(kThreads)
    lip_pool_gamma_grad_kernel(PoolGeom g, const float* __restrict__ gamma,
                               const float* __restrict__ x, const float* __restrict__ y,
                               const float* __restrict__ dy, int n, float* __restrict__ dgamma) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const size_t m = size_t(n) * out_plane;
  for (int c = blockIdx.x; c < g.C; c += gridDim.x) {
    const float gm = gamma[c];
    float acc = 0.f;
    for (size_t t = threadIdx.x; t < m; t += kThreads) {
      const size_t p = (t / out_plane) * g.C + c, q = t % out_plane;
      const PoolWindowRect r = pool_window_rect(g, int(q / g.OW), int(q % g.OW));
      const float* plane = x + p * in_plane;
      float e[kLipPoolMaxWindow];
      const float den = lip_pool_weights(g, r, plane, gm, e);
      const float yo = y[p * out_plane + q], d = dy[p * out_plane + q];
      int j = 0;
      for (int h = r.h_lo; h < r.h_hi; ++h)
        for (int w = r.w_lo; w < r.w_hi; ++w, ++j) {
          const float xv = plane[size_t(h) * g.W + w];
          acc += lip_pool_gamma_grad(e[j], den, xv, yo, d);
        }
    }
    const float s = Reduce(tmp).Sum(acc);
    if (threadIdx.x == 0) dgamma[c] = s;
    __syncthreads();  // tmp is read by the next channel's reduction
  }
}
}  // namespace

void lip_pool_forward(const PoolGeom& g, const float* gamma, const float* x, float* y, int n,
                      void* stream) {
  CP_CHECK(lip_pool_window_fits(g),
           "lip_pool: windows of at most 8 columns and 64 positions, not " << g.KH << "x" << g.KW);
  const size_t outputs = size_t(n) * g.C * g.OH * g.OW;
  if (!outputs) return;
  lip_pool_forward_kernel<<<blocks_for(outputs), kThreads, 0, as_stream(stream)>>>(g, gamma, x,
                                                                                    y, outputs);
  CP_CUDA_CHECK_LAUNCH("lip_pool_forward_kernel");
}

void lip_pool_backward(const PoolGeom& g, const float* gamma, const float* x, const float* y,
                       const float* dy, float* dx, float* dgamma, int n, void* stream) {
  CP_CHECK(lip_pool_window_fits(g),
           "lip_pool: windows of at most 8 columns and 64 positions, not " << g.KH << "x" << g.KW);
  const size_t inputs = size_t(n) * g.C * g.H * g.W;
  if (dx && inputs) {
    lip_pool_input_grad_kernel<<<blocks_for(inputs), kThreads, 0, as_stream(stream)>>>(
        g, gamma, x, y, dy, dx, inputs);
    CP_CUDA_CHECK_LAUNCH("lip_pool_input_grad_kernel");
  }
  lip_pool_gamma_grad_kernel<<<g.C, kThreads, 0, as_stream(stream)>>>(g, gamma, x, y, dy, n,
                                                                       dgamma);
  CP_CUDA_CHECK_LAUNCH("lip_pool_gamma_grad_kernel");
}

}  // namespace convpool::cuda
