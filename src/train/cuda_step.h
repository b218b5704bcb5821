// The CUDA training step. With the pinned placement, CIFAR-10 batches stream through pinned
// staging slots (the copy of batch i+1 overlaps the compute of batch i) and are converted on
// the GPU; with the device placement, the data sets sit in GPU memory and each step gathers
// its batch through the epoch order made there (src/cuda/device_data.h). Then forward, loss,
// backward and the fused optimizer run on one stream; full batches replay a captured CUDA
// Graph. Loss and accuracy accumulate on the device and are read once per epoch.
#pragma once
#include <cstdint>
#include <memory>

#include "convpool/data.h"
#include "convpool/graph.h"
#include "convpool/optim.h"
#include "step.h"

namespace convpool::cuda {

class TrainStepper final : public StepBackend {
 public:
  // `start_step`: optimizer steps already taken (a resumed run); `use_graph`: capture and
  // replay full batches as a CUDA Graph (else launch eagerly, for debugging).
  // `input`: normalisation, and the augmentation applied to training batches.
  // `resident`: the device placement (else pinned staging).
  TrainStepper(Graph& graph, const OptimizerConfig& opt, const StepRecipe& recipe,
               const InputTransform& input, uint64_t seed, uint64_t start_step, bool use_graph,
               bool resident = false);
  ~TrainStepper() override;
  // Queues one training step on images idx[0..n); returns without waiting for the GPU. The
  // step number is kept on the device (begun from start_step), so `step` is not read.
  // Device placement: uploads `train` (once), makes the epoch's order on the GPU (the first
  // epoch checks it against `order`, the CPU's) and sets the device cursor to `position`.
  void begin_epoch(const Dataset& train, const uint32_t* order, uint64_t epoch,
                   uint64_t position) override;
  // Pinned placement: stages images idx[0..n). Device placement: idx is not read; the step
  // gathers its images from the device order at the device cursor (the same images).
  bool step(const Dataset& ds, const uint32_t* idx, int n, uint64_t step, int n_global,
            uint32_t first) override;
  StepCounters collect() override;  // waits for the queued steps
  StepCounters peek() override;     // waits for the queued steps, keeps the sums
  bool sums_on_host() const override { return false; }
  const float* eval_logits(const Dataset& ds, const uint32_t* idx, int n,
                           const TtaView& view) override;
  void synchronize() override;
  bool pinned() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convpool::cuda
