// One epoch's results: a row of metrics.csv, and of the history a checkpoint carries.
#pragma once
#include <cstdint>

namespace convpool {

struct EpochMetrics {
  int epoch = 0;
  double loss = 0, accuracy = 0;            // running means over the epoch's training batches
  double test_loss = 0, test_accuracy = 0;  // over the whole test set, evaluation mode
  double seconds = 0, images_per_second = 0;
  uint64_t skipped_batches = 0;  // non-finite batches skipped (nan_policy skip)
  double data_wait_seconds = 0;  // CUDA: host time waiting for a free staging slot
  // The scheduled learning rate of the epoch's last step (NaN in rows of runs made before
  // metrics.csv had the column).
  double lr = 0;
};

}  // namespace convpool
