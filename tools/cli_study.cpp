// convpool study: trains a model once per pooling method and seed, sequentially, then writes
// results.csv (every epoch of every run), summary.md (one row per method) and, when matplotlib
// is available, study.png. Re-running the same command resumes: finished runs are skipped and
// an interrupted one continues from its checkpoint.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cli_common.h"
#include "cli_run.h"
#include "convpool/checkpoint.h"
#include "convpool/metrics.h"
#include "convpool/safetensors.h"
#include "convpool/study.h"

namespace convpool::cli {

namespace fs = std::filesystem;

namespace {

struct StudyOptions {
  TrainOptions train;
  std::string pools = "max,avg,avgtopk:k=2,avgtopk:k=3,mixed,stochastic,lp:p=3,softpool";
  int seeds = 1;
  uint64_t first_seed = 1;
  bool no_plot = false;
};

std::string plot_script() {
  const std::string local = "tools/plot";
  if (fs::exists(local)) return local;
  return std::string(CONVPOOL_SOURCE_DIR) + "/tools/plot";
}

// The first of $CONVPOOL_PYTHON, /usr/bin/python3 (Debian's, where python3-matplotlib
// installs) and python3 on PATH that can import matplotlib; "" if none can.
std::string python_with_matplotlib() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("CONVPOOL_PYTHON"); env && *env) candidates.push_back(env);
  candidates.push_back("/usr/bin/python3");
  candidates.push_back("python3");
  for (auto& py : candidates)
    if (std::system(("'" + py + "' -c 'import matplotlib' >/dev/null 2>&1").c_str()) == 0)
      return py;
  return "";
}

// Draws DIR/study.png through tools/plot.
void plot_study(const std::string& dir, ConsoleReporter& out) {
  const std::string py = python_with_matplotlib();
  if (py.empty()) {
    out.line(
        "plot skipped: no python3 with matplotlib (apt install python3-matplotlib, or set "
        "CONVPOOL_PYTHON), then run: tools/plot --study " +
        dir);
    return;
  }
  const std::string cmd = "'" + py + "' '" + plot_script() + "' --study '" + dir + "'";
  if (std::system(cmd.c_str()) != 0)
    out.line("plot failed (the tables are written); command: " + cmd);
}

int run(StudyOptions& so, CLI::App* cmd) {
  TrainOptions& base = so.train;
  if (!base.config.empty()) apply_config_file(cmd, base.config);
  if (base.out.empty()) CP_USER_ERROR("--out DIR is required: the study writes its runs there");
  resolve_options(cmd, base);
  const auto pools = parse_pool_list(so.pools);
  for (auto& p : pools) check_model(base.model, p);
  make_directory(base.out);
  write_config(cmd, base.out + "/config.toml");

  const RunData data = load_run_data(base);
  const Dataset& train = data.train;
  const Dataset& test = data.test;
  install_stop_handlers();
  ConsoleReporter reporter(base.verbosity(), stdout_is_terminal());
  reporter.line("convpool study: " + std::to_string(pools.size()) + " methods x " +
                std::to_string(so.seeds) + " seeds, " + std::to_string(base.cfg.epochs) +
                " epochs each, " + std::to_string(train.size()) + " train images, into " +
                base.out);

  std::vector<StudyRow> rows;
  const int total = int(pools.size()) * so.seeds;
  int index = 0;
  for (const auto& pool : pools)
    for (int k = 0; k < so.seeds; ++k) {
      ++index;
      const uint64_t seed = so.first_seed + uint64_t(k);
      TrainOptions o = base;
      o.pool = pool;
      o.cfg.seed = seed;
      o.out = base.out + "/runs/" + pool_label(pool) + "/seed-" + std::to_string(seed);
      const std::string last = o.out + "/last.safetensors";
      const std::string title = "run " + std::to_string(index) + "/" + std::to_string(total) +
                                ": " + pool + " seed " + std::to_string(seed);
      bool finished = false;
      if (fs::exists(last)) {
        const Checkpoint c = load_checkpoint(last);
        if (c.pool_override != pool || c.state.seed != seed)
          CP_USER_ERROR(last << " belongs to another run (pool '" << c.pool_override << "', seed "
                             << c.state.seed << "); use a fresh --out");
        const auto& opt = c.state.optimizer;
        if (c.state.batch != base.cfg.batch || opt.kind != base.cfg.optimizer.kind ||
            opt.lr != base.cfg.optimizer.lr || !(c.state.input == base.cfg.input))
          CP_USER_ERROR(last << " was trained with other settings (batch " << c.state.batch << ", "
                             << optimizer_name(opt.kind) << " lr " << opt.lr << ", input "
                             << describe(c.state.input)
                             << "); a study resumes only with its own: use a fresh --out");
        finished = c.state.epoch >= base.cfg.epochs;
        if (!finished) o.resume = last;
      }
      if (finished) {
        reporter.line(title + ": finished earlier, skipped");
      } else {
        reporter.line(title + (o.resume.empty() ? "" : " (resuming)"));
        make_directory(o.out);
        try {
          train_run(o, train, test, reporter);
        } catch (const Interrupted&) {
          throw Interrupted("study interrupted during " + title +
                            "; its checkpoint is saved: run the same study command again to "
                            "resume (finished runs are skipped)");
        }
      }
      for (auto& m : read_metrics_csv(o.out + "/metrics.csv"))
        if (m.epoch <= base.cfg.epochs) rows.push_back(StudyRow{pool, seed, m});
    }

  write_file_atomic(base.out + "/results.csv", study_results_csv(rows));
  const auto summary = summarize_study(rows);
  const std::string md = study_summary_markdown(
      summary, "Pooling study: " + fs::path(base.model).stem().string() + ", " +
                   std::to_string(so.seeds) + " seed(s), " + std::to_string(base.cfg.epochs) +
                   " epochs, " + std::to_string(train.size()) + " training images, " + base.device);
  write_file_atomic(base.out + "/summary.md", md);
  reporter.line("\n" + md);
  if (!so.no_plot) plot_study(base.out, reporter);
  reporter.line("results.csv, summary.md and config.toml in " + base.out);
  return 0;
}

}  // namespace

Runner add_study_command(CLI::App& app) {
  auto so = std::make_shared<StudyOptions>();
  CLI::App* cmd = app.add_subcommand(
      "study", "compare pooling methods: train once per method and seed, then tabulate and plot");
  add_training_options(cmd, so->train);
  cmd->add_option("--pools", so->pools,
                  "pooling methods to compare, comma-separated, each METHOD[:key=value,...]")
      ->capture_default_str();
  cmd->add_option("--seeds", so->seeds, "runs per method (seeds --seed, --seed+1, ...)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--seed", so->first_seed, "the first seed")
      ->capture_default_str()
      ->check(kWholeNumber);
  cmd->add_option("--out", so->train.out, "study directory (required)")->configurable(false);
  cmd->add_flag("--no-plot", so->no_plot, "do not draw study.png");
  cmd->footer(
      "Writes DIR/runs/METHOD/seed-N/ (one run directory each), DIR/results.csv, DIR/summary.md,\n"
      "DIR/study.png and DIR/config.toml. Run the same command again to resume.\n\n"
      "Examples:\n"
      "  convpool study --pools max,avg,avgtopk:k=2 --seeds 2 --epochs 10 --out studies/first\n"
      "  convpool study --pools max,mixed --epochs 1 --limit-train 2000 --device cpu --out /tmp/s");
  return [so, cmd] { return run(*so, cmd); };
}

}  // namespace convpool::cli
