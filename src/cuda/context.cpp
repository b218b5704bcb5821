#define CONVPOOL_CHECK_CUDNN
#define CONVPOOL_CHECK_CUBLAS
#include "context.h"

#include "check.h"
#include "convpool/device.h"

namespace convpool::cuda {

namespace {
// Runs before the members are built, so a missing device is reported before any CUDA call.
int checked_device() {
  require_cuda_device();  // also refuses an index beyond the devices present
  const int device = cuda_device_index();
  CP_CUDA_CHECK(cudaSetDevice(device));
  return device;
}
}  // namespace

Context::Context() : device_(checked_device()) {
  CP_CUDNN_CHECK(cudnnCreate(&cudnn_));
  CP_CUDNN_CHECK(cudnnSetStream(cudnn_, stream()));
  CP_CUBLAS_CHECK(cublasCreate(&cublas_));
  // Plain fp32 (no TF32 tensor-core rounding) unless --tf32 asked for it.
  CP_CUBLAS_CHECK(
      cublasSetMathMode(cublas_, cuda_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
  constexpr size_t kCublasWorkspace = size_t(32) << 20;  // cuBLAS's recommendation for Hopper
  cublas_workspace_ = Buffer(Device::cuda, kCublasWorkspace);
  cublas_stream_ = stream();
  CP_CUBLAS_CHECK(cublasSetStream(cublas_, cublas_stream_));
  // After cublasSetStream, which resets the workspace (see cublas_on).
  CP_CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_workspace_.get(), kCublasWorkspace));
}

cublasHandle_t Context::cublas_on(cudaStream_t stream) {
  if (stream != cublas_stream_) {
    CP_CUBLAS_CHECK(cublasSetStream(cublas_, stream));
    CP_CUBLAS_CHECK(
        cublasSetWorkspace(cublas_, cublas_workspace_.get(), cublas_workspace_.bytes()));
    cublas_stream_ = stream;
  }
  return cublas_;
}

Context::~Context() {
  // Destructors must not throw; failures here only leak handles at process exit.
  if (cublas_) cublasDestroy(cublas_);
  if (cudnn_) cudnnDestroy(cudnn_);
}

Context& context() {
  static Context ctx;
  return ctx;
}

}  // namespace convpool::cuda
