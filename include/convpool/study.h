// A pooling study: one training run per (pooling method, seed), then a table that compares
// the methods. This holds the parts that are plain data handling; `convpool study`
// (tools/cli_study.cpp) runs the trainings.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "convpool/trainer.h"

namespace convpool {

// Splits "max,avg,avgtopk:k=2,tmaxavg:t=0.5,k=3" into pooling overrides. A comma also
// separates a method's own parameters, so an item with '=' and no ':' continues the method
// before it ("tmaxavg:t=0.5,k=3"). Empty items and duplicates are one-line errors.
std::vector<std::string> parse_pool_list(const std::string& list);

// A file-system-safe name for a pooling override: "avgtopk:k=2" -> "avgtopk-k2".
std::string pool_label(const std::string& pool);

// One epoch of one run.
struct StudyRow {
  std::string method;  // the pooling override, as given
  uint64_t seed = 0;
  EpochMetrics m;
};

// The rows as results.csv: method,seed,epoch,loss,accuracy,test_loss,test_accuracy,seconds,
// images_per_second.
std::string study_results_csv(const std::vector<StudyRow>& rows);
std::vector<StudyRow> parse_study_results_csv(const std::string& text, const std::string& origin);

// Per method, over its seeds' last epochs: mean and sample std of the final test accuracy,
// the epoch where the seed-mean test accuracy peaks, mean seconds per epoch, and cost and
// accuracy relative to max pooling (when max is in the study).
struct MethodSummary {
  std::string method;
  int seeds = 0, epochs = 0;
  double mean_accuracy = 0, std_accuracy = 0;
  int best_epoch = 0;
  double best_mean_accuracy = 0;
  double seconds_per_epoch = 0;
  // Max pooling is the baseline: "max", or the one "max:..." where no plain max is studied.
  bool is_baseline = false;
  double relative_cost = 0;  // seconds_per_epoch / max's; 0 when max is absent
  std::vector<double> final_accuracies;  // one per seed, in seed order
  // Against max pooling's final accuracies (when max is in the study and this is not max):
  // mean difference and Welch's two-sided p (NaN when a side has under 2 seeds or no spread).
  double difference_vs_max = std::nan("");
  double p_vs_max = std::nan("");
};
// Sorted by mean final test accuracy, best first.
std::vector<MethodSummary> summarize_study(const std::vector<StudyRow>& rows);
std::string study_summary_markdown(const std::vector<MethodSummary>& s, const std::string& title);

}  // namespace convpool
