// The one family of check macros for CUDA, cuDNN, cuBLAS and cuFFT calls. Each throws
// convpool::Error naming the failing call, the library's error text and file:line.
#pragma once
#include <cuda_runtime.h>

#include <cstdlib>

#include "convpool/error.h"

#define CP_CUDA_CHECK(call)                                                         \
  do {                                                                              \
    cudaError_t cp_err_ = (call);                                                   \
    if (cp_err_ != cudaSuccess)                                                     \
      CP_FAIL("CUDA call `" #call "` failed: " << cudaGetErrorName(cp_err_) << ": " \
                                               << cudaGetErrorString(cp_err_));     \
  } while (0)

namespace convpool::cuda {
// CONVPOOL_CUDA_SYNC=1: every launch check also synchronises the device, so a kernel that
// faults is named at its own launch instead of at some unrelated later call (a debugging
// mode: slow, and CUDA Graphs are off under it, because capture forbids synchronising).
// Read at each check (a getenv, cheap next to a launch) so tests can switch it.
inline bool sync_after_launch() {
  const char* v = std::getenv("CONVPOOL_CUDA_SYNC");
  return v && v[0] == '1' && v[1] == 0;
}
}  // namespace convpool::cuda

// After a kernel launch: reports launch-configuration errors (without synchronising, unless
// CONVPOOL_CUDA_SYNC=1, when it also waits for the kernel and reports its fault), naming the
// kernel and the launcher's file:line.
#define CP_CUDA_CHECK_LAUNCH(kernel_name)                                                       \
  do {                                                                                          \
    cudaError_t cp_err_ = cudaPeekAtLastError();                                                \
    if (cp_err_ != cudaSuccess)                                                                 \
      CP_FAIL("kernel " << kernel_name << " failed to launch: " << cudaGetErrorName(cp_err_)    \
                        << ": " << cudaGetErrorString(cp_err_));                                \
    if (::convpool::cuda::sync_after_launch()) {                                                \
      cp_err_ = cudaDeviceSynchronize();                                                        \
      if (cp_err_ != cudaSuccess)                                                               \
        CP_FAIL("kernel " << kernel_name << " failed (CONVPOOL_CUDA_SYNC=1): "                  \
                          << cudaGetErrorName(cp_err_) << ": " << cudaGetErrorString(cp_err_)); \
    }                                                                                           \
  } while (0)

#ifdef CONVPOOL_CHECK_CUDNN
#include <cudnn.h>
#define CP_CUDNN_CHECK(call)                                                     \
  do {                                                                           \
    cudnnStatus_t cp_st_ = (call);                                               \
    if (cp_st_ != CUDNN_STATUS_SUCCESS)                                          \
      CP_FAIL("cuDNN call `" #call "` failed: " << cudnnGetErrorString(cp_st_)); \
  } while (0)
#endif

#ifdef CONVPOOL_CHECK_CUBLAS
#include <cublas_v2.h>
#define CP_CUBLAS_CHECK(call)                                                           \
  do {                                                                                  \
    cublasStatus_t cp_st_ = (call);                                                     \
    if (cp_st_ != CUBLAS_STATUS_SUCCESS)                                                \
      CP_FAIL("cuBLAS call `" #call "` failed: " << cublasGetStatusName(cp_st_) << ": " \
                                                 << cublasGetStatusString(cp_st_));     \
  } while (0)
#endif

#ifdef CONVPOOL_CHECK_CUFFT
#include <cufft.h>
namespace convpool::cuda {
// cuFFT has no error-string function: its result codes by name.
inline const char* cufft_result_name(cufftResult r) {
  switch (r) {
    case CUFFT_SUCCESS:
      return "CUFFT_SUCCESS";
    case CUFFT_INVALID_PLAN:
      return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED:
      return "CUFFT_ALLOC_FAILED";
    case CUFFT_INVALID_VALUE:
      return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR:
      return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED:
      return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED:
      return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE:
      return "CUFFT_INVALID_SIZE";
    case CUFFT_NOT_SUPPORTED:
      return "CUFFT_NOT_SUPPORTED";
    default:
      return "a cufftResult without a name here";
  }
}
}  // namespace convpool::cuda
#define CP_CUFFT_CHECK(call)                                                                     \
  do {                                                                                           \
    cufftResult cp_st_ = (call);                                                                 \
    if (cp_st_ != CUFFT_SUCCESS)                                                                 \
      CP_FAIL("cuFFT call `" #call "` failed: " << ::convpool::cuda::cufft_result_name(cp_st_)); \
  } while (0)
#endif

namespace convpool::cuda {
inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }
constexpr unsigned ceil_div(size_t a, unsigned b) { return unsigned((a + b - 1) / b); }
}  // namespace convpool::cuda
