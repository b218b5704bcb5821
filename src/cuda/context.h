// The process-wide CUDA context: one compute stream, one cuDNN and one cuBLAS handle bound to
// it, and a cuBLAS workspace we own (so cuBLAS never allocates during CUDA Graph capture).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "convpool/buffer.h"
#include "pinned.h"

namespace convpool::cuda {

class Context {
 public:
  Context();
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  cudaStream_t stream() const { return stream_.get(); }
  cudnnHandle_t cudnn() const { return cudnn_; }
  cublasHandle_t cublas() const { return cublas_; }
  // The cuBLAS handle bound to `stream`, with our workspace. cublasSetStream resets the
  // handle's workspace to cuBLAS's own pool (which allocates, also during graph capture), so
  // the stream is set only when it changes, and our workspace is set again each time.
  cublasHandle_t cublas_on(cudaStream_t stream);

 private:
  int device_;  // initialised first: checks the device before any handle is created
  Stream stream_;
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  Buffer cublas_workspace_;
  cudaStream_t cublas_stream_ = nullptr;  // the stream cublas_ is bound to
};

// Created on first use, on the device --device cuda:N chose (cuda_device_index(), 0 by
// default); throws with the reason if that device is not usable.
Context& context();

}  // namespace convpool::cuda
