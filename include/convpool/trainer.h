// Trainer: runs epochs of shuffled mini-batches through a Graph, evaluates on the test set
// after each epoch, prints a Keras-style line and appends it to the run's metrics file.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "convpool/data.h"
#include "convpool/graph.h"
#include "convpool/optim.h"

namespace convpool {

struct TrainConfig {
  int epochs = 10;
  int batch = 32;
  uint64_t seed = 1;
  Device device = Device::cpu;
  OptimizerConfig optimizer;
  std::string out_dir;  // metrics.csv goes here; empty: no files written
  bool quiet = false;
};

struct EpochMetrics {
  int epoch = 0;
  double loss = 0, accuracy = 0;            // running means over the epoch's training batches
  double test_loss = 0, test_accuracy = 0;  // over the whole test set, evaluation mode
  double seconds = 0, images_per_second = 0;
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  std::vector<int> predictions;  // per test image
};

class Trainer {
 public:
  Trainer(Graph& graph, const TrainConfig& cfg);
  ~Trainer();
  // Runs every epoch; returns the metrics of each.
  std::vector<EpochMetrics> fit(const Dataset& train, const Dataset& test);
  // One epoch of training (0-based epoch index drives the shuffle).
  EpochMetrics train_epoch(const Dataset& train, int epoch);
  EvalResult evaluate(const Dataset& test);
  uint64_t step() const { return step_; }

 private:
  struct Impl;
  Graph& graph_;
  TrainConfig cfg_;
  uint64_t step_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convpool
