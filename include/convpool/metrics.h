// A run directory's metrics.csv: one row per epoch, appended as training goes (also across
// --resume). Readers take the last row of each epoch, so an epoch repeated after a crash
// between writing its row and its checkpoint counts once.
#pragma once
#include <string>
#include <vector>

#include "convpool/trainer.h"

namespace convpool {

constexpr const char* kMetricsCsvHeader =
    "epoch,loss,accuracy,test_loss,test_accuracy,seconds,images_per_second,data_wait_seconds";

// Rows sorted by epoch, one per epoch. A missing file gives no rows; a malformed one is a
// one-line error naming file:line.
std::vector<EpochMetrics> read_metrics_csv(const std::string& path);

// One line for a finished run: final and best test accuracy, and the mean epoch time.
std::string run_summary_line(const std::vector<EpochMetrics>& rows);

}  // namespace convpool
