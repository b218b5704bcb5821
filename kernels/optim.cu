// Fused optimizer update over the flat parameter buffer: one launch per training step. The
// step size comes from device memory (StepScalars), so the launch can live in a CUDA Graph.
#include <cmath>
#include <cub/block/block_reduce.cuh>

#include "cuda/check.h"
#include "optim.cuh"
#include "convpool/optim.h"
#include "optim_math.cuh"
#include "lr_schedule.cuh"

namespace convpool::cuda {

namespace {

__global__ void begin_step_kernel(StepScalars* s, LrSchedule schedule, bool adam, float lr,
                                  float beta1, float beta2) {
  const uint64_t t = ++s->step;
  // The CPU's formulas (optim.cpp optimizer_step_size), on the device step.
  s->lr_t = optimizer_step_size(schedule, lr, adam, beta1, beta2, t);
  s->lr = scheduled_lr(schedule, lr, t);
}

__global__ void set_step_kernel(StepScalars* s, uint64_t step) { s->step = step; }

// The CPU stops before applying a step whose loss or gradient is not finite (nan_policy stop:
// the weights stay those of the last good step). One pass cannot see the whole gradient before
// writing, so the kernels come as close as a single pass allows:
//  - a step already flagged (by the loss kernel earlier on the stream, or by an earlier step of
//    the epoch) applies nothing, so a non-finite loss leaves the weights exactly as the CPU does;
//  - an element whose gradient is not finite flags the step and keeps its weight and state;
//  - the other elements of that first bad step may still be updated (those whose threads ran
//    before the flag was set; which ones depends on the schedule). The run fails at the next
//    counter read and writes no checkpoint of that step, so those weights are never saved.
// `first_bad` null: no check (the plain optimizer_step path, which matches the CPU's
// optimizer_step: a NaN gradient gives a NaN weight).
__device__ bool step_flagged(const unsigned long long* first_bad) {
  return first_bad && *static_cast<const volatile unsigned long long*>(first_bad) != ~0ull;
}
__device__ bool flag_if_not_finite(float g, unsigned long long* first_bad, uint64_t step) {
  if (!first_bad || isfinite(g)) return false;
  atomicMin(first_bad, (unsigned long long)step);
  return true;
}

// Clipping by global norm, in a fixed order (the bits depend on n alone): block b sums the
// squares of its grid-stride elements and cub's block reduction adds the threads' sums into
// grad_norm_parts[b]; one block then adds the parts and computes the factor (the CPU's
// grad_clip_scale). The update kernels multiply each gradient by it.
constexpr int kNormThreads = 256;
__global__ void __launch_bounds__(kNormThreads)
    grad_norm_parts_kernel(const float* __restrict__ g, size_t n, StepScalars* s) {
  using Reduce = cub::BlockReduce<double, kNormThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  double part = 0;
  for (size_t i = blockIdx.x * size_t(kNormThreads) + threadIdx.x; i < n;
       i += size_t(StepScalars::kGradNormBlocks) * kNormThreads)
    part += double(g[i]) * g[i];
  const double total = Reduce(tmp).Sum(part);
  if (threadIdx.x == 0) s->grad_norm_parts[blockIdx.x] = total;
}

__global__ void __launch_bounds__(StepScalars::kGradNormBlocks)
    grad_clip_scale_kernel(StepScalars* s, float max_norm) {
  using Reduce = cub::BlockReduce<double, StepScalars::kGradNormBlocks>;
  __shared__ typename Reduce::TempStorage tmp;
  const double total = Reduce(tmp).Sum(s->grad_norm_parts[threadIdx.x]);
  if (threadIdx.x == 0) {
    const double norm = sqrt(total);
    s->grad_norm = float(norm);
    s->grad_scale = grad_clip_scale(norm, max_norm);
  }
}

// The group of element i, searched from the group of the thread's previous element: the
// grid-stride index only grows, so each thread walks the few groups once.
__device__ __forceinline__ size_t trainable_end(const ParamGroups& groups) {
  return groups.count ? groups.end[groups.count - 1] : 0;
}
__device__ __forceinline__ int group_of(const ParamGroups& groups, size_t i, int from) {
  while (from + 1 < groups.count && i >= groups.end[from]) ++from;
  return from;
}

// Adam, or AdamW when `decoupled` (optim.cpp's optimizer_step computes the same products).
__global__ void adam_kernel(ParamGroups groups, float* __restrict__ p, const float* __restrict__ g,
                            float* __restrict__ m, float* __restrict__ v,
                            const StepScalars* __restrict__ s, float beta1, float beta2, float eps,
                            float wd, bool decoupled, bool clip, unsigned long long* first_bad) {
  if (step_flagged(first_bad)) return;
  const float lr_t = s->lr_t, scheduled = s->lr, scale = clip ? s->grad_scale : 1.f;
  int k = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < trainable_end(groups);
       i += size_t(gridDim.x) * blockDim.x) {
    k = group_of(groups, i, k);
    const float gi = g[i];
    if (flag_if_not_finite(gi, first_bad, s->step)) continue;
    float pi = p[i], mi = m[i], vi = v[i];
    const float gs = gi * scale;  // exactly gi without clipping
    const float wd_k = wd * groups.wd_mult[k], lr_k = lr_t * groups.lr_mult[k];
    if (decoupled) {
      adamw_update(pi, gs, mi, vi, lr_k, scheduled * groups.lr_mult[k] * wd_k, beta1,
                   beta2, eps);
    } else {
      adam_update(pi, gs + wd_k * pi, mi, vi, lr_k, beta1, beta2, eps);
    }
    p[i] = pi, m[i] = mi, v[i] = vi;
  }
}

__global__ void sgd_kernel(ParamGroups groups, float* __restrict__ p, const float* __restrict__ g,
                           float* __restrict__ vel, const StepScalars* __restrict__ s,
                           float momentum, bool nesterov, float wd, bool clip,
                           unsigned long long* first_bad) {
  if (step_flagged(first_bad)) return;
  const float lr = s->lr_t, scale = clip ? s->grad_scale : 1.f;
  int k = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < trainable_end(groups);
       i += size_t(gridDim.x) * blockDim.x) {
    k = group_of(groups, i, k);
    const float gi = g[i];
    if (flag_if_not_finite(gi, first_bad, s->step)) continue;
    float pi = p[i];
    sgd_update(pi, gi * scale + wd * groups.wd_mult[k] * pi, vel ? vel + i : nullptr,
               lr * groups.lr_mult[k], momentum, nesterov);
    p[i] = pi;
  }
}

