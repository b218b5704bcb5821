// Console progress for train and study, in the manner of Keras: on a terminal a live bar per
// epoch (step/total, ETA, running loss and accuracy, images/s); elsewhere (CI, pipes, files)
// one plain line per epoch and no control characters.
#pragma once
#include <functional>
#include <cstdio>
#include <string>

#include "convpool/trainer.h"

namespace convpool::cli {

enum class Verbosity { quiet, normal, verbose };

class ConsoleReporter : public TrainObserver {
 public:
  // `live`: draw the bar (stdout is a terminal). `prefix` starts every line (study: the run).
  ConsoleReporter(Verbosity v, bool live, std::string prefix = "");
  // A terminal refreshes 4 times a second; a pipe only needs the verbose 10% lines.
  double batch_interval_seconds() const override;
  void on_batch(const BatchProgress& p) override;
  void on_epoch(const EpochMetrics& m, int epochs) override;
  void on_checkpoint() override {
    if (after_checkpoint) after_checkpoint();
  }
  std::function<void()> after_checkpoint;  // e.g. discard the run --overwrite replaced
  // Prints a line (clearing a live bar first) unless quiet.
  void line(const std::string& text);

 private:
  Verbosity verbosity_;
  bool live_;
  std::string prefix_;
  bool bar_shown_ = false;
  int last_decile_ = -1;
};

// True when stdout is a terminal.
bool stdout_is_terminal();

// "[=========>..........]" of `width` characters for done/total.
std::string progress_bar(uint64_t done, uint64_t total, int width);
// "1:05" / "1:02:03".
std::string format_duration(double seconds);

}  // namespace convpool::cli
