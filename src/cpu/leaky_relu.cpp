#include "leaky_relu.h"

#include "elementwise.h"
#include "kernels/activation_math.cuh"

namespace convpool::cpu {

void leaky_relu_forward(const float* x, float* y, size_t n, float slope) {
  const long len = long(n);
#pragma omp parallel for simd schedule(static) if (len > 65536)
  for (long i = 0; i < len; ++i) y[i] = ::convpool::leaky_relu_forward(x[i], slope);
}
void leaky_relu_backward(const float* x, const float* dy, float* dx, size_t n, float slope,
                         bool accumulate) {
  const long len = long(n);
#pragma omp parallel for schedule(static) if (len > 65536)
  for (long i = 0; i < len; ++i)
    store(dx, size_t(i), ::convpool::leaky_relu_backward(x[i], dy[i], slope), accumulate);
}

}  // namespace convpool::cpu
