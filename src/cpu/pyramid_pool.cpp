#include "pyramid_pool.h"

#include "concat.h"
#include "pool.h"
#include "scale.h"

namespace convpool::cpu {

namespace {
PoolWindowParams max_pooling() {
  PoolWindowParams p;
  p.method = PoolMethod::max;
  return p;
}
}  // namespace

void pyramid_pool_forward(std::span<const PoolGeom> sizes, int n, const float* x, float* y,
                          float* pooled, std::span<int32_t* const> selections) {
  const int c = sizes[0].C, total = c * int(sizes.size()), plane = sizes[0].H * sizes[0].W;
  for (size_t i = 0; i < sizes.size(); ++i) {
    pool_forward(sizes[i], max_pooling(), PoolRng{}, n, x, pooled, selections[i]);
    concat_forward(n, c, total, c * int(i), plane, pooled, y);
  }
}

void pyramid_pool_backward(std::span<const PoolGeom> sizes, int n, const float* x,
                           const float* dy, float* dx, float* work,
                           std::span<int32_t* const> selections) {
  const int c = sizes[0].C, total = c * int(sizes.size()), plane = sizes[0].H * sizes[0].W;
  const size_t count = size_t(n) * c * plane;
  float* dy_part = work;
  float* dx_part = work + count;
  for (size_t i = 0; i < sizes.size(); ++i) {
    concat_backward(n, c, total, c * int(i), plane, dy, dy_part, false);
    pool_backward(sizes[i], max_pooling(), PoolRng{}, n, x, nullptr, dy_part,
                  i == 0 ? dx : dx_part, nullptr, selections[i]);
    if (i) scaled_copy(dx_part, dx, count, 1.f, true);
  }
}

}  // namespace convpool::cpu
