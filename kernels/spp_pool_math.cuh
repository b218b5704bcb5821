// Spatial pyramid pooling (He, Zhang, Ren and Sun, "Spatial Pyramid Pooling in Deep
// Convolutional Networks for Visual Recognition", ECCV 2014), a global encoder: each level L
// splits every plane into L x L cells and pools each cell by its max or its mean; the levels'
// outputs, each C x L x L, are concatenated (level by level, channel-major), so C maps give
// C (L1^2 + L2^2 + ...) features whatever the plane's size. Cell (a, b) of level L covers rows
// [floor(a H / L), ceil((a + 1) H / L)) and the columns likewise (PyTorch's adaptive pooling
// bins): cells tile the plane when L divides H and overlap by a row or column otherwise; a
// level finer than the plane repeats rows. The max takes the first largest element (a NaN
// propagates: the first NaN wins) and its gradient goes there; the mean's gradient is dy over
// the cell's area. The per-cell math, shared by the CPU backend and the CUDA kernels; every
// sum runs in element order, and each input's gradient adds its cells level by level, cell by
// cell.
#pragma once
#include <cstddef>

#include "hd.cuh"

namespace convpool {

constexpr int kSppMaxLevels = 6;
constexpr int kSppMaxCells = 16;  // the finest level's L

struct SppLevels {
  int count = 0;
  int cells[kSppMaxLevels] = {};  // L of each level
  bool max = true;                // else the mean
};

// Features per channel: L1^2 + L2^2 + ...
CP_HD int spp_features_per_channel(const SppLevels& s) {
  int f = 0;
  for (int t = 0; t < s.count; ++t) f += s.cells[t] * s.cells[t];
  return f;
}
// Where level t starts in an image's output, for c channels.
CP_HD int spp_level_offset(const SppLevels& s, int t, int c) {
  int f = 0;
  for (int u = 0; u < t; ++u) f += s.cells[u] * s.cells[u];
  return f * c;
}

CP_HD int spp_cell_begin(int i, int cells, int n) { return i * n / cells; }
CP_HD int spp_cell_end(int i, int cells, int n) { return ((i + 1) * n + cells - 1) / cells; }

// One cell's max (its first largest element, or first NaN) and that element's index in the
// plane, or its mean.
CP_HD float spp_cell_pool(const float* plane, int w, int r0, int r1, int c0, int c1, bool max,
                          int* arg) {
  if (max) {
    float m = plane[r0 * w + c0];
    int at = r0 * w + c0;
    for (int r = r0; r < r1; ++r)
      for (int c = c0; c < c1; ++c) {
        const float v = plane[r * w + c];
        const bool take = (v > m) | ((v != v) & (m == m));
        m = take ? v : m;
        at = take ? r * w + c : at;
      }
    *arg = at;
    return m;
  }
  float s = 0.f;
  for (int r = r0; r < r1; ++r)
    for (int c = c0; c < c1; ++c) s += plane[r * w + c];
  *arg = -1;
  return s / float((r1 - r0) * (c1 - c0));
}

// One cell's share of an input element's gradient: dy where the element is the cell's max,
// dy over the area for the mean (0 elsewhere).
CP_HD float spp_cell_grad(float dy, bool max, int arg, int at, int area) {
  return max ? (arg == at ? dy : 0.f) : dy / float(area);
}

// The gradient of element (r, c) of a plane: the cells holding it, level by level, cell by
// cell. dy: the image's output gradient at its channel, arg: the image's kept indices (as
// floats) likewise, both indexed like the output; `ch` and `channels` place the plane.
CP_HD float spp_input_grad(const SppLevels& s, const float* dy, const float* arg, int channels,
                           int ch, int h, int w, int r, int c) {
  float g = 0.f;
  for (int t = 0; t < s.count; ++t) {
    const int L = s.cells[t], base = spp_level_offset(s, t, channels) + ch * L * L;
    for (int a = 0; a < L; ++a) {
      const int r0 = spp_cell_begin(a, L, h), r1 = spp_cell_end(a, L, h);
      if (r < r0 || r >= r1) continue;
      for (int b = 0; b < L; ++b) {
        const int c0 = spp_cell_begin(b, L, w), c1 = spp_cell_end(b, L, w);
        if (c < c0 || c >= c1) continue;
        const int o = base + a * L + b;
        // Adding the 0 of a cell whose max is elsewhere changes nothing (g is never -0).
        g +=
            spp_cell_grad(dy[o], s.max, s.max ? int(arg[o]) : -1, r * w + c, (r1 - r0) * (c1 - c0));
      }
    }
  }
  return g;
}

}  // namespace convpool
