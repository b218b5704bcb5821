// Measuring the training code path, shared by `convpool profile` and `convpool bench`: the
// steps timed are Trainer::train_epoch's, on the device the graph was built for.
#pragma once
#include <string>
#include <vector>

#include "convpool/graph.h"
#include "convpool/profile.h"
#include "convpool/trainer.h"

namespace convpool::cli {

struct StepTiming {
  int steps = 0, batch = 0;
  double seconds = 0;            // wall time of the measured steps (device work included)
  double data_wait_seconds = 0;  // CUDA: host time waiting for a staging slot
  double step_ms() const { return steps ? 1e3 * seconds / steps : 0; }
  double images_per_second() const { return seconds > 0 ? double(steps) * batch / seconds : 0; }
};

// Runs `warmup` then `steps` full training steps of cfg.batch images from `data` (which must
// hold at least (warmup + steps) * batch images) through a fresh Trainer on `graph`. When
// `timer` is given it is installed for the measured steps only; when `profiler_range` is set
// those steps are wrapped in cudaProfilerStart/Stop (for nsys/ncu capture ranges; CUDA
// graphs only).
StepTiming time_training_steps(Graph& graph, const TrainConfig& cfg, const Dataset& data,
                               int warmup, int steps, RegionTotals* timer = nullptr,
                               bool profiler_range = false);

// `images` synthetic images and labels the graph takes: its input side and its class count (a
// one-line error for a model whose input is not 3 x side x side).
Dataset synthetic_for(const Graph& graph, size_t images);

// "1.23 GB/s"-style helpers for tables.
std::string human_bytes(double bytes);

}  // namespace convpool::cli
