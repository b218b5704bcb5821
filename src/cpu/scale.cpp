#include "scale.h"

namespace convpool::cpu {

void scaled_copy(const float* src, float* dst, size_t n, float scale, bool accumulate) {
  const long len = long(n);
  if (accumulate) {
#pragma omp parallel for simd schedule(static) if (len > 65536)
    for (long i = 0; i < len; ++i) dst[i] += scale * src[i];
  } else {
#pragma omp parallel for simd schedule(static) if (len > 65536)
    for (long i = 0; i < len; ++i) dst[i] = scale * src[i];
  }
}

}  // namespace convpool::cpu
