// CUDA launcher of the fused softmax cross-entropy (kernels/loss.cu).
// Launchers take device pointers and a stream (void*, so this header needs no CUDA headers),
// launch, and check the launch; only built when CONVPOOL_HAVE_CUDA.
#pragma once
#include <cstdint>

#include "optim.cuh"

namespace convpool::cuda {

// kernels/loss.cu: fused softmax cross-entropy. dlogits = (softmax - target) * grad_scale, the
// target onehot smoothed by `label_smoothing` (kernels/loss_math.cuh).
// Adds the batch's summed loss (in a fixed order, through `sample_loss`: n doubles of device
// scratch) and correct count to the device accumulators. If `scalars` and `first_bad_step`
// are given, a non-finite loss lowers *first_bad_step to the step.
void softmax_xent(int n, int classes, const float* logits, const uint8_t* labels, float* dlogits,
                  float grad_scale, float label_smoothing, double* loss_sum, double* sample_loss,
                  unsigned long long* correct, void* stream, const StepScalars* scalars = nullptr,
                  unsigned long long* first_bad_step = nullptr);

}  // namespace convpool::cuda
