// NetVLAD over a spatial pyramid on the CPU: images in parallel for the outputs and the input
// gradient, parameter elements in parallel for their gradients (images summed in order); the
// per-element math is kernels/spp_pool_vlad_math.cuh's, as the CUDA kernels run it.
#include "spp_pool_vlad.h"

#include <algorithm>
#include <cmath>

namespace convpool::cpu {

void spp_pool_vlad_forward(const SppLevels& s, const float* wt, const float* bias, const float* mu,
                           int k, const float* x, float* y, float* state, int n, int c, int h,
                           int w) {
  const int p = h * w, cells = spp_features_per_channel(s);
  const size_t per_state = vlad_image_state_floats(s, k, c, p), per_out = size_t(cells) * k * c;
#pragma omp parallel for schedule(static) if (size_t(n) * per_out > 4096)
  for (int img = 0; img < n; ++img) {
    const float* xi = x + size_t(img) * c * p;
    float* a = state + img * per_state;
    for (int i = 0; i < p; ++i) vlad_assign(wt, bias, xi, k, c, p, i, a);
    for (int cell = 0; cell < cells; ++cell) {
      int r0, r1, c0, c1;
      vlad_cell_bounds(s, cell, h, w, &r0, &r1, &c0, &c1);
      float* st = a + size_t(k) * p + size_t(cell) * vlad_cell_floats(k, c);
      for (int j = 0; j < k; ++j)
        for (int ch = 0; ch < c; ++ch)
          st[size_t(j) * c + ch] = vlad_residual_sum(a, xi, mu, c, p, w, r0, r1, c0, c1, j, ch);
      vlad_cell_norms(st, k, c);
      float* out = y + img * per_out + size_t(cell) * k * c;
      for (int e = 0; e < k * c; ++e) out[e] = vlad_output(st, k, c, e / c, e % c);
    }
  }
}

size_t spp_pool_vlad_scratch_floats(const SppLevels& s, int n, int k, int c, int p) {
  return size_t(n) * k * (size_t(spp_features_per_channel(s)) * c + p);
}

void spp_pool_vlad_backward(const SppLevels& s, const float* wt, const float* mu, int k,
                            const float* x, const float* state, const float* dy, float* dx,
                            float* dwt, float* dbias, float* dmu, int n, int c, int h, int w,
                            float* scratch) {
  const int p = h * w, cells = spp_features_per_channel(s);
  const size_t per_state = vlad_image_state_floats(s, k, c, p), per_out = size_t(cells) * k * c;
  float* dv_all = scratch;                     // n x cells x k x c
  float* dl_all = scratch + size_t(n) * per_out;  // n x k x p
#pragma omp parallel for schedule(static) if (size_t(n) * per_out > 4096)
  for (int img = 0; img < n; ++img) {
    const float* xi = x + size_t(img) * c * p;
    const float* a = state + img * per_state;
    float* dv = dv_all + img * per_out;
    float* dl = dl_all + size_t(img) * k * p;
    for (int cell = 0; cell < cells; ++cell)
      vlad_cell_backward(a + size_t(k) * p + size_t(cell) * vlad_cell_floats(k, c),
                         dy + img * per_out + size_t(cell) * k * c, k, c,
                         dv + size_t(cell) * k * c);
    for (int i = 0; i < p; ++i) vlad_assign_grad(s, dv, a, xi, mu, k, c, h, w, i, dl);
    if (dx)
      for (int ch = 0; ch < c; ++ch)
        for (int i = 0; i < p; ++i)
          dx[(size_t(img) * c + ch) * p + i] = vlad_input_grad(s, dv, a, dl, wt, k, c, h, w, ch, i);
  }
  const int params = k * c;
#pragma omp parallel for schedule(static) if (size_t(n) * params * p > 65536)
  for (int e = 0; e < params + k; ++e) {
    const bool bias = e >= params;
    const int j = bias ? e - params : e / c, ch = bias ? -1 : e % c;
    float g = 0.f, gm = 0.f;
    for (int img = 0; img < n; ++img) {
      g += vlad_weight_grad(dl_all + size_t(img) * k * p, x + size_t(img) * c * p, p, j, ch);
      if (!bias)
        gm += vlad_centre_grad(s, dv_all + img * per_out, state + img * per_state, k, c, h, w, j,
                               ch);
    }
    (bias ? dbias[j] : dwt[e]) = g;
    if (!bias) dmu[e] = gm;
  }
}

void spp_pool_vlad_init(const float* x, int n, int c, int p, int k, float* wt, float* bias,
                        float* mu) {
  const size_t m = size_t(n) * p;  // descriptors: image img, position i
  auto desc = [&](size_t d, int ch) {
    return double(x[(d / p * c + ch) * size_t(p) + d % p]);
  };
  std::vector<double> centre(size_t(k) * c), sum(size_t(k) * c);
  std::vector<size_t> count(static_cast<size_t>(k));
  for (int j = 0; j < k; ++j)
    for (int ch = 0; ch < c; ++ch)
      centre[size_t(j) * c + ch] = desc((size_t(j) * m) / size_t(k) + m / (2 * size_t(k)), ch);
  auto dist = [&](size_t d, int j) {
    double s2 = 0;
    for (int ch = 0; ch < c; ++ch) {
      const double t = desc(d, ch) - centre[size_t(j) * c + ch];
      s2 += t * t;
    }
    return s2;
  };
  for (int round = 0; round < 10; ++round) {
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(count.begin(), count.end(), 0);
    for (size_t d = 0; d < m; ++d) {
      int best = 0;
      double bd = dist(d, 0);
      for (int j = 1; j < k; ++j)
        if (const double t = dist(d, j); t < bd) bd = t, best = j;
      count[size_t(best)]++;
      for (int ch = 0; ch < c; ++ch) sum[size_t(best) * c + ch] += desc(d, ch);
    }
    for (int j = 0; j < k; ++j)
      if (count[size_t(j)])  // an empty cluster keeps its centre
        for (int ch = 0; ch < c; ++ch)
          centre[size_t(j) * c + ch] = sum[size_t(j) * c + ch] / double(count[size_t(j)]);
  }
  // alpha: the mean gap between the nearest and the next centre's squared distance, such
  // that exp(-alpha gap) = 1/100.
  double gap = 0;
  for (size_t d = 0; d < m && k > 1; ++d) {
    double d1 = INFINITY, d2 = INFINITY;
    for (int j = 0; j < k; ++j) {
      const double t = dist(d, j);
      if (t < d1) d2 = d1, d1 = t;
      else if (t < d2) d2 = t;
    }
    gap += d2 - d1;
  }
  gap /= double(m);
  const double alpha = gap > 0 && std::isfinite(gap) ? std::log(100.0) / gap : 1.0;
  for (int j = 0; j < k; ++j) {
    double sq = 0;
    for (int ch = 0; ch < c; ++ch) {
      const double v = centre[size_t(j) * c + ch];
      mu[size_t(j) * c + ch] = float(v);
      wt[size_t(j) * c + ch] = float(2 * alpha * v);
      sq += v * v;
    }
    bias[j] = float(-alpha * sq);
  }
}

}  // namespace convpool::cpu