__global__ void ema_kernel(float* __restrict__ ema, const float* __restrict__ p, size_t n,
                           float decay, const unsigned long long* first_bad) {
  if (step_flagged(first_bad)) return;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    float e = ema[i];
    ema_step(e, p[i], decay);
    ema[i] = e;
  }
}

}  // namespace

void ema_update(float* ema, const float* params, size_t n, float decay, void* stream,
                const unsigned long long* first_bad_step) {
  if (n == 0) return;
  constexpr unsigned kThreads = 256;
  const unsigned blocks = std::min(ceil_div(n, kThreads), 4096u);
  ema_kernel<<<blocks, kThreads, 0, as_stream(stream)>>>(ema, params, n, decay, first_bad_step);
  CP_CUDA_CHECK_LAUNCH("ema_kernel");
}

void begin_step(StepScalars* scalars, const OptimizerConfig& cfg, void* stream) {
  begin_step_kernel<<<1, 1, 0, as_stream(stream)>>>(
      scalars, cfg.schedule, uses_adam_moments(cfg.kind), cfg.lr, cfg.beta1, cfg.beta2);
  CP_CUDA_CHECK_LAUNCH("begin_step_kernel");
}

void set_step(StepScalars* scalars, uint64_t step, void* stream) {
  set_step_kernel<<<1, 1, 0, as_stream(stream)>>>(scalars, step);
  CP_CUDA_CHECK_LAUNCH("set_step_kernel");
}

void optimizer_update(const OptimizerConfig& cfg, const ParamGroups& groups,
                      StepScalars* scalars, float* params, const float* grads, float* state0,
                      float* state1, void* stream, unsigned long long* first_bad_step) {
  const size_t n = groups.trainable_end();
  if (n == 0) return;
  constexpr unsigned kThreads = 256;
  const unsigned blocks = std::min(ceil_div(n, kThreads), 4096u);
  const bool clip = cfg.clip_grad_norm > 0.f;
  if (clip) {
    grad_norm_parts_kernel<<<StepScalars::kGradNormBlocks, kNormThreads, 0, as_stream(stream)>>>(
        grads, n, scalars);
    CP_CUDA_CHECK_LAUNCH("grad_norm_parts_kernel");
    grad_clip_scale_kernel<<<1, StepScalars::kGradNormBlocks, 0, as_stream(stream)>>>(
        scalars, cfg.clip_grad_norm);
    CP_CUDA_CHECK_LAUNCH("grad_clip_scale_kernel");
  }
  if (uses_adam_moments(cfg.kind)) {
    adam_kernel<<<blocks, kThreads, 0, as_stream(stream)>>>(
        groups, params, grads, state0, state1, scalars, cfg.beta1, cfg.beta2, cfg.eps,
        cfg.weight_decay, cfg.kind == OptimizerKind::adamw, clip, first_bad_step);
    CP_CUDA_CHECK_LAUNCH("adam_kernel");
  } else {
    sgd_kernel<<<blocks, kThreads, 0, as_stream(stream)>>>(groups, params, grads, state0, scalars,
                                                           cfg.momentum, cfg.nesterov,
                                                           cfg.weight_decay, clip, first_bad_step);
    CP_CUDA_CHECK_LAUNCH("sgd_kernel");
  }
}

}  // namespace convpool::cuda
