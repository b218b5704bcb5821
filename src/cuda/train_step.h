// The CUDA training step: CIFAR-10 batches stream through pinned staging slots (the copy of
// batch i+1 overlaps the compute of batch i), are converted on the GPU, and run forward, loss,
// backward and the fused optimizer on one stream; full batches replay a captured CUDA Graph.
// Loss and accuracy accumulate on the device and are read once per epoch.
#pragma once
#include <cstdint>
#include <memory>

#include "convpool/data.h"
#include "convpool/graph.h"
#include "convpool/optim.h"

namespace convpool::cuda {

struct EpochCounters {
  double loss_sum = 0;
  uint64_t correct = 0;
  uint64_t first_bad_step = 0;   // 0: every loss and gradient was finite
  double host_wait_seconds = 0;  // time the host waited for a free staging slot
};

class TrainStepper {
 public:
  // `start_step`: optimizer steps already taken (a resumed run); `use_graph`: capture and
  // replay full batches as a CUDA Graph (else launch eagerly, for debugging).
  // `input`: normalisation, and the augmentation applied to training batches.
  TrainStepper(Graph& graph, const OptimizerConfig& opt, const InputTransform& input, uint64_t seed,
               uint64_t start_step, bool use_graph);
  ~TrainStepper();
  // Queues one training step on images idx[0..n); returns without waiting for the GPU.
  void step(const Dataset& ds, const uint32_t* idx, int n);
  // Waits for the queued steps, returns the epoch's counters and resets them.
  EpochCounters finish_epoch();
  // Waits for the queued steps and returns the running counters without resetting them.
  EpochCounters peek_counters();
  // Evaluation-mode forward of images idx[0..n); copies the logits to host `logits`.
  void eval_batch(const Dataset& ds, const uint32_t* idx, int n, float* logits);
  void synchronize();
  bool pinned() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convpool::cuda
