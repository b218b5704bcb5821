// Dense layers through cuBLAS. cuBLAS is column-major: a row-major [R x C] matrix is a
// column-major [C x R] one, so y = x W^T (row-major) is Y' = W'^T X' (column-major).
#define CONVPOOL_CHECK_CUBLAS
#include "dense_cublas.h"

#include "check.h"
#include "context.h"
#include "convpool/device.h"
#include "kernels/bias.cuh"

namespace convpool::cuda {

namespace {
// The shared handle on `stream` with our workspace (Context::cublas_on: cublasSetStream alone
// would hand cuBLAS back its own, allocating pool), in the math mode --tf32 asks for
// (host-side settings only, so this is safe during CUDA Graph capture).
cublasHandle_t handle_on(void* stream) {
  cublasHandle_t h = context().cublas_on(as_stream(stream));
  CP_CUBLAS_CHECK(
      cublasSetMathMode(h, cuda_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
  return h;
}
}  // namespace

void dense_forward(int n, int in, int out, const float* x, const float* w, const float* b, float* y,
                   void* stream) {
  const float one = 1.f, zero = 0.f;
  cublasHandle_t h = handle_on(stream);
  // Y'[out x n] = (W'[in x out])^T X'[in x n]
  CP_CUBLAS_CHECK(
      cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w, in, x, in, &zero, y, out));
  if (b) bias_add(y, b, n, out, 1, stream);
}

void dense_backward(int n, int in, int out, const float* x, const float* w, const float* dy,
                    float* dw, float* db, float* dx, void* stream) {
  const float one = 1.f, zero = 0.f;
  cublasHandle_t h = handle_on(stream);
  // dW'[in x out] = X'[in x n] (dY'[out x n])^T
  CP_CUBLAS_CHECK(
      cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x, in, dy, out, &zero, dw, in));
  if (db) bias_grad(dy, db, n, out, 1, stream);
  // dX'[in x n] = W'[in x out] dY'[out x n]
  if (dx)
    CP_CUBLAS_CHECK(
        cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, w, in, dy, out, &zero, dx, in));
}

}  // namespace convpool::cuda
