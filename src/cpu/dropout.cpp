#include "dropout.h"

#include "elementwise.h"
#include "kernels/dropout_math.cuh"

namespace convpool::cpu {

void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t seed, uint32_t layer,
                     uint64_t step, uint64_t first_element) {
  const long len = long(n);
#pragma omp parallel for schedule(static) if (len > 16384)
  for (long i = 0; i < len; ++i)
    y[i] = x[i] * dropout_factor(seed, layer, step, first_element + uint64_t(i), p);
}
void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t seed,
                      uint32_t layer, uint64_t step, bool accumulate, uint64_t first_element) {
  const long len = long(n);
#pragma omp parallel for schedule(static) if (len > 16384)
  for (long i = 0; i < len; ++i)
    store(dx, size_t(i), dy[i] * dropout_factor(seed, layer, step, first_element + uint64_t(i), p),
          accumulate);
}

}  // namespace convpool::cpu
