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
      vlad_cell_norms(st, a, k, c, p, w, r0, r1, c0, c1);
      float* out = y + img * per_out + size_t(cell) * k * c;
      for (int j = 0; j < k; ++j) {
        const float scale = vlad_row_scale(st, k, c, j);
        for (int ch = 0; ch < c; ++ch) out[size_t(j) * c + ch] = st[size_t(j) * c + ch] * scale;
      }
    }
  }
}

size_t spp_pool_vlad_scratch_floats(const SppLevels& s, int n, int k, int c, int p) {
  // dV and dl per image; then the CPU's rows: a position's input gradients per image, and
  // a centre row's per-image share per centre.
  return size_t(n) * k * (size_t(spp_features_per_channel(s)) * c + p) + size_t(n) * c +
         size_t(k) * c;
}

void spp_pool_vlad_backward(const SppLevels& s, const float* wt, const float* mu, int k,
                            const float* x, const float* state, const float* dy, float* dx,
                            float* dwt, float* dbias, float* dmu, int n, int c, int h, int w,
                            float* scratch) {
  const int p = h * w, cells = spp_features_per_channel(s);
  const size_t per_state = vlad_image_state_floats(s, k, c, p), per_out = size_t(cells) * k * c;
  float* dv_all = scratch;                        // n x cells x k x c
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
    if (!dx) continue;
    // vlad_input_grad's sums, a position's channels at a time (the same order per element).
    float* acc = scratch + size_t(n) * k * (size_t(cells) * c + p) + size_t(img) * c;
    for (int i = 0; i < p; ++i) {
      for (int ch = 0; ch < c; ++ch) acc[ch] = 0.f;
      vlad_cells_holding(s, h, w, i / w, i % w, [&](int cell) {
        for (int j = 0; j < k; ++j) {
          const float aj = a[size_t(j) * p + i];
          const float* d = dv + (size_t(cell) * k + j) * c;
          for (int ch = 0; ch < c; ++ch) acc[ch] += aj * d[ch];
        }
      });
      for (int j = 0; j < k; ++j) {
        const float dj = dl[size_t(j) * p + i];
        const float* wr = wt + size_t(j) * c;
        for (int ch = 0; ch < c; ++ch) acc[ch] += wr[ch] * dj;
      }
      for (int ch = 0; ch < c; ++ch) dx[(size_t(img) * c + ch) * p + i] = acc[ch];
    }
  }
  // The parameters, a centre's row at a time; each element sums the images in order, and
  // within an image its positions (dw, db) or cells (dmu) in order, as the CUDA kernel does.
  float* part_all = scratch + size_t(n) * k * (size_t(cells) * c + p) + size_t(n) * c;
#pragma omp parallel for schedule(static) if (size_t(n) * k * c * p > 65536)
  for (int j = 0; j < k; ++j) {
    float* gw = dwt + size_t(j) * c;
    float* gm = dmu + size_t(j) * c;
    float* part = part_all + size_t(j) * c;
    float gb = 0.f;
    for (int ch = 0; ch < c; ++ch) gw[ch] = gm[ch] = 0.f;
    for (int img = 0; img < n; ++img) {
      const float* dl = dl_all + size_t(img) * k * p;
      const float* xi = x + size_t(img) * c * p;
      for (int ch = 0; ch < c; ++ch) gw[ch] += vlad_weight_grad(dl, xi, p, j, ch);
      gb += vlad_weight_grad(dl, xi, p, j, -1);
      const float* cell_states = state + img * per_state + size_t(k) * p;
      for (int ch = 0; ch < c; ++ch) part[ch] = 0.f;
      for (int cell = 0; cell < cells; ++cell) {
        const float mass =
            cell_states[size_t(cell) * vlad_cell_floats(k, c) + vlad_mass_at(k, c, j)];
        const float* d = dv_all + img * per_out + (size_t(cell) * k + j) * c;
        for (int ch = 0; ch < c; ++ch) part[ch] -= d[ch] * mass;
      }
      for (int ch = 0; ch < c; ++ch) gm[ch] += part[ch];
    }
    dbias[j] = gb;
  }
}

void spp_pool_vlad_init(const float* x, int n, int c, int p, int k, float* wt, float* bias,
                        float* mu) {
  const size_t m = size_t(n) * p;  // descriptors: image img, position i
  auto desc = [&](size_t d, int ch) { return double(x[(d / p * c + ch) * size_t(p) + d % p]); };
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
      if (t < d1)
        d2 = d1, d1 = t;
      else if (t < d2)
        d2 = t;
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
