// Vendor-library baselines for our pooling kernels, timed beside them by
// `convpool bench pool --device cuda`: what a user would get from library parts alone.
//  - Avg-TopK through CUB: every window copied into its own segment
//    (kernels/pool_avgtopk_baseline.cu), cub::DeviceSegmentedSort::SortKeysDescending over the
//    segments, then the mean of each segment's first k.
//  - Max and average pooling through cuDNN (cudnnPoolingForward / cudnnPoolingBackward).
// Both cover unpadded windows only; they are baselines, not a backend.
#pragma once
#include <cudnn.h>

#include <optional>
#include <string>

#include "kernels/pool_math.cuh"
#include "convpool/buffer.h"

namespace convpool::cuda {

class AvgTopkCubBaseline {
 public:
  // For n images of geometry g (no padding), mean of the top k of each window.
  AvgTopkCubBaseline(const PoolGeom& g, int n, int k);
  void forward(const float* x, float* y, void* stream);

 private:
  PoolGeom g_;
  int n_, k_;
  long long outputs_;
  Buffer segments_, sorted_, temp_;
  size_t temp_bytes_ = 0;
};

class CudnnPoolingBaseline {
 public:
  // `max`: cuDNN's deterministic max pooling; else its average (padding excluded, as ours
  // with include_pad off; the baseline has no padding anyway).
  CudnnPoolingBaseline(const PoolGeom& g, int n, bool max);
  ~CudnnPoolingBaseline();
  CudnnPoolingBaseline(const CudnnPoolingBaseline&) = delete;
  CudnnPoolingBaseline& operator=(const CudnnPoolingBaseline&) = delete;
  void forward(const float* x, float* y);
  // cuDNN's backward reads the forward's x and y along with dy.
  void backward(const float* x, const float* y, const float* dy, float* dx);

 private:
  void release() noexcept;
  cudnnPoolingDescriptor_t pool_ = nullptr;
  cudnnTensorDescriptor_t in_ = nullptr, out_ = nullptr;
};

// The baseline for pooling `p` over n images of geometry g, timed over `reps` runs on the
// context's stream, and checked against our kernels' output: nothing when the method has none
// (only max, avg and avgtopk do) or the windows are padded. `x` and `dy` are device inputs,
// `y_ours` our forward's device output for x.
struct PoolBaselineTiming {
  std::string name;          // "cuDNN max", "CUB segmented sort"
  double forward_ms = 0;
  double backward_ms = -1;   // -1: the baseline has no backward
  double max_abs_difference = 0;  // its forward against ours
};
std::optional<PoolBaselineTiming> time_pool_baseline(const PoolGeom& g, const PoolWindowParams& p,
                                                     int n, const float* x, const float* dy,
                                                     const float* y_ours, int reps);

}  // namespace convpool::cuda
