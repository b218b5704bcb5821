// What `study` and its genetic search share: the recipe a study compares on resume or merge,
// one-line descriptions of what differs, and the plot helper.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_progress.h"
#include "cli_run.h"
#include "convpool/genetic_search.h"

namespace convpool::cli {

// Every setting of a study's config text that shapes training (not where it writes, which
// shard it is, what it prints, how often it saves, or its thread count).
std::string training_recipe(const std::string& config);

// The first field of two study descriptions that differs (for the recipe, its first differing
// setting), for a one-line refusal.
std::string first_difference(const nlohmann::json& a, const nlohmann::json& b);

// The first of $CONVPOOL_PYTHON, /usr/bin/python3 (Debian's, where python3-matplotlib
// installs) and python3 on PATH that can import matplotlib; "" if none can.
std::string python_with_matplotlib();

// Runs the plot helper (libexec/plot) with `args`; says why when it cannot, never fails.
void plot_with_helper(const std::string& args, ConsoleReporter& out);

// `study --search genetic`: its own flags, and the search.
struct GeneticSearchOptions {
  GeneticSettings ga;
  double validation = 0.1;  // the fraction of the training images held out for fitness
  int final_epochs = 0;     // the full training of the best genotype (0: none)
};
void add_genetic_search_options(CLI::App* cmd, GeneticSearchOptions& g);
// The flags above that the command line or config gave (refused without --search genetic).
std::vector<std::string> genetic_flags_given(const CLI::App* cmd);

// Runs or resumes the search in base.out: `pools` are the choices, base.cfg.seed the search's
// and every training's seed; process `shard` of `shards` starts with its share of each
// generation and takes over what no live process is training.
int run_genetic_search(TrainOptions& base, CLI::App* cmd, const GeneticSearchOptions& g,
                       const std::vector<std::string>& pools, int shard, int shards, bool plot);

}  // namespace convpool::cli
