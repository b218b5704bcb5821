// Host launchers of the CUDA backend. Each takes device pointers and a stream (void* so that
// this header needs no CUDA headers), launches, and checks the launch. Defined in kernels/*.cu
// and src/cuda/*.cpp; only built when CONVPOOL_HAVE_CUDA.
#pragma once
#include <cstddef>
#include <cstdint>

#include "pool_math.cuh"
#include "convpool/data.h"

#include "convpool/optim.h"

namespace convpool::cuda {

// Per-step scalars kept in device memory, so a captured CUDA Graph replays with the current
// step: kernels read the step (random draws) and the Adam step size from here.
struct StepScalars {
  uint64_t step;  // the step being run, counting from 1
  float lr_t;     // the optimizer's step size at `step` (Adam's bias correction folded in)
  float lr;       // the scheduled lr at `step` (AdamW's decoupled decay is lr * wd)
  // Clipping by global norm (kernels/optim.cu): each block's sum of squared gradients, then
  // the norm and the factor the update multiplies the gradients by.
  static constexpr int kGradNormBlocks = 128;
  double grad_norm_parts[kGradNormBlocks];
  float grad_norm, grad_scale;
};

// kernels/optim.cu: step += 1, and lr_t and lr for the new step (one thread).
void begin_step(StepScalars* scalars, const OptimizerConfig& cfg, void* stream);
// Sets step (so the next begin_step runs step + 1).
void set_step(StepScalars* scalars, uint64_t step, void* stream);
// One fused update of the trainable groups of the flat buffer with the scalars' lr_t. With `first_bad_step`
// (device), a non-finite gradient lowers *first_bad_step to the step and that element is not
// updated, and a step already flagged updates nothing (kernels/optim.cu says how this differs
// from the CPU, which skips the whole step).
// With cfg.clip_grad_norm, first the global norm of the trainable gradients (a reduction in a
// fixed order) into the scalars' grad_scale, which the update then applies.
void optimizer_update(const OptimizerConfig& cfg, const ParamGroups& groups,
                      StepScalars* scalars, float* params, const float* grads, float* state0,
                      float* state1, void* stream, unsigned long long* first_bad_step = nullptr);

// kernels/optim.cu: ema = decay * ema + (1 - decay) * params over n floats; nothing once
// *first_bad_step (device, optional) flags the step, whose weights are unusable.
void ema_update(float* ema, const float* params, size_t n, float decay, void* stream,
                const unsigned long long* first_bad_step = nullptr);

// kernels/pad.cu: xp (planes x HP x WP) = x (planes x H x W) placed at (top, left) in zeros;
// crop_planes is its adjoint, dx = the (top, left) H x W window of dxp (overwritten).
void pad_planes(const float* x, float* xp, size_t planes, int H, int W, int top, int left, int HP,
                int WP, void* stream);
void crop_planes(const float* dxp, float* dx, size_t planes, int H, int W, int top, int left,
                 int HP, int WP, void* stream);

// kernels/relu.cu
void relu_forward(const float* x, float* y, size_t n, void* stream);
void relu_backward(const float* y, const float* dy, float* dx, size_t n, void* stream);

// kernels/bias.cu: y[n][c][p] += b[c]; db[c] = sum over n, p of dy[n][c][p] (overwritten).
void bias_add(float* y, const float* b, int n, int c, int plane, void* stream);
void bias_grad(const float* dy, float* db, int n, int c, int plane, void* stream);

// Pooling, every method, in two kernel families chosen by window size:
//  - kernels/pool_small.cu, windows of up to kPoolSmallWindow elements: one thread per output
//    (forward) or per input element (backward, gather form: deterministic, no atomics);
//  - kernels/pool_warp.cu, global pooling of planes up to 32x32 and other windows above
//    kPoolSmallWindow elements (up to kPoolWarpWindow) that do not overlap: one warp per window,
//    the selection by warp-level partial sort (kernels/warp_select.cuh), the indices it picked kept
//    in `ranked` (pool_state_ints of them) for backward.
// `step` is a device pointer (drives mixed and stochastic draws); `alpha` is the
// learned-mixed parameter (device, or null).
constexpr int kPoolSmallWindow = 64, kPoolWarpWindow = 1024;
// Global pooling (one window covering the plane) always takes the warp family.
inline bool pool_uses_warp_kernels(const PoolGeom& g) {
  const bool global = g.OH == 1 && g.OW == 1 && g.KH == g.H && g.KW == g.W;
  return global || g.KH * g.KW > kPoolSmallWindow;
}
// The layer state the warp kernels need: the selection of every output.
inline size_t pool_state_ints(const PoolGeom& g, const PoolWindowParams& p, int batch) {
  if (!pool_uses_warp_kernels(g)) return 0;
  return size_t(batch) * g.C * g.OH * g.OW * size_t(pool_ranks_needed(p, g.KH * g.KW));
}
// `first_output`: the global index of output 0, for the stochastic draws (data-parallel slices).
void pool_forward(const PoolGeom& g, const PoolWindowParams& p, uint64_t seed, uint32_t layer,
                  const uint64_t* step, const float* alpha, int n, const float* x, float* y,
                  int32_t* ranked, void* stream, uint64_t first_output = 0);
// dx (null: not wanted) is overwritten. dalpha (device, learned mixed only) receives the
// gradient of alpha.
void pool_backward(const PoolGeom& g, const PoolWindowParams& p, uint64_t seed, uint32_t layer,
                   const uint64_t* step, const float* alpha, int n, const float* x, const float* y,
                   const float* dy, float* dx, float* dalpha, const int32_t* ranked, void* stream,
                   uint64_t first_output = 0);

// kernels/pool_warp.cu, called by the two above for large windows.
struct PoolLaunch;
void pool_forward_warp(const PoolLaunch& L, int planes, const float* x, float* y, int32_t* ranked,
                       void* stream);
void pool_backward_warp(const PoolLaunch& L, int planes, const float* x, const float* y,
                        const float* dy, float* dx, const int32_t* ranked, void* stream);

// What every pooling kernel needs to know about its call.
struct PoolLaunch {
  PoolGeom g;
  PoolWindowParams p;
  uint64_t seed;
  uint32_t layer;
  const uint64_t* step;  // device
  const float* alpha;    // device, learned mixed only
  uint64_t first_output = 0;  // the global index of output 0 (data-parallel slices)
};

// kernels/loss.cu: fused softmax cross-entropy. dlogits = (softmax - target) * grad_scale, the
// target onehot smoothed by `label_smoothing` (kernels/loss_math.cuh).
// Adds the batch's summed loss (in a fixed order, through `sample_loss`: n doubles of device
// scratch) and correct count to the device accumulators. If `scalars` and `first_bad_step`
// are given, a non-finite loss lowers *first_bad_step to the step.
void softmax_xent(int n, int classes, const float* logits, const uint8_t* labels, float* dlogits,
                  float grad_scale, float label_smoothing, double* loss_sum, double* sample_loss,
                  unsigned long long* correct, void* stream, const StepScalars* scalars = nullptr,
                  unsigned long long* first_bad_step = nullptr);

// kernels/pool_baseline.cu: the parts of the library baseline of Avg-TopK around CUB's
// segmented sort (src/cuda/pool_baselines.h). gather_windows copies each unpadded window of
// the n images into its own segment of KH*KW floats; mean_of_leading writes the mean of each
// sorted segment's first k values.
void gather_windows(const PoolGeom& g, int n, const float* x, float* segments, void* stream);
void mean_of_leading(long long outputs, int window, int k, const float* sorted, float* y,
                     void* stream);

// kernels/convert.cu: n uint8 CIFAR images -> float NCHW, pixel / 255 normalised by `t`; in
// training, augmented (crop, flip, cutout) by draws from (seed, *step, image), as
// images_to_float does.
// `step` is a device pointer (read at run time, so a captured graph replays correctly).
// `first_index`: the position of image 0 in the step's global batch (images_to_float's).
// Out of training, `view` shifts and mirrors every image (view_to_float's test-time views).
void input_to_float(const uint8_t* src, float* dst, int n, const InputTransform& t, bool training,
                    uint64_t seed, const uint64_t* step, void* stream, uint32_t first_index = 0,
                    const TtaView& view = {});
// The same, from a data set resident on the device: image i of the batch is
// images[order[*cursor + first_index + i]] and its label is written to labels_out[i]. `cursor`
// is a device pointer (null: position 0), read at run time like `step`.
void gather_input_to_float(const uint8_t* images, const uint8_t* labels, const uint32_t* order,
                           const uint64_t* cursor, float* dst, uint8_t* labels_out, int n,
                           const InputTransform& t, bool training, uint64_t seed,
                           const uint64_t* step, void* stream, uint32_t first_index = 0,
                           const TtaView& view = {});
// *cursor += by (one thread): the resident path's move to the next global batch.
void advance_cursor(uint64_t* cursor, uint32_t by, void* stream);

}  // namespace convpool::cuda
