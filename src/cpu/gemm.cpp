#include "gemm.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

namespace convpool::cpu {

void blas_single_threaded() { openblas_set_num_threads(1); }

namespace {
// [begin, end) of thread t's share of n, in multiples of 16 for aligned SIMD panels.
void share(int n, int t, int T, int& begin, int& end) {
  const int blocks = (n + 15) / 16;
  begin = std::min(n, blocks * t / T * 16);
  end = std::min(n, blocks * (t + 1) / T * 16);
}
}  // namespace

void sgemm_split_n(bool trans_a, int M, int N, int K, const float* A, int lda, const float* B,
                   int ldb, float* C, int ldc) {
#pragma omp parallel
  {
    int n0, n1;
    share(N, omp_get_thread_num(), omp_get_num_threads(), n0, n1);
    if (n1 > n0)
      cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, CblasNoTrans, M, n1 - n0, K,
                  1.f, A, lda, B + n0, ldb, 0.f, C + n0, ldc);
  }
}

void sgemm_split_k(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C,
                   int ldc) {
  const int T = omp_get_max_threads();
  // Partial products of threads 1..T-1; thread 0 writes C directly.
  static thread_local std::vector<float> partial;
  partial.assign(size_t(std::max(T - 1, 0)) * M * N, 0.f);
  float* const partial_base = partial.data();  // the caller's buffer, shared with the workers
#pragma omp parallel num_threads(T)
  {
    const int t = omp_get_thread_num();
    int k0, k1;
    share(K, t, T, k0, k1);
    float* out = t == 0 ? C : partial_base + size_t(t - 1) * M * N;
    const int ld = t == 0 ? ldc : N;
    if (k1 > k0) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, k1 - k0, 1.f, A + k0, lda, B + k0,
                  ldb, 0.f, out, ld);
    } else {
      for (int i = 0; i < M; ++i) std::fill(out + size_t(i) * ld, out + size_t(i) * ld + N, 0.f);
    }
  }
  for (int t = 1; t < T; ++t) {
    const float* p = partial_base + size_t(t - 1) * M * N;
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) C[size_t(i) * ldc + j] += p[size_t(i) * N + j];
  }
}

}  // namespace convpool::cpu
