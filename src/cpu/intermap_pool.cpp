// Inter-map pooling on the CPU: each output map is its group's G input maps reduced position
// by position, in loops the compiler vectorises over positions. Every position gets
// intermap_pool_math.cuh's result bit for bit (the same comparisons, the sums in map order),
// which tests/kernel_parity_intermap_pool.cpp checks against the CUDA kernels.
#include "intermap_pool.h"

#include <algorithm>

#include "kernels/hd.cuh"

namespace convpool::cpu {

namespace {

constexpr size_t kRun = 256;  // positions per run: the selection of a run stays in registers/L1

// The group's first largest member at positions [0, len) of a run (intermap_argmax), and its
// value: a member replaces the best only where the best is not NaN and the member is NaN or
// larger.
inline void group_max(const float* first, int groups, size_t hw, size_t len, float* value,
                      int* at) {
  for (size_t p = 0; p < len; ++p) value[p] = first[p], at[p] = 0;
  for (int g = 1; g < groups; ++g) {
    const float* m = first + size_t(g) * hw;
    for (size_t p = 0; p < len; ++p) {
      const float v = m[p], b = value[p];
      const bool take = (b == b) & ((v != v) | (v > b));
      value[p] = cp_select(take, v, b);
      at[p] = cp_select(take, g, at[p]);
    }
  }
}

// The mean's loops, one position at a time over the group's maps: the compiler vectorises over
// positions and keeps each sum in a register. G is the group size where it is a constant (the
// common 2 and 4), else 0 and `groups` is read at run time.
template <int G>
void mean_forward(int groups, const float* x, float* y, long maps, size_t hw) {
  const int gn = G ? G : groups;
#pragma omp parallel for schedule(static) if (maps * long(hw) * gn > 32768)
  for (long m = 0; m < maps; ++m) {
    const float* first = x + size_t(m) * gn * hw;
    float* out = y + size_t(m) * hw;
    for (size_t p = 0; p < hw; ++p) {
      float s = 0.f;
      for (int g = 0; g < gn; ++g) s += first[size_t(g) * hw + p];
      out[p] = s / float(gn);
    }
  }
}
template <int G>
void mean_backward(int groups, const float* dy, float* dx, long maps, size_t hw) {
  const int gn = G ? G : groups;
#pragma omp parallel for schedule(static) if (maps * long(hw) * gn > 32768)
  for (long m = 0; m < maps; ++m) {
    const float* d = dy + size_t(m) * hw;
    float* out = dx + size_t(m) * gn * hw;
    for (size_t p = 0; p < hw; ++p) {
      const float q = d[p] / float(gn);
      for (int g = 0; g < gn; ++g) out[size_t(g) * hw + p] = q;
    }
  }
}

}  // namespace

void intermap_pool_forward(InterMapMode mode, int groups, const float* x, float* y, int n, int c,
                           size_t hw) {
  const long maps = long(n) * (c / groups);
  if (mode == InterMapMode::mean) {
    if (groups == 2) return mean_forward<2>(groups, x, y, maps, hw);
    if (groups == 4) return mean_forward<4>(groups, x, y, maps, hw);
    return mean_forward<0>(groups, x, y, maps, hw);
  }
#pragma omp parallel for schedule(static) if (maps * long(hw) * groups > 32768)
  for (long m = 0; m < maps; ++m) {
    const float* first = x + size_t(m) * groups * hw;
    float* out = y + size_t(m) * hw;
    for (size_t p0 = 0; p0 < hw; p0 += kRun) {
      int at[kRun];
      group_max(first + p0, groups, hw, std::min(kRun, hw - p0), out + p0, at);
    }
  }
}

void intermap_pool_backward(InterMapMode mode, int groups, const float* x, const float* dy,
                            float* dx, int n, int c, size_t hw) {
  const long maps = long(n) * (c / groups);
  if (mode == InterMapMode::mean) {
    if (groups == 2) return mean_backward<2>(groups, dy, dx, maps, hw);
    if (groups == 4) return mean_backward<4>(groups, dy, dx, maps, hw);
    return mean_backward<0>(groups, dy, dx, maps, hw);
  }
#pragma omp parallel for schedule(static) if (maps * long(hw) * groups > 32768)
  for (long m = 0; m < maps; ++m) {
    const float* first = x + size_t(m) * groups * hw;
    const float* d = dy + size_t(m) * hw;
    float* out = dx + size_t(m) * groups * hw;
    for (size_t p0 = 0; p0 < hw; p0 += kRun) {
      const size_t len = std::min(kRun, hw - p0);
      float value[kRun];
      int at[kRun];
      group_max(first + p0, groups, hw, len, value, at);
      for (int g = 0; g < groups; ++g)
        for (size_t p = 0; p < len; ++p)
          out[size_t(g) * hw + p0 + p] = cp_select(at[p] == g, d[p0 + p], 0.f);
    }
  }
}

}  // namespace convpool::cpu
