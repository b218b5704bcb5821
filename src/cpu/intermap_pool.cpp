#include "intermap_pool.h"

namespace convpool::cpu {

void intermap_pool_forward(InterMapMode mode, int groups, const float* x, float* y, int n, int c,
                           size_t hw) {
  const long outputs = long(n) * (c / groups) * long(hw);
#pragma omp parallel for schedule(static) if (outputs > 16384)
  for (long o = 0; o < outputs; ++o) {
    const size_t map = size_t(o) / hw, at = size_t(o) % hw;  // map = sample * (c / groups) + out
    const float* first = x + map * groups * hw + at;
    y[o] = intermap_forward(mode, first, groups, hw);
  }
}

void intermap_pool_backward(InterMapMode mode, int groups, const float* x, const float* dy,
                            float* dx, int n, int c, size_t hw) {
  const long inputs = long(n) * c * long(hw);
#pragma omp parallel for schedule(static) if (inputs > 16384)
  for (long i = 0; i < inputs; ++i) {
    const size_t map = size_t(i) / hw, at = size_t(i) % hw;
    const size_t out_map = map / size_t(groups);
    const float* first = x + out_map * groups * hw + at;
    dx[i] = intermap_grad(mode, first, groups, hw, int(map % size_t(groups)), dy[out_map * hw + at]);
  }
}

}  // namespace convpool::cpu
