// Fused softmax cross-entropy: one warp per sample computes the stable log-sum-exp, the
// gradient and the argmax, and the batch's loss and correct count go to device accumulators
// that the trainer reads once per epoch (no host sync per step). The loss sum is in a fixed
// order (a double atomicAdd summed in whatever order the warps
// finished, so --deterministic could not hold): each warp writes its sample's loss, and one
// block adds them in an order that depends only on n. The correct count is an integer
// atomicAdd, exact in any order.
#include <climits>
#include <cub/block/block_reduce.cuh>

#include "cuda/check.h"
#include "loss.cuh"
#include "optim.cuh"
#include "loss_math.cuh"

namespace convpool::cuda {

namespace {
__global__ void softmax_xent_kernel(int n, int classes, const float* __restrict__ logits,
                                    const uint8_t* __restrict__ labels, float* __restrict__ dlogits,
                                    float grad_scale, float label_smoothing,
                                    double* __restrict__ sample_loss,
                                    unsigned long long* correct, const StepScalars* scalars,
                                    unsigned long long* first_bad_step) {
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
  if (warp >= n) return;
  const float* z = logits + size_t(warp) * classes;
  // Max and argmax (first index on ties), lane-strided then butterfly-reduced.
  float m = -INFINITY;
  int arg = INT_MAX;  // lanes with no class lose every comparison
  for (int k = lane; k < classes; k += 32)
    if (arg == INT_MAX || z[k] > m) m = z[k], arg = k;
  for (int off = 16; off; off /= 2) {
    const float om = __shfl_xor_sync(0xffffffffu, m, off);
    const int oa = __shfl_xor_sync(0xffffffffu, arg, off);
    if (om > m || (om == m && oa < arg)) m = om, arg = oa;
  }
  double den = 0;
  for (int k = lane; k < classes; k += 32) den += exp(double(z[k]) - m);
  for (int off = 16; off; off /= 2) den += __shfl_xor_sync(0xffffffffu, den, off);
  const double log_den = log(den);
  const int label = labels[warp];
  double sum_shifted = 0;  // label smoothing's sum over classes of z_k - m (uniform branch)
  if (label_smoothing > 0.f) {
    for (int k = lane; k < classes; k += 32) sum_shifted += double(z[k]) - m;
    for (int off = 16; off; off /= 2) sum_shifted += __shfl_xor_sync(0xffffffffu, sum_shifted, off);
  }
  if (dlogits)
    for (int k = lane; k < classes; k += 32) {
      const double p = exp(double(z[k]) - m - log_den);
      dlogits[size_t(warp) * classes + k] =
          float((p - smoothed_target(k, label, classes, label_smoothing)) * grad_scale);
    }
  if (lane == 0) {
    const double loss =
        smoothed_xent(log_den, double(z[label]) - m, sum_shifted, classes, label_smoothing);
    if (!isfinite(loss) && first_bad_step)
      atomicMin(first_bad_step, (unsigned long long)scalars->step);
    sample_loss[warp] = loss;
    if (arg == label) atomicAdd(correct, 1ull);
  }
}

constexpr int kSumThreads = 256;

// *loss_sum += the sum of sample_loss[0..n): thread t adds t, t + 256, ... in turn, then
// cub's block reduction (a fixed tree on the GPU, thread order in the emulator's stand-in)
// adds the 256 partial sums. The order depends on n alone, so the bits are the same on every
// run and under every schedule.
__global__ void __launch_bounds__(kSumThreads)
    loss_sum_kernel(const double* __restrict__ sample_loss, int n, double* loss_sum) {
  using Reduce = cub::BlockReduce<double, kSumThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  double part = 0;
  for (int i = threadIdx.x; i < n; i += kSumThreads) part += sample_loss[i];
  const double total = Reduce(tmp).Sum(part);
  if (threadIdx.x == 0) *loss_sum += total;
}
}  // namespace

void softmax_xent(int n, int classes, const float* logits, const uint8_t* labels, float* dlogits,
                  float grad_scale, float label_smoothing, double* loss_sum, double* sample_loss,
                  unsigned long long* correct, void* stream, const StepScalars* scalars,
                  unsigned long long* first_bad_step) {
  CP_CHECK(!first_bad_step || scalars, "first_bad_step needs the step scalars");
  if (n <= 0) return;
  constexpr unsigned kThreads = 256;  // 8 samples per block
  softmax_xent_kernel<<<ceil_div(size_t(n) * 32, kThreads), kThreads, 0, as_stream(stream)>>>(
      n, classes, logits, labels, dlogits, grad_scale, label_smoothing, sample_loss, correct, scalars,
      first_bad_step);
  CP_CUDA_CHECK_LAUNCH("softmax_xent_kernel");
  loss_sum_kernel<<<1, kSumThreads, 0, as_stream(stream)>>>(sample_loss, n, loss_sum);
  CP_CUDA_CHECK_LAUNCH("loss_sum_kernel");
}

}  // namespace convpool::cuda
