#include "cli_progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace convpool::cli {

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

std::string progress_bar(uint64_t done, uint64_t total, int width) {
  const int filled = total ? int(std::min<uint64_t>(done, total) * uint64_t(width) / total) : 0;
  std::string s = "[";
  s.append(size_t(filled), '=');
  if (filled < width) {
    s += '>';
    s.append(size_t(width - filled - 1), '.');
  }
  s += ']';
  return s;
}

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

ConsoleReporter::ConsoleReporter(Verbosity v, bool live, std::string prefix)
    : verbosity_(v), live_(live && v != Verbosity::quiet), prefix_(std::move(prefix)) {}

double ConsoleReporter::batch_interval_seconds() const {
  if (live_ || verbosity_ == Verbosity::verbose) return 0.25;
  return 1e30;  // nothing to show between epochs: never read the device mid-epoch
}

void ConsoleReporter::on_batch(const BatchProgress& p) {
  const double eta = p.timed_batches
                         ? p.seconds / double(p.timed_batches) * double(p.batches - p.batch)
                         : 0.0;  // rough
  char stats[192];
  std::snprintf(stats, sizeof stats, "%llu/%llu  ETA %s  loss %.4f  acc %.4f  %.0f img/s",
                (unsigned long long)p.batch, (unsigned long long)p.batches,
                format_duration(eta).c_str(), p.loss, p.accuracy, p.images_per_second);
  if (live_) {
    // \r returns to the line start, \033[K clears what a longer previous line left.
    std::printf("\r%sepoch %d/%d %s %s\033[K", prefix_.c_str(), p.epoch, p.epochs,
                progress_bar(p.batch, p.batches, 24).c_str(), stats);
    std::fflush(stdout);
    bar_shown_ = true;
    return;
  }
  if (verbosity_ != Verbosity::verbose || p.batch >= p.batches) return;
  const int decile = int(p.batch * 10 / std::max<uint64_t>(1, p.batches));
  if (decile == last_decile_ || decile == 0) return;
  last_decile_ = decile;
  std::printf("%sepoch %d/%d  %s\n", prefix_.c_str(), p.epoch, p.epochs, stats);
  std::fflush(stdout);
}

void ConsoleReporter::on_epoch(const EpochMetrics& m, int epochs) {
  last_decile_ = -1;
  std::string text = format_epoch_line(m, epochs);
  if (verbosity_ == Verbosity::verbose && m.data_wait_seconds > 0) {
    char extra[64];
    std::snprintf(extra, sizeof extra, "  data wait %.2fs", m.data_wait_seconds);
    text += extra;
  }
  line(text);
}

void ConsoleReporter::line(const std::string& text) {
  if (verbosity_ == Verbosity::quiet) return;
  if (bar_shown_) std::printf("\r\033[K");
  bar_shown_ = false;
  std::printf("%s%s\n", prefix_.c_str(), text.c_str());
  std::fflush(stdout);
}

}  // namespace convpool::cli
