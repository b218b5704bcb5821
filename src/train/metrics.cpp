#include "convpool/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
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
  // A file saved by a Windows editor ends its lines in CRLF: read the same.
  const auto next_line = [&f](std::string& l) {
    if (!std::getline(f, l)) return false;
    if (!l.empty() && l.back() == '\r') l.pop_back();
    return true;
  };
  next_line(line);
  const bool has_lr = line == kMetricsCsvHeader;
  if (!has_lr && line != kMetricsCsvHeaderWithoutLr)
    CP_USER_ERROR(path << ":1: not a convpool metrics file (header '" << line << "')");
  std::map<int, EpochMetrics> by_epoch;
  for (int lineno = 2; next_line(line); ++lineno) {
    if (line.empty()) continue;
    EpochMetrics m;
    m.lr = std::nan("");
    int used = 0, lr_used = 0;
    const int got = std::sscanf(line.c_str(), "%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf%n", &m.epoch, &m.loss,
                                &m.accuracy, &m.test_loss, &m.test_accuracy, &m.seconds,
                                &m.images_per_second, &m.data_wait_seconds, &used);
    const char* rest = line.c_str() + (got == 8 ? used : 0);
    if (has_lr && got == 8 && std::sscanf(rest, ",%lf%n", &m.lr, &lr_used) == 1) rest += lr_used;
    if (got != 8 || *rest || m.epoch < 1 || (has_lr && lr_used == 0))
      CP_USER_ERROR(path << ":" << lineno << ": malformed metrics row '" << line << "'");
    by_epoch[m.epoch] = m;
  }
  std::vector<EpochMetrics> rows;
  for (auto& [epoch, m] : by_epoch) rows.push_back(m);
  return rows;
}

namespace {
std::string csv_row(const EpochMetrics& m) {
  std::ostringstream s;
  s.precision(9);  // losses round-trip: reruns compare bit for bit
  s << m.epoch << "," << m.loss << "," << m.accuracy << "," << m.test_loss << ","
    << m.test_accuracy << "," << m.seconds << "," << m.images_per_second << ","
    << m.data_wait_seconds << "," << m.lr << "\n";
  return s.str();
}
}  // namespace

MetricsLog::MetricsLog(const std::string& path, const std::vector<EpochMetrics>& rows)
    : path_(path) {
  std::string text = std::string(kMetricsCsvHeader) + "\n";
  for (const EpochMetrics& m : rows) text += csv_row(m);
  write_file_atomic(path, text);
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) CP_USER_ERROR("cannot write " << path << ": " << std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::append(const EpochMetrics& row) {
  const std::string line = csv_row(row);
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t w = ::write(fd_, line.data() + done, line.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) CP_USER_ERROR("cannot append to " << path_ << ": " << std::strerror(errno));
    done += size_t(w);
  }
  if (::fsync(fd_) != 0) CP_USER_ERROR("cannot sync " << path_ << ": " << std::strerror(errno));
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
