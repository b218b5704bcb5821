// The training step, defined once for both backends (the graph issue's "one step
// definition"). training_step() is the sequence: the batch's input, forward, loss, backward,
// update. A backend supplies the parts around the graph; the CPU runs the sequence eagerly,
// CUDA captures it into a CUDA Graph and replays it. One epoch loop (Trainer::train_epoch)
// drives either through StepBackend.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "convpool/checkpoint.h"
#include "convpool/distributed.h"
#include "convpool/data.h"
#include "convpool/graph.h"
#include "convpool/optim.h"

namespace convpool {

// What a backend does around the graph in one training step.
class StepParts {
 public:
  virtual ~StepParts() = default;
  // The step's images (converted, augmented) into graph.input(n), and its labels.
  virtual void input(int n) = 0;
  // Loss of graph.output(n), its gradient into graph.output_grad(n), the sums accumulated.
  virtual void loss(int n) = 0;
  // The optimizer over the trainable parameters (the backend's non-finite policy first).
  virtual void update() = 0;
};

inline void training_step(Graph& graph, const StepContext& ctx, StepParts& parts, int n) {
  parts.input(n);
  graph.forward(ctx, n);
  parts.loss(n);
  graph.backward(ctx, n);
  parts.update();
}

// The parts of a training recipe outside the optimizer that the backends apply in each step.
struct StepRecipe {
  float label_smoothing = 0.f;  // the loss's target: (1 - eps) onehot + eps / classes
  // With `ema` (the graph's device, num_params floats): after each applied update,
  // ema = ema_decay * ema + (1 - ema_decay) * params over the whole flat buffer.
  float ema_decay = 0.f;
  float* ema = nullptr;
};

// Sums of the steps run since the last collect().
struct StepCounters {
  double loss_sum = 0;
  uint64_t correct = 0;
  uint64_t first_bad_step = 0;   // CUDA: the first step flagged non-finite on the device, or 0
  double host_wait_seconds = 0;  // CUDA: time the host waited for a free staging slot
};

// One backend's way of running training steps and evaluation batches.
class StepBackend {
 public:
  virtual ~StepBackend() = default;
  // Called before the steps of an epoch: `order` is epoch_order(train.size(), seed, epoch),
  // and the epoch starts (or resumes) at position `position` of it. Backends that keep the
  // data on the device make the same order there; the others need nothing.
  virtual void begin_epoch(const Dataset& /*train*/, const uint32_t* /*order*/, uint64_t /*epoch*/,
                           uint64_t /*position*/) {}
  // Runs (CPU) or queues (CUDA) one training step at optimizer step `step` (counting from 1)
  // on images idx[0..n): this rank's slice, from position `first`, of a global batch of
  // n_global images (the whole batch in a single process). The loss is the mean over the
  // global batch; data-parallel backends sum the gradients over the ranks. Returns false if
  // the step was skipped (--nan-policy skip).
  virtual bool step(const Dataset& ds, const uint32_t* idx, int n, uint64_t step, int n_global,
                    uint32_t first) = 0;
  // Waits for queued steps; returns the sums since the last collect and starts new ones.
  virtual StepCounters collect() = 0;
  // True when collect() costs nothing (the sums are on the host): the epoch loop then collects
  // after every step, so the sums add in the same order whatever the save schedule.
  virtual bool sums_on_host() const = 0;
  // The sums since the last collect, without starting new ones (progress displays).
  virtual StepCounters peek() = 0;
  // Evaluation-mode logits of test-time view `view` of images idx[0..n), on the host, valid
  // until the next call.
  virtual const float* eval_logits(const Dataset& ds, const uint32_t* idx, int n,
                                   const TtaView& view) = 0;
  // Waits until the parameters in the graph are those of the last step.
  virtual void synchronize() = 0;
};

// The weighted mean over `views` of the evaluation logits of images idx[0..n), into out
// (n x classes): test-time augmentation. One view of weight 1 gives the logits themselves.
void tta_logits(StepBackend& backend, const Dataset& ds, const uint32_t* idx, int n,
                int classes, const std::vector<TtaView>& views, float* out);

// Called by the CPU backend when a step's loss or gradients are not finite under
// --nan-policy stop, with what was ("loss" or "gradient") and where it first appeared (e.g.
// "first in the output of layer conv2"): it reports and throws.
using NonFiniteHandler = std::function<void(const char* what, const std::string& where)>;

// `comm`: the ranks of a data-parallel job (gradients and step sums are summed over them);
// `sync_bn`: BatchNorm normalises with the statistics of the whole global batch.
std::unique_ptr<StepBackend> make_cpu_step_backend(Graph& graph, const OptimizerConfig& opt,
                                                   const StepRecipe& recipe,
                                                   const InputTransform& input, uint64_t seed,
                                                   bool skip_non_finite,
                                                   NonFiniteHandler on_non_finite,
                                                   const Communicator& comm, bool sync_bn);

}  // namespace convpool
