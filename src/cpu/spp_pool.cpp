// Spatial pyramid pooling on the CPU: planes in parallel; each cell pooled by
// spp_cell_pool, and each plane's gradient scattered cell by cell in level order, which adds
// each element's terms in the order the CUDA kernels' gather does (the same bits on the
// emulated target).
#include "spp_pool.h"

namespace convpool::cpu {

namespace {

// A level whose max cells are each the union of a finer level's cells (both divide the plane,
// the finer L a multiple of this one), or -1.
int finer_level_tiling(const SppLevels& s, int t, int h, int w) {
  const int L = s.cells[t];
  if (!s.max || h % L || w % L) return -1;
  for (int u = 0; u < s.count; ++u) {
    const int F = s.cells[u];
    if (F > L && F % L == 0 && h % F == 0 && w % F == 0) return u;
  }
  return -1;
}

// Whether candidate (v, at) beats the kept (m, best) as a cell's max: the larger value, the
// first NaN, and among equals the earlier element of the plane: the element spp_cell_pool's
// scan in row order would keep.
inline bool beats(float v, int at, float m, int best) {
  const bool vn = v != v, mn = m != m;
  if (vn || mn) return vn && (!mn || at < best);
  return v > m || (v == m && at < best);
}

}  // namespace

void spp_pool_forward(const SppLevels& s, const float* x, float* y, float* arg, int n, int c, int h,
                      int w) {
  const int per_image = c * spp_features_per_channel(s);
  const long planes = long(n) * c;
  // Levels finest first: a max level that a finer one tiles takes its cells' maxima from the
  // finer level's (the same element, so the same bits as the scan; the CUDA kernels scan).
  int order[kSppMaxLevels], source[kSppMaxLevels];
  for (int t = 0; t < s.count; ++t) {  // insertion by decreasing L (at most 6 levels)
    int at = t;
    while (at > 0 && s.cells[order[at - 1]] < s.cells[t]) order[at] = order[at - 1], --at;
    order[at] = t;
  }
  for (int t = 0; t < s.count; ++t) source[t] = finer_level_tiling(s, t, h, w);
#pragma omp parallel for schedule(static) if (planes * h * w > 65536)
  for (long p = 0; p < planes; ++p) {
    const int img = int(p / c), ch = int(p % c);
    const float* plane = x + size_t(p) * h * w;
    for (int o = 0; o < s.count; ++o) {
      const int t = order[o];
      const int L = s.cells[t];
      const size_t base = size_t(img) * per_image + spp_level_offset(s, t, c) + size_t(ch) * L * L;
      if (const int u = source[t]; u >= 0) {
        const int F = s.cells[u], r = F / L;
        const size_t fine =
            size_t(img) * per_image + spp_level_offset(s, u, c) + size_t(ch) * F * F;
        for (int a = 0; a < L; ++a)
          for (int b = 0; b < L; ++b) {
            float m = y[fine + size_t(a * r) * F + b * r];
            int best = int(arg[fine + size_t(a * r) * F + b * r]);
            for (int i = 0; i < r; ++i)
              for (int j = 0; j < r; ++j) {
                const size_t f = fine + size_t(a * r + i) * F + b * r + j;
                const float v = y[f];
                const int at = int(arg[f]);
                if (beats(v, at, m, best)) m = v, best = at;
              }
            y[base + a * L + b] = m;
            arg[base + a * L + b] = float(best);
          }
        continue;
      }
      for (int a = 0; a < L; ++a)
        for (int b = 0; b < L; ++b) {
          int at = -1;
          y[base + a * L + b] =
              spp_cell_pool(plane, w, spp_cell_begin(a, L, h), spp_cell_end(a, L, h),
                            spp_cell_begin(b, L, w), spp_cell_end(b, L, w), s.max, &at);
          arg[base + a * L + b] = float(at);
        }
    }
  }
}

void spp_pool_backward(const SppLevels& s, const float* arg, const float* dy, float* dx, int n,
                       int c, int h, int w) {
  const int per_image = c * spp_features_per_channel(s);
  const long planes = long(n) * c;
#pragma omp parallel for schedule(static) if (planes * h * w > 65536)
  for (long p = 0; p < planes; ++p) {
    const int img = int(p / c), ch = int(p % c);
    float* plane = dx + size_t(p) * h * w;
    for (int i = 0; i < h * w; ++i) plane[i] = 0.f;
    for (int t = 0; t < s.count; ++t) {
      const int L = s.cells[t];
      const size_t base = size_t(img) * per_image + spp_level_offset(s, t, c) + size_t(ch) * L * L;
      for (int a = 0; a < L; ++a) {
        const int r0 = spp_cell_begin(a, L, h), r1 = spp_cell_end(a, L, h);
        for (int b = 0; b < L; ++b) {
          const int c0 = spp_cell_begin(b, L, w), c1 = spp_cell_end(b, L, w);
          const size_t o = base + a * L + b;
          if (s.max) {
            plane[int(arg[o])] += dy[o];
          } else {
            const float g = spp_cell_grad(dy[o], false, -1, 0, (r1 - r0) * (c1 - c0));
            for (int r = r0; r < r1; ++r)
              for (int col = c0; col < c1; ++col) plane[r * w + col] += g;
          }
        }
      }
    }
  }
}

}  // namespace convpool::cpu
