#include "dense.h"

#include <cblas.h>

#include "gemm.h"

namespace convpool::cpu {

void dense_forward(int n, int in, int out, const float* x, const float* w, const float* b,
                   float* y) {
  if (b)
    for (int i = 0; i < n; ++i)
      for (int o = 0; o < out; ++o) y[i * out + o] = b[o];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.f, x, in, w, in,
              b ? 1.f : 0.f, y, out);
}

void dense_backward(int n, int in, int out, const float* x, const float* w, const float* dy,
                    float* dw, float* db, float* dx) {
  for (int o = 0; db && o < out; ++o) {
    double s = 0;
    for (int i = 0; i < n; ++i) s += dy[i * out + o];
    db[o] = float(s);
  }
  // dW[OUT x IN] = dy^T[OUT x N] * x[N x IN]
  sgemm_split_n(true, out, in, n, dy, out, x, in, dw, in);
  // dx[N x IN] = dy[N x OUT] * W[OUT x IN]
  if (dx)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.f, dy, out, w, in, 0.f, dx,
                in);
}

}  // namespace convpool::cpu
