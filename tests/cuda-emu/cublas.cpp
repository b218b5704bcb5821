// The emulated target's cuBLAS (include/cublas_v2.h).
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <vector>

#include "cublas_v2.h"
#include "emu_api.h"

struct cublasContext {
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;  // the user's (cublasSetWorkspace), or null: cuBLAS's own pool
  size_t workspace_bytes = 0;
  void* pool = nullptr;  // cuBLAS's own, allocated at the first GEMM that needs it
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {
std::mutex g_mu;
std::set<const void*> g_handles;
bool live(cublasHandle_t h) {
  std::lock_guard lock(g_mu);
  return g_handles.count(h) != 0;
}
// The op(X) matrix of rows x cols (column-major, leading dimension ld), TF32-rounded.
std::vector<float> rounded(const float* x, int rows, int cols, int ld) {
  std::vector<float> out(size_t(ld) * cols);
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < rows; ++i)
      out[size_t(j) * ld + i] = cuda_emu::round_to_tf32(x[size_t(j) * ld + i]);
  return out;
}
}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* h) {
  if (!h) return CUBLAS_STATUS_INVALID_VALUE;
  *h = new cublasContext;
  std::lock_guard lock(g_mu);
  g_handles.insert(*h);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
  {
    std::lock_guard lock(g_mu);
    if (!g_handles.erase(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  }
  if (h->pool) cudaFree(h->pool);
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  if (!live(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!cuda_emu::valid_stream(s)) return CUBLAS_STATUS_INVALID_VALUE;
  h->stream = s;
  h->workspace = nullptr;  // as documented: the stream's own default workspace from now on
  h->workspace_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t* s) {
  if (!live(h) || !s) return CUBLAS_STATUS_NOT_INITIALIZED;
  *s = h->stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void* workspace, size_t bytes) {
  if (!live(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes && (!workspace || !cuda_emu::is_device(workspace, bytes)))
    return CUBLAS_STATUS_INVALID_VALUE;
  h->workspace = workspace;
  h->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  if (!live(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t* mode) {
  if (!live(h) || !mode) return CUBLAS_STATUS_NOT_INITIALIZED;
  *mode = h->math;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float* alpha, const float* a, int lda,
                           const float* b, int ldb, const float* beta, float* c, int ldc) {
  if (!live(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || k < 0 || !alpha || !beta || ta == CUBLAS_OP_C || tb == CUBLAS_OP_C)
    return CUBLAS_STATUS_INVALID_VALUE;
  const int a_rows = ta == CUBLAS_OP_N ? m : k, a_cols = ta == CUBLAS_OP_N ? k : m;
  const int b_rows = tb == CUBLAS_OP_N ? k : n, b_cols = tb == CUBLAS_OP_N ? n : k;
  if (lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  auto extent = [](int ld, int cols) { return size_t(ld) * size_t(std::max(cols, 1)) * 4; };
  if ((k && (!cuda_emu::is_device(a, extent(lda, a_cols)) ||
             !cuda_emu::is_device(b, extent(ldb, b_cols)))) ||
      !cuda_emu::is_device(c, extent(ldc, n)))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!h->workspace && !h->pool) {
    // cuBLAS's own workspace: an allocation, which capture forbids (invalidating it).
    if (cudaMalloc(&h->pool, size_t(4) << 20) != cudaSuccess) {
      h->pool = nullptr;
      return cuda_emu::capturing(h->stream) ? CUBLAS_STATUS_NOT_SUPPORTED
                                            : CUBLAS_STATUS_ALLOC_FAILED;
    }
  }
  const float al = *alpha, be = *beta;  // host pointer mode: read at the call
  const bool tf = h->math == CUBLAS_TF32_TENSOR_OP_MATH;
  const cudaError_t e = cuda_emu::enqueue(h->stream, "cublasSgemm", [=] {
    if (be == 0.f)  // beta 0: C is not read, NaN included
      for (int j = 0; j < n; ++j) std::memset(c + size_t(j) * ldc, 0, size_t(m) * 4);
    std::vector<float> ra, rb;
    const float *pa = a, *pb = b;
    if (tf) {
      ra = rounded(a, a_rows, a_cols, lda);
      rb = rounded(b, b_rows, b_cols, ldb);
      pa = ra.data();
      pb = rb.data();
    }
    cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, al, pa, lda, pb, ldb, be, c,
                ldc);
  });
  return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

const char* cublasGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    default:
      return "CUBLAS_STATUS_UNKNOWN";
  }
}
const char* cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS:
      return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "the functionality requested is not supported";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "the GPU program failed to execute";
    default:
      return "unknown error";
  }
}
