#include "gelu.h"

#include "elementwise.h"
#include "kernels/activation_math.cuh"

namespace convpool::cpu {

void gelu_forward(const float* x, float* y, size_t n) {
  const long len = long(n);
#pragma omp parallel for schedule(static) if (len > 16384)
  for (long i = 0; i < len; ++i) y[i] = ::convpool::gelu_forward(x[i]);
}
void gelu_backward(const float* x, const float* dy, float* dx, size_t n, bool accumulate) {
  const long len = long(n);
#pragma omp parallel for schedule(static) if (len > 16384)
  for (long i = 0; i < len; ++i) store(dx, size_t(i), ::convpool::gelu_backward(x[i], dy[i]), accumulate);
}

}  // namespace convpool::cpu
