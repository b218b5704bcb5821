// Local importance-based pooling on the CPU: every output and every dx element gets
// lip_pool_math.cuh's result bit for bit (dx summed over the windows in output order, as the
// CUDA gather sums it), a channel per thread so that each channel's dgamma has one order.
// tests/kernel_parity_lip_pool.cpp checks the CUDA kernels against this file.
#include "lip_pool.h"

#include <cstring>

#include "convpool/error.h"

namespace convpool::cpu {

void lip_pool_forward(const PoolGeom& g, const float* gamma, const float* x, float* y, int n) {
  CP_CHECK(lip_pool_window_fits(g),
           "lip_pool: windows of at most 8 columns and 64 positions, not " << g.KH << "x" << g.KW);
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const long planes = long(n) * g.C;
#pragma omp parallel for schedule(static) if (planes * long(out_plane) * g.KH * g.KW > 32768)
  for (long p = 0; p < planes; ++p) {
    const float gm = gamma[p % g.C];
    const float* plane = x + size_t(p) * in_plane;
    float* out = y + size_t(p) * out_plane;
    float e[kLipPoolMaxWindow];
    for (int oh = 0; oh < g.OH; ++oh)
      for (int ow = 0; ow < g.OW; ++ow) {
        const PoolWindowRect r = pool_window_rect(g, oh, ow);
        const float den = lip_pool_weights(g, r, plane, gm, e);
        out[size_t(oh) * g.OW + ow] = lip_pool_output(g, r, plane, e, den);
      }
  }
}

void lip_pool_backward(const PoolGeom& g, const float* gamma, const float* x, const float* y,
                       const float* dy, float* dx, float* dgamma, int n) {
  CP_CHECK(lip_pool_window_fits(g),
           "lip_pool: windows of at most 8 columns and 64 positions, not " << g.KH << "x" << g.KW);
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
#pragma omp parallel for schedule(static) if (long(n) * g.C * long(out_plane) * g.KH * g.KW > 32768)
  for (int c = 0; c < g.C; ++c) {
    const float gm = gamma[c];
    float e[kLipPoolMaxWindow];
    float acc = 0.f;
    for (int i = 0; i < n; ++i) {
      const size_t p = size_t(i) * g.C + c;
      const float* plane = x + p * in_plane;
      float* dxp = dx ? dx + p * in_plane : nullptr;
      if (dxp) std::memset(dxp, 0, in_plane * sizeof(float));
      for (int oh = 0; oh < g.OH; ++oh)
        for (int ow = 0; ow < g.OW; ++ow) {
          const PoolWindowRect r = pool_window_rect(g, oh, ow);
          const float den = lip_pool_weights(g, r, plane, gm, e);
          const size_t o = p * out_plane + size_t(oh) * g.OW + ow;
          const float yo = y[o], d = dy[o];
          int j = 0;
          for (int h = r.h_lo; h < r.h_hi; ++h)
            for (int w = r.w_lo; w < r.w_hi; ++w, ++j) {
              const size_t at = size_t(h) * g.W + w;
              const float xv = plane[at];
              if (dxp) dxp[at] += lip_pool_input_grad(e[j], den, xv, yo, gm, d);
              acc += lip_pool_gamma_grad(e[j], den, xv, yo, d);
            }
        }
    }
    dgamma[c] = acc;
  }
}

}  // namespace convpool::cpu
