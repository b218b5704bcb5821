#include "convpool/metrics.h"

#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "convpool/error.h"
#include "convpool/file_io.h"

namespace convpool {

std::vector<EpochMetrics> read_metrics_csv(const std::string& path) {
  if (!std::filesystem::exists(path)) return {};
  std::istringstream f(read_regular_file(path, kMaxSmallTextBytes * 64, "metrics file"));
  std::string line;
  std::getline(f, line);
  if (line != kMetricsCsvHeader)
    CP_USER_ERROR(path << ":1: not a convpool metrics file (header '" << line << "')");
  std::map<int, EpochMetrics> by_epoch;
  for (int lineno = 2; std::getline(f, line); ++lineno) {
    if (line.empty()) continue;
    EpochMetrics m;
    char tail = 0;
    const int got = std::sscanf(line.c_str(), "%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf%c", &m.epoch, &m.loss,
                                &m.accuracy, &m.test_loss, &m.test_accuracy, &m.seconds,
                                &m.images_per_second, &m.data_wait_seconds, &tail);
    if (got != 8 || m.epoch < 1)
      CP_USER_ERROR(path << ":" << lineno << ": malformed metrics row '" << line << "'");
    by_epoch[m.epoch] = m;
  }
  std::vector<EpochMetrics> rows;
  for (auto& [epoch, m] : by_epoch) rows.push_back(m);
  return rows;
}

std::string run_summary_line(const std::vector<EpochMetrics>& rows) {
  if (rows.empty()) return "no epochs finished";
  const EpochMetrics* best = &rows[0];
  double seconds = 0;
  for (auto& r : rows) {
    if (r.test_accuracy > best->test_accuracy) best = &r;
    seconds += r.seconds;
  }
  char s[256];
  std::snprintf(s, sizeof s,
                "epochs %d  final test_acc %.4f  best test_acc %.4f (epoch %d)  %.1f s/epoch",
                rows.back().epoch, rows.back().test_accuracy, best->test_accuracy, best->epoch,
                seconds / double(rows.size()));
  return s;
}

}  // namespace convpool
