// A run directory's metrics.csv: one row per epoch. A run (fresh or resumed) first rewrites
// the file from the history its checkpoint carries, then appends each epoch's row and fsyncs
// it before that epoch's checkpoint is saved. So the file never holds fewer epochs than the
// newest checkpoint, and a crash between row and checkpoint is undone by the next resume.
#pragma once
#include <string>
#include <vector>

#include "convpool/epoch_metrics.h"

namespace convpool {

constexpr const char* kMetricsCsvHeader =
    "epoch,loss,accuracy,test_loss,test_accuracy,seconds,images_per_second,data_wait_seconds,lr";
// The header of files written before the lr column: still read (their rows' lr is NaN).
constexpr const char* kMetricsCsvHeaderWithoutLr =
    "epoch,loss,accuracy,test_loss,test_accuracy,seconds,images_per_second,data_wait_seconds";

// Rows sorted by epoch, one per epoch. A missing file gives no rows; a malformed one is a
// one-line error naming file:line.
std::vector<EpochMetrics> read_metrics_csv(const std::string& path);

// Writes metrics.csv rows, durably.
class MetricsLog {
 public:
  // Replaces `path` atomically by the header and `rows`, then opens it for appending.
  MetricsLog(const std::string& path, const std::vector<EpochMetrics>& rows);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  // Appends one row and fsyncs the file; a failure is a one-line error.
  void append(const EpochMetrics& row);

 private:
  std::string path_;
  int fd_ = -1;
};

// One line for a finished run: final and best test accuracy, and the mean epoch time.
std::string run_summary_line(const std::vector<EpochMetrics>& rows);

}  // namespace convpool
