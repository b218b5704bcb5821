// NetVLAD over a spatial pyramid (`spp_pool mode=vlad clusters=K`): multi-scale orderless
// pooling in its trainable form. NetVLAD (Arandjelovic, Gronat, Torii, Pajdla and Sivic, CVPR
// 2016, eqs. 1-4) soft-assigns every position's descriptor x_i (its C channels) to K centres,
//   a_k(i) = softmax_k(w_k . x_i + b_k),
// and sums the residuals in each cell s of spp_pool's pyramid (spp_pool_math.cuh's cells, so
// levels 1,2,4 are MOP's scales, Gong, Wang, Guo and Lazebnik, ECCV 2014):
//   V_s(k, c) = sum_{i in s} a_k(i) (x_i(c) - mu_k(c)),
// then normalises each centre's row (intra-normalisation) and the cell's whole K x C block by
// their L2 norms, as torch.nn.functional.normalize does (v / max(||v||, 1e-12)). Each image's
// output is the cells' blocks, level by level, cell by cell (row-major), each centre by
// centre, channel by channel: K C (L1^2 + L2^2 + ...) features.
//
// Per image, the layer state holds a (K x P, P = H W positions) and, per cell, V (K x C), the
// row norms r (K), the block norm R (1) and the assignment masses S_k = sum_{i in s} a_k(i)
// (K). Each row's scale, 1 / max(r_k, eps) / max(R, eps), is taken once and multiplied in
// (R = ||q|| is sqrt(sum_k (r_k / max(r_k, eps))^2), q's rows being unit or below eps).
// The backward: dq = (dy - y (y . dy)) / R (dy / eps when R <= eps),
// dV_k = (dq_k - q_k (q_k . dq_k)) / r_k (likewise), q = V / max(r, eps);
// then da_k(i) = sum_{s containing i} dV_s(k) . (x_i - mu_k), the softmax's dl_k(i) =
// a_k(i) (da_k(i) - sum_j a_j(i) da_j(i)), and
//   dx_i = sum_{s containing i} sum_k a_k(i) dV_s(k) + sum_k w_k dl_k(i),
//   dw_k = sum_i dl_k(i) x_i,  db_k = sum_i dl_k(i),  dmu_k = -sum_s dV_s(k) sum_{i in s} a_k(i).
// The math below is shared by the CPU backend and the CUDA kernels; every sum runs in one
// fixed order (channels, centres, positions and cells ascending; images last for the
// parameters), so both give the same bits.
#pragma once
#include <cmath>
#include <cstddef>

#include "exp_log.cuh"
#include "hd.cuh"
#include "spp_pool_math.cuh"

