#include "pool.h"

#include <vector>

#include "../../kernels/philox.cuh"

namespace convpool::cpu {

namespace {

// Gathers the valid values of window (oh, ow) of one plane; returns their count and fills
// src with their plane offsets.
int gather_window(const PoolGeom& g, const float* plane, int oh, int ow, float* v, int* src) {
  int n = 0;
  const int h0 = oh * g.SH - g.PH, w0 = ow * g.SW - g.PW;
  for (int kh = 0; kh < g.KH; ++kh) {
    const int h = h0 + kh;
    if (h < 0 || h >= g.H) continue;
    for (int kw = 0; kw < g.KW; ++kw) {
      const int w = w0 + kw;
      if (w < 0 || w >= g.W) continue;
      v[n] = plane[h * g.W + w];
      src[n++] = h * g.W + w;
    }
  }
  return n;
}

PoolWindowParams for_window(PoolWindowParams p, const PoolRng& rng, uint64_t out_index) {
  if (p.method == PoolMethod::stochastic && p.training)
    p.u = philox_uniform(rng.seed, kRngPoolSample, rng.layer, uint32_t(rng.step), out_index);
  return p;
}

}  // namespace

void pool_forward(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                  const float* x, float* y) {
  const int planes = n * g.C, win = g.KH * g.KW;
#pragma omp parallel
  {
    std::vector<float> v(win);
    std::vector<int> src(win);
#pragma omp for schedule(static)
    for (int pl = 0; pl < planes; ++pl) {
      const float* xp = x + size_t(pl) * g.H * g.W;
      for (int oh = 0; oh < g.OH; ++oh)
        for (int ow = 0; ow < g.OW; ++ow) {
          const uint64_t oi = (uint64_t(pl) * g.OH + oh) * g.OW + ow;
          const int cnt = gather_window(g, xp, oh, ow, v.data(), src.data());
          const int divisor = g.include_pad ? win : cnt;
          y[oi] = pool_window_forward(for_window(p, rng, oi), v.data(), cnt, divisor);
        }
    }
  }
}

void pool_backward(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                   const float* x, const float* y, const float* dy, float* dx,
                   float* dlambda) {
  const int planes = n * g.C, win = g.KH * g.KW;
  // Per-plane partial sums, added in order afterwards, keep dlambda deterministic.
  std::vector<double> lambda_part(dlambda ? planes : 0, 0.0);
#pragma omp parallel
  {
    std::vector<float> v(win), gr(win);
    std::vector<int> src(win);
#pragma omp for schedule(static)
    for (int pl = 0; pl < planes; ++pl) {
      const float* xp = x + size_t(pl) * g.H * g.W;
      float* dxp = dx + size_t(pl) * g.H * g.W;
      for (int i = 0; i < g.H * g.W; ++i) dxp[i] = 0.f;
      for (int oh = 0; oh < g.OH; ++oh)
        for (int ow = 0; ow < g.OW; ++ow) {
          const uint64_t oi = (uint64_t(pl) * g.OH + oh) * g.OW + ow;
          const int cnt = gather_window(g, xp, oh, ow, v.data(), src.data());
          const int divisor = g.include_pad ? win : cnt;
          pool_window_backward(for_window(p, rng, oi), v.data(), cnt, divisor, y[oi], dy[oi],
                               gr.data());
          for (int i = 0; i < cnt; ++i) dxp[src[i]] += gr[i];
          if (dlambda)
            lambda_part[pl] += double(dy[oi]) *
                          (v[pool_argmax(v.data(), cnt)] - pool_mean(v.data(), cnt, divisor));
        }
    }
  }
  if (dlambda) {
    double sum = 0;
    for (double v : lambda_part) sum += v;
    *dlambda = float(sum);
  }
}

}  // namespace convpool::cpu
