// Spatial pyramid pooling on the CPU: planes in parallel; each cell pooled by
// spp_cell_pool, and each plane's gradient scattered cell by cell in level order, which adds
// each element's terms in the order the CUDA kernels' gather does (the same bits on the
// emulated target).
#include "spp_pool.h"

namespace convpool::cpu {

void spp_pool_forward(const SppLevels& s, const float* x, float* y, float* arg, int n, int c, int h,
                      int w) {
  const int per_image = c * spp_features_per_channel(s);
  const long planes = long(n) * c;
#pragma omp parallel for schedule(static) if (planes * h * w > 65536)
  for (long p = 0; p < planes; ++p) {
    const int img = int(p / c), ch = int(p % c);
    const float* plane = x + size_t(p) * h * w;
    for (int t = 0; t < s.count; ++t) {
      const int L = s.cells[t];
      const size_t base = size_t(img) * per_image + spp_level_offset(s, t, c) + size_t(ch) * L * L;
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
