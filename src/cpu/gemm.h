// Row-major SGEMM helpers that parallelise over OpenMP threads themselves, with OpenBLAS
// single-threaded inside: mixing OpenBLAS's own threads with OpenMP regions costs more than
// the small GEMMs of a CNN take (measured: 2 threads ran slower than 1).
#pragma once

namespace convpool::cpu {

// C[M x N] = op(A)[M x K] * B[K x N], columns of B and C split across threads.
void sgemm_split_n(bool trans_a, int M, int N, int K, const float* A, int lda, const float* B,
                   int ldb, float* C, int ldc);
// C[M x N] = A[M x K] * op(B)^T with B given as [N x K] when trans_b; the K (reduction) range
// is split across threads and the partial products are added in thread order, so the result
// is deterministic for a given thread count.
void sgemm_split_k(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C,
                   int ldc);
// Makes OpenBLAS single-threaded; called once at startup and by --threads.
void blas_single_threaded();

}  // namespace convpool::cpu
