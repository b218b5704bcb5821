#include "concat.h"

#include <cstring>

namespace convpool::cpu {

void concat_forward(int n, int c, int c_total, int c_offset, int plane, const float* x, float* y) {
  const size_t slice = size_t(c) * plane;
#pragma omp parallel for schedule(static) if (size_t(n) * slice > 65536)
  for (int i = 0; i < n; ++i)
    std::memcpy(y + (size_t(i) * c_total + c_offset) * plane, x + i * slice, slice * sizeof(float));
}
void concat_backward(int n, int c, int c_total, int c_offset, int plane, const float* dy,
                     float* dx, bool accumulate) {
  const size_t slice = size_t(c) * plane;
#pragma omp parallel for schedule(static) if (size_t(n) * slice > 65536)
  for (int i = 0; i < n; ++i) {
    const float* src = dy + (size_t(i) * c_total + c_offset) * plane;
    float* dst = dx + i * slice;
    for (size_t j = 0; j < slice; ++j) dst[j] = accumulate ? dst[j] + src[j] : src[j];
  }
}

}  // namespace convpool::cpu