namespace convpool {

constexpr int kVladMaxClusters = 64;
constexpr float kVladEps = 1e-12f;

// Floats of one cell's state: V, r, R and S.
CP_HD int vlad_cell_floats(int k, int c) { return k * c + 2 * k + 1; }
// Floats of one image's state: the assignments and every cell's.
CP_HD size_t vlad_image_state_floats(const SppLevels& s, int k, int c, int p) {
  return size_t(k) * p + size_t(spp_features_per_channel(s)) * vlad_cell_floats(k, c);
}

// Cell `cell` (counted over the levels in order) as rows [r0, r1) and columns [c0, c1).
CP_HD void vlad_cell_bounds(const SppLevels& s, int cell, int h, int w, int* r0, int* r1, int* c0,
                            int* c1) {
  int t = 0;
  while (cell >= s.cells[t] * s.cells[t]) cell -= s.cells[t] * s.cells[t], ++t;
  const int L = s.cells[t], a = cell / L, b = cell % L;
  *r0 = spp_cell_begin(a, L, h);
  *r1 = spp_cell_end(a, L, h);
  *c0 = spp_cell_begin(b, L, w);
  *c1 = spp_cell_end(b, L, w);
}

// The soft assignment of position i to the K centres, a[j p + i] for each j: the logits
// b_j + w_j . x_i (channels in order), then a softmax over j with exp_log.cuh's exp (a NaN
// logit makes every weight NaN; +inf logits share the weight).
CP_HD void vlad_assign(const float* wt, const float* bias, const float* x, int k, int c, int p,
                       int i, float* a) {
  float l[kVladMaxClusters];
  for (int j = 0; j < k; ++j) {
    float s = bias[j];
    for (int ch = 0; ch < c; ++ch) s += wt[size_t(j) * c + ch] * x[size_t(ch) * p + i];
    l[j] = s;
  }
  float m = l[0];
  for (int j = 1; j < k; ++j) m = (l[j] > m || l[j] != l[j]) ? l[j] : m;
  float den = 0.f;
  for (int j = 0; j < k; ++j) {
    l[j] = cp_select(l[j] == m, 1.f, cp_exp(l[j] - m));
    den += l[j];
  }
  for (int j = 0; j < k; ++j) a[size_t(j) * p + i] = l[j] / den;
}

// V(j, ch) of the cell [r0, r1) x [c0, c1): its positions row by row.
CP_HD float vlad_residual_sum(const float* a, const float* x, const float* mu, int c, int p, int w,
                              int r0, int r1, int c0, int c1, int j, int ch) {
  const float centre = mu[size_t(j) * c + ch];
  const float* aj = a + size_t(j) * p;
  const float* map = x + size_t(ch) * p;
  float s = 0.f;
  for (int r = r0; r < r1; ++r)
    for (int col = c0; col < c1; ++col) s += aj[r * w + col] * (map[r * w + col] - centre);
  return s;
}

// A cell's norms and masses from its V (k x c) and the image's assignments a: r_j = ||V_j||,
// R = ||q|| and S_j, the cell's positions row by row.
CP_HD void vlad_cell_norms(float* cell, const float* a, int k, int c, int p, int w, int r0, int r1,
                           int c0, int c1) {
  const float* v = cell;
  float* r = cell + size_t(k) * c;
  float* mass = r + k + 1;
  float big = 0.f;
  for (int j = 0; j < k; ++j) {
    float s = 0.f;
    for (int ch = 0; ch < c; ++ch) s += v[size_t(j) * c + ch] * v[size_t(j) * c + ch];
    r[j] = sqrtf(s);
    const float unit = r[j] * (1.f / fmaxf(r[j], kVladEps));
    big += unit * unit;
    float m = 0.f;
    for (int row = r0; row < r1; ++row)
      for (int col = c0; col < c1; ++col) m += a[size_t(j) * p + row * w + col];
    mass[j] = m;
  }
  r[k] = sqrtf(big);
}

// Row j's scale: 1 / max(r_j, eps) / max(R, eps).
CP_HD float vlad_row_scale(const float* cell, int k, int c, int j) {
  const float* r = cell + size_t(k) * c;
  return (1.f / fmaxf(r[j], kVladEps)) * (1.f / fmaxf(r[k], kVladEps));
}

// One output: V(j, ch) normalised by its row's norm and then by the block's.
CP_HD float vlad_output(const float* cell, int k, int c, int j, int ch) {
  return cell[size_t(j) * c + ch] * vlad_row_scale(cell, k, c, j);
}

// dV of one cell (k x c, written to dv) from its output gradient dy (k x c).
CP_HD void vlad_cell_backward(const float* cell, const float* dy, int k, int c, float* dv) {
  const float* r = cell + size_t(k) * c;
  const float R = r[k];
  float dot = 0.f;
  for (int j = 0; j < k; ++j) {
    const float scale = vlad_row_scale(cell, k, c, j);
    for (int ch = 0; ch < c; ++ch) dot += cell[size_t(j) * c + ch] * scale * dy[size_t(j) * c + ch];
  }
  const float inv_big = R > kVladEps ? 1.f / R : 1.f / kVladEps;
  const float keep = R > kVladEps ? 1.f : 0.f;  // below eps, y's term is not there
  for (int j = 0; j < k; ++j) {
    const float scale = vlad_row_scale(cell, k, c, j), inv_floor = 1.f / fmaxf(r[j], kVladEps);
    const float inv_row = r[j] > kVladEps ? 1.f / r[j] : 1.f / kVladEps;
    const float keep_row = r[j] > kVladEps ? 1.f : 0.f;
    for (int ch = 0; ch < c; ++ch) {
      const size_t e = size_t(j) * c + ch;
      dv[e] = (dy[e] - keep * (cell[e] * scale) * dot) * inv_big;
    }
    float rowdot = 0.f;
    for (int ch = 0; ch < c; ++ch)
      rowdot += cell[size_t(j) * c + ch] * inv_floor * dv[size_t(j) * c + ch];
    for (int ch = 0; ch < c; ++ch) {
      const size_t e = size_t(j) * c + ch;
      dv[e] = (dv[e] - keep_row * (cell[e] * inv_floor) * rowdot) * inv_row;
    }
  }
}

// Calls f(cell) for each cell holding position (row, col), level by level, cell by cell.
template <class F>
CP_HD void vlad_cells_holding(const SppLevels& s, int h, int w, int row, int col, F f) {
  int first = 0;
  for (int t = 0; t < s.count; ++t) {
    const int L = s.cells[t];
    for (int a = 0; a < L; ++a) {
      if (row < spp_cell_begin(a, L, h) || row >= spp_cell_end(a, L, h)) continue;
      for (int b = 0; b < L; ++b)
        if (col >= spp_cell_begin(b, L, w) && col < spp_cell_end(b, L, w)) f(first + a * L + b);
    }
    first += L * L;
  }
}

// The softmax's logit gradients at position i, dl[j p + i] for each j, from the image's dV
// (cells x k x c) and assignments.
CP_HD void vlad_assign_grad(const SppLevels& s, const float* dv, const float* a, const float* x,
                            const float* mu, int k, int c, int h, int w, int i, float* dl) {
  const int p = h * w;
  float da[kVladMaxClusters];
  for (int j = 0; j < k; ++j) da[j] = 0.f;
  vlad_cells_holding(s, h, w, i / w, i % w, [&](int cell) {
    const float* d = dv + size_t(cell) * k * c;
    for (int j = 0; j < k; ++j) {
      float g = 0.f;
      for (int ch = 0; ch < c; ++ch)
        g += d[size_t(j) * c + ch] * (x[size_t(ch) * p + i] - mu[size_t(j) * c + ch]);
      da[j] += g;
    }
  });
  float dot = 0.f;
  for (int j = 0; j < k; ++j) dot += a[size_t(j) * p + i] * da[j];
  for (int j = 0; j < k; ++j) dl[size_t(j) * p + i] = a[size_t(j) * p + i] * (da[j] - dot);
}

// dx at channel ch, position i.
CP_HD float vlad_input_grad(const SppLevels& s, const float* dv, const float* a, const float* dl,
                            const float* wt, int k, int c, int h, int w, int ch, int i) {
  const int p = h * w;
  float g = 0.f;
  vlad_cells_holding(s, h, w, i / w, i % w, [&](int cell) {
    const float* d = dv + size_t(cell) * k * c;
    for (int j = 0; j < k; ++j) g += a[size_t(j) * p + i] * d[size_t(j) * c + ch];
  });
  for (int j = 0; j < k; ++j) g += wt[size_t(j) * c + ch] * dl[size_t(j) * p + i];
  return g;
}

// One image's share of the parameter gradients: dw(j, ch) (ch >= 0) or db(j) (ch < 0), and
// dmu(j, ch).
CP_HD float vlad_weight_grad(const float* dl, const float* x, int p, int j, int ch) {
  float g = 0.f;
  for (int i = 0; i < p; ++i) g += dl[size_t(j) * p + i] * (ch < 0 ? 1.f : x[size_t(ch) * p + i]);
  return g;
}
// Where centre j's mass sits in a cell's state.
CP_HD int vlad_mass_at(int k, int c, int j) { return k * c + k + 1 + j; }

// cells: the image's cell states (after its assignments).
CP_HD float vlad_centre_grad(int cells, const float* dv, const float* cell_states, int k, int c,
                             int j, int ch) {
  float g = 0.f;
  for (int cell = 0; cell < cells; ++cell) {
    const float mass = cell_states[size_t(cell) * vlad_cell_floats(k, c) + vlad_mass_at(k, c, j)];
    g -= dv[(size_t(cell) * k + j) * c + ch] * mass;
  }
  return g;
}

}  // namespace convpool
