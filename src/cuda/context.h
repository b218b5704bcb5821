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

 private:
  int device_;  // initialised first: checks the device before any handle is created
  Stream stream_;
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  Buffer cublas_workspace_;
};

// Created on first use, on the device --device cuda:N chose (cuda_device_index(), 0 by
// default); throws with the reason if that device is not usable.
Context& context();

}  // namespace convpool::cuda
