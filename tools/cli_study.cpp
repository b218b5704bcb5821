// convpool study: trains a model once per pooling method and seed, sequentially, then writes
// results.csv (every epoch of every run), summary.md (one row per method) and, when matplotlib
// is available, study.png. While an unsharded study runs, results.partial.csv and
// summary.partial.md hold the runs finished so far, until the full tables replace them.
// Re-running the same command resumes: finished runs are skipped and
// an interrupted one continues from its checkpoint. On a cluster, `--shard I/N` runs every
// N-th run from the I-th (one Slurm array task each: scripts/slurm-study.sh) and `--merge`
// combines the shards' directories into the tables an unsharded study writes.
#include <cstdio>
#include <cmath>
#include <sstream>
#include <set>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "cli_paths.h"
#include "cli_run.h"
#include "cli_study.h"
#include "convpool/checkpoint.h"
#include "convpool/file_io.h"
#include "convpool/pooling.h"
#include "convpool/run_lock.h"
#include "convpool/metrics.h"
#include "convpool/safetensors.h"
#include "convpool/study.h"

namespace convpool::cli {

namespace fs = std::filesystem;

namespace {

struct StudyOptions {
  TrainOptions train;
  std::string pools = default_study_pools();
  int seeds = 1;
  uint64_t first_seed = 1;
  bool no_plot = false;
  bool overwrite = false;           // replace what --out holds (moved aside until replaced)
  std::string shard = "0/1";        // I/N: this process runs runs I, I+N, I+2N, ... (from 0)
  std::vector<std::string> merge;   // shard directories to combine into --out
  std::string recipe;               // training_recipe of the effective config
  std::string search = "none";      // "genetic": evolve one method per pool layer
  GeneticSearchOptions genetic;
};

// "I/N" with 0 <= I < N.
std::pair<int, int> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  int i = -1, n = 0;
  try {
    size_t a = 0, b = 0;
    if (slash != std::string::npos) {
      i = std::stoi(text.substr(0, slash), &a);
      n = std::stoi(text.substr(slash + 1), &b);
    }
    if (slash == std::string::npos || a != slash || b != text.size() - slash - 1) i = -1;
  } catch (const std::exception&) {
    i = -1;
  }
  if (i < 0 || n < 1 || i >= n || n > 100000)
    CP_USER_ERROR("--shard " << text << ": expected I/N with 0 <= I < N, e.g. --shard 3/10");
  return {i, n};
}

// What defines a study, kept in DIR/study.json by every shard, so that --merge can check the
// shards belong together and put their runs in the unsharded order.
nlohmann::json study_definition(const StudyOptions& so, const std::vector<std::string>& pools,
                                size_t train_images) {
  std::vector<uint64_t> seeds;
  for (int k = 0; k < so.seeds; ++k) seeds.push_back(so.first_seed + uint64_t(k));
  return {{"model", fs::path(so.train.model).stem().string()},
          {"pools", pools},
          {"seeds", seeds},
          {"epochs", so.train.cfg.epochs},
          {"train_images", train_images},
          {"device", so.train.device},
          {"recipe", so.recipe}};
}

}  // namespace

std::string training_recipe(const std::string& config) {
  std::istringstream in(config);
  std::string recipe;
  for (std::string line; std::getline(in, line);) {
    const std::string key = line.substr(0, line.find('='));
    if (line.empty() || line[0] == '#' ||
        std::set<std::string>{"out", "shard", "merge", "no-plot", "quiet", "verbose", "save-every",
                              "keep", "threads", "config", "search", "population", "generations",
                              "tournament", "elite", "crossover", "mutation", "validation",
                              "final-epochs"}
            .count(key))
      continue;
    recipe += line + "\n";
  }
  return recipe;
}

static std::string study_title(const nlohmann::json& def) {
  return "Pooling study: " + def.at("model").get<std::string>() + ", " +
         std::to_string(def.at("seeds").size()) + " seed(s), " +
         std::to_string(def.at("epochs").get<int>()) + " epochs, " +
         std::to_string(def.at("train_images").get<size_t>()) + " training images, " +
         def.at("device").get<std::string>();
}

std::string first_difference(const nlohmann::json& a, const nlohmann::json& b) {
  auto lines = [](const std::string& text) {
    std::vector<std::string> v;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  };
  for (auto& [key, value] : a.items()) {
    if (b.contains(key) && b[key] == value) continue;
    if (key == "recipe" && value.is_string() && b.contains(key) && b[key].is_string()) {
      const auto x = lines(value.get<std::string>()), y = lines(b[key].get<std::string>());
      for (size_t i = 0; i < std::max(x.size(), y.size()); ++i) {
        const std::string lx = i < x.size() ? x[i] : "", ly = i < y.size() ? y[i] : "";
        if (lx != ly) return "the setting " + (lx.empty() ? ly : lx).substr(0, (lx.empty() ? ly : lx).find('='));
      }
    }
    return key;
  }
  for (auto& [key, value] : b.items())
    if (!a.contains(key)) return key;
  return "nothing";
}

namespace {

// DIR/study.json if there is one (null otherwise); a file that is not a study description is
// a one-line error.
nlohmann::json existing_study(const std::string& dir) {
  const std::string path = dir + "/study.json";
  if (!fs::exists(path)) return nullptr;
  try {
    return nlohmann::json::parse(read_regular_file(path, size_t(64) << 20, "study description"));
  } catch (const nlohmann::json::exception& e) {
    CP_USER_ERROR(path << ": not a study description (" << e.what() << ")");
  }
}

// The tables of the runs finished so far, while an unsharded study runs.
constexpr const char* kPartialResults = "results.partial.csv";
constexpr const char* kPartialSummary = "summary.partial.md";

// Which command wrote DIR/config.toml: "study", "train", or "" (none there).
std::string config_writer(const std::string& dir) {
  const std::string path = dir + "/config.toml";
  if (!fs::exists(path)) return "";
  const std::string text = read_regular_file(path, kMaxModelFileBytes, "config file");
  return text.rfind("# convpool study:", 0) == 0 ? "study" : "train";
}

std::string run_dir(const std::string& pool, uint64_t seed) {
  return "runs/" + pool_label(pool) + "/seed-" + std::to_string(seed);
}

// results.csv, summary.md and (unless --no-plot) study.png in `out`.
void write_study_tables(const std::string& out, const std::vector<StudyRow>& rows,
                        const std::string& title, bool plot, ConsoleReporter& reporter);

}  // namespace

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

void plot_with_helper(const std::string& args, ConsoleReporter& out) {
  std::string script;
  try {
    script = find_helper("plot");
  } catch (const Error& e) {
    out.line(std::string("plot skipped: ") + e.what());
    return;
  }
  const std::string py = python_with_matplotlib();
  if (py.empty()) {
    out.line(
        "plot skipped: no python3 with matplotlib (apt install python3-matplotlib, or set "
        "CONVPOOL_PYTHON), then run: " +
        script + " " + args);
    return;
  }
  const std::string cmd = "'" + py + "' '" + script + "' " + args;
  if (std::system(cmd.c_str()) != 0)
    out.line("plot failed (the tables are written); command: " + cmd);
}

namespace {

// Draws DIR/study.png through the plot helper.
void plot_study(const std::string& dir, ConsoleReporter& out) {
  plot_with_helper("--study '" + dir + "'", out);
}

// Each run this shard would continue: its checkpoint must be that run's, trained with this
// study's settings. Checked before anything in the directory is rewritten.
void check_existing_runs(const StudyOptions& so, const std::vector<std::string>& pools, int shard,
                         int shards) {
  const TrainOptions& base = so.train;
  int index = 0;
  for (const auto& pool : pools)
    for (int k = 0; k < so.seeds; ++k) {
      if ((index++) % shards != shard) continue;
      const uint64_t seed = so.first_seed + uint64_t(k);
      const std::string last = base.out + "/" + run_dir(pool, seed) + "/last.safetensors";
      if (!fs::exists(last)) continue;
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
    }
}

// Trains (or resumes) this shard's runs, then writes study.json and the tables.
int train_study(StudyOptions& so, CLI::App* cmd, const std::vector<std::string>& pools,
                int shard, int shards, nlohmann::json& def, const Dataset& train,
                const Dataset& test, ConsoleReporter& reporter);

int run(StudyOptions& so, CLI::App* cmd) {
  TrainOptions& base = so.train;
  if (!base.config.empty()) apply_config_file(cmd, base.config);
  if (base.out.empty()) CP_USER_ERROR("--out DIR is required: the study writes its runs there");
  resolve_options(cmd, base);
  const auto pools = parse_pool_list(so.pools);
  const auto [shard, shards] = parse_shard(so.shard);
  if (so.search == "genetic") {
    if (so.seeds != 1)
      CP_USER_ERROR("--search genetic trains each genotype once, at --seed: --seeds does not apply");
    if (so.overwrite)
      CP_USER_ERROR("--search genetic resumes what --out holds: choose a fresh --out instead of "
                    "--overwrite");
    base.cfg.seed = so.first_seed;  // the search's draws and every genotype's training
    return run_genetic_search(base, cmd, so.genetic, pools, shard, shards, !so.no_plot);
  }
  if (const auto given = genetic_flags_given(cmd); !given.empty())
    CP_USER_ERROR(given[0] << " applies to --search genetic only");
  for (auto& p : pools) check_model(base.model, p, base.resolved);
  make_directory(base.out);
  const RunDirectoryLock lock(base.out, "--out");  // one study or merge writes here at a time
  if (const std::string restored = finish_interrupted_replace(base.out);
      !restored.empty())
    std::fprintf(stderr, "convpool: %s\n", restored.c_str());
  const bool replace = so.overwrite && (fs::exists(base.out + "/study.json") ||
                                        fs::exists(base.out + "/runs") || holds_run(base.out));
  // Nothing in the directory is rewritten before this study is known to be its own: the same
  // study again (extended by epochs, methods or seeds), never a merged table or another
  // study, shard, data set or a training run.
  if (replace) {
  } else if (fs::exists(base.out + "/search.json")) {
    CP_USER_ERROR("--out " << base.out << " holds a genetic search (search.json), not a study: "
                           << "choose another --out, or pass --overwrite to replace it");
  } else if (const std::string writer = config_writer(base.out);
             writer == "train" || fs::exists(base.out + "/last.safetensors")) {
    CP_USER_ERROR("--out " << base.out << " holds a training run, not a study: choose another "
                           << "--out, or pass --overwrite to replace it");
  } else if (const nlohmann::json old = existing_study(base.out); !old.is_null()) {
    const std::string path = base.out + "/study.json";
    if (!old.contains("runs"))
      CP_USER_ERROR("--out " << base.out << " holds merged tables (" << path
                             << "), not a study to continue: choose another --out, or pass --overwrite to replace it");
    const auto [shard0, shards0] = parse_shard(so.shard);
    const nlohmann::json shard_now = {shard0, shards0};
    if (old.value("shard", shard_now) != shard_now)
      CP_USER_ERROR("--out " << base.out << " holds shard " << old["shard"][0] << "/"
                             << old["shard"][1] << " of a study, not --shard " << so.shard
                             << ": choose another --out, or pass --overwrite to replace it");
    const nlohmann::json now = study_definition(so, pools, 0);
    for (const char* key : {"model", "device"})
      if (old.value(key, nlohmann::json()) != now[key])
        CP_USER_ERROR("--out " << base.out << " holds another study (its " << key << " is "
                               << old.value(key, nlohmann::json()).dump() << ", not "
                               << now[key].dump()
                               << "): choose another --out, or pass --overwrite to replace it");
  }

  const RunData data = load_run_data(base);
  normalize_from_data(cmd, base, data.train);
  const Dataset& train = data.train;
  const Dataset& test = data.test;
  install_stop_handlers();
  ConsoleReporter reporter(base.verbosity(), stdout_is_terminal());
  reporter.line("convpool study: " + std::to_string(pools.size()) + " methods x " +
                std::to_string(so.seeds) + " seeds, " + std::to_string(base.cfg.epochs) +
                " epochs each, " + std::to_string(train.size()) + " train images, into " +
                base.out);

  nlohmann::json def = study_definition(so, pools, train.size());
  if (const nlohmann::json old = replace ? nlohmann::json() : existing_study(base.out);
      !old.is_null() && old.value("train_images", def["train_images"]) != def["train_images"])
    CP_USER_ERROR("--out " << base.out << " holds a study on " << old["train_images"].dump()
                           << " training images, not " << train.size()
                           << ": choose another --out, or pass --overwrite to replace it");
  if (!replace) check_existing_runs(so, pools, shard, shards);
  // The replaced study is deleted once this one has saved its first checkpoint.
  std::optional<ReplacedRun> replaced;
  if (replace) replaced.emplace(base.out, ReplacedKind::study);
  if (replaced) reporter.after_checkpoint = [&replaced] { replaced->discard(); };
  try {
    const int status = train_study(so, cmd, pools, shard, shards, def, train, test, reporter);
    if (replaced) replaced->discard();  // finished (a shard may have had nothing to save)
    return status;
  } catch (...) {
    if (replaced) replaced->restore_after_failure("study");
    throw;
  }
}

int train_study(StudyOptions& so, CLI::App* cmd, const std::vector<std::string>& pools,
                int shard, int shards, nlohmann::json& def, const Dataset& train,
                const Dataset& test, ConsoleReporter& reporter) {
  TrainOptions& base = so.train;
  std::vector<StudyRow> rows;
  write_config(cmd, base.out + "/config.toml");
  so.recipe = training_recipe(config_text(cmd, base.out + "/config.toml"));
  def["recipe"] = so.recipe;
  def["shard"] = {shard, shards};
  def["runs"] = nlohmann::json::array();
  const int total = int(pools.size()) * so.seeds;
  int index = 0;
  for (const auto& pool : pools)
    for (int k = 0; k < so.seeds; ++k) {
      ++index;
      if ((index - 1) % shards != shard) continue;  // another shard's run
      const uint64_t seed = so.first_seed + uint64_t(k);
      def["runs"].push_back({{"pool", pool}, {"seed", seed}, {"dir", run_dir(pool, seed)}});
      TrainOptions o = base;
      o.pool = pool;
      o.cfg.seed = seed;
      o.out = base.out + "/" + run_dir(pool, seed);
      const std::string last = o.out + "/last.safetensors";
      const std::string title = "run " + std::to_string(index) + "/" + std::to_string(total) +
                                ": " + pool + " seed " + std::to_string(seed);
      bool finished = false;
      if (fs::exists(last)) {
        const Checkpoint c = load_checkpoint(last);
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
      // A study takes hours: the tables so far are readable while the next run trains, and
      // stay if the study stops. They go to files of their own, so that a finished study's
      // tables survive being extended (--epochs) or re-run; the full tables replace them.
      if (shards == 1 && index < total) {  // unsharded: runs 1..index are done
        write_file_atomic(base.out + "/" + kPartialResults, study_results_csv(rows));
        write_file_atomic(base.out + "/" + kPartialSummary,
                          study_summary_markdown(summarize_study(rows),
                                                 study_title(def) + " (partial: " +
                                                     std::to_string(index) + " of " +
                                                     std::to_string(total) + " runs finished)"));
      }
    }

  write_file_atomic(base.out + "/study.json", def.dump(2) + "\n");
  if (shards > 1) {
    reporter.line("shard " + so.shard + " done (" + std::to_string(def["runs"].size()) +
                  " runs in " + base.out + "); combine the shards with: convpool study --merge "
                  "SHARD_DIR,... --out DIR");
    return 0;
  }
  write_study_tables(base.out, rows, study_title(def), !so.no_plot, reporter);
  reporter.line("results.csv, summary.md and config.toml in " + base.out);
  return 0;
}

void write_study_tables(const std::string& out, const std::vector<StudyRow>& rows,
                        const std::string& title, bool plot, ConsoleReporter& reporter) {
  write_file_atomic(out + "/results.csv", study_results_csv(rows));
  const std::string md = study_summary_markdown(summarize_study(rows), title);
  write_file_atomic(out + "/summary.md", md);
  for (const char* partial : {kPartialResults, kPartialSummary}) fs::remove(out + "/" + partial);
  reporter.line("\n" + md);
  if (plot) plot_study(out, reporter);
}

// --merge: the shards' runs, in the unsharded order, into the unsharded tables.
int merge(const StudyOptions& so) {
  if (so.train.out.empty()) CP_USER_ERROR("--merge needs --out DIR for the combined tables");
  for (const std::string& dir : so.merge)
    if (dir.empty())
      CP_USER_ERROR("--merge: an empty shard directory in the list; name each shard's directory, "
                    "comma-separated");
  make_directory(so.train.out);
  const RunDirectoryLock lock(so.train.out, "--out");  // one study or merge writes here at a time
  for (const std::string& dir : so.merge) {
    std::error_code ec;
    if (fs::equivalent(dir, so.train.out, ec))
      CP_USER_ERROR("--out " << so.train.out << " is one of the shards being merged: write the "
                             << "combined tables elsewhere");
  }
  // --out may hold an earlier merge of this study (checked against it below), never a study
  // or shard that trained runs there.
  if (const std::string restored = finish_interrupted_replace(so.train.out);
      !restored.empty())
    std::fprintf(stderr, "convpool: %s\n", restored.c_str());
  const nlohmann::json previous =
      so.overwrite ? nlohmann::json() : existing_study(so.train.out);
  if (!so.overwrite && config_writer(so.train.out) == "train")
    CP_USER_ERROR("--out " << so.train.out << " holds a training run: write the combined tables "
                           << "elsewhere, or pass --overwrite to replace it");
  if (!previous.is_null() && previous.contains("runs"))
    CP_USER_ERROR("--out " << so.train.out << " holds a study of its own (" << so.train.out
                           << "/study.json lists its runs): write the combined tables elsewhere, or pass "
                           << "--overwrite to replace it");
  nlohmann::json def;
  std::map<std::pair<std::string, uint64_t>, std::string> found;  // (pool, seed) -> run dir
  for (const std::string& dir : so.merge) {
    const std::string path = dir + "/study.json";
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_regular_file(path, size_t(64) << 20, "study description"));
    } catch (const nlohmann::json::exception& e) {
      CP_USER_ERROR(path << ": not a study description (" << e.what() << ")");
    }
    nlohmann::json shape = j;
    shape.erase("shard");
    shape.erase("runs");
    if (def.is_null()) def = shape;
    if (shape != def)
      CP_USER_ERROR(path << " describes another study than " << so.merge.front()
                         << "/study.json (" << first_difference(shape, def)
                         << " differs; shards merge only with one recipe)");
    for (const auto& r : j.at("runs")) {
      const auto key = std::make_pair(r.at("pool").get<std::string>(), r.at("seed").get<uint64_t>());
      // A run's directory lies inside its shard.
      const fs::path rel = r.at("dir").get<std::string>();
      bool inside = rel.is_relative() && !rel.empty();
      for (const auto& part : rel) inside = inside && part != "..";
      if (!inside)
        CP_USER_ERROR(path << ": run " << key.first << " seed " << key.second << " has dir "
                           << rel << ", outside its shard");
      if (!found.emplace(key, dir + "/" + rel.string()).second)
        CP_USER_ERROR("run " << key.first << " seed " << key.second << " is in two shards (the "
                             << "second: " << dir << ")");
    }
  }
  if (!previous.is_null() && previous != def)
    CP_USER_ERROR("--out " << so.train.out << " holds the merged tables of another study ("
                           << so.train.out
                           << "/study.json differs): write them elsewhere, or pass --overwrite "
                           << "to replace them");
  std::vector<StudyRow> rows;
  const int epochs = def.at("epochs").get<int>();
  for (const auto& pool : def.at("pools"))
    for (const auto& seed : def.at("seeds")) {
      const auto key = std::make_pair(pool.get<std::string>(), seed.get<uint64_t>());
      const auto it = found.find(key);
      if (it == found.end())
        CP_USER_ERROR("no shard holds run " << key.first << " seed " << key.second
                                            << ": merge every shard's directory");
      // Every epoch of the run, once, in order, with values in their ranges.
      const std::string csv = it->second + "/metrics.csv";
      const std::string what = "run " + key.first + " seed " + std::to_string(key.second) + " (" +
                               csv + ")";
      if (!fs::exists(csv)) CP_USER_ERROR(what << ": missing; merge only finished shards");
      int next = 1;
      for (auto& m : read_metrics_csv(csv)) {
        if (m.epoch > epochs) continue;
        if (m.epoch != next)
          CP_USER_ERROR(what << ": epoch " << m.epoch << " where " << next
                             << " belongs: an unfinished or edited run");
        auto check = [&](const char* field, double v, double lo, double hi) {
          if (!(std::isfinite(v) && v >= lo && v <= hi))
            CP_USER_ERROR(what << ": epoch " << m.epoch << " has " << field << " " << v
                               << ", outside [" << lo << ", " << hi << "]");
        };
        check("accuracy", m.accuracy, 0, 1);
        check("test_accuracy", m.test_accuracy, 0, 1);
        check("loss", m.loss, 0, 1e30);
        check("test_loss", m.test_loss, 0, 1e30);
        check("seconds", m.seconds, 0, 1e30);
        rows.push_back(StudyRow{key.first, key.second, m});
        ++next;
      }
      if (next != epochs + 1)
        CP_USER_ERROR(what << ": " << next - 1 << " of " << epochs
                           << " epochs: an unfinished run; finish its shard, then merge");
    }
  ConsoleReporter reporter(so.train.verbosity(), stdout_is_terminal());
  // Everything is checked: what --overwrite replaces goes only once the new tables are written.
  std::optional<ReplacedRun> replaced;
  if (so.overwrite) replaced.emplace(so.train.out, ReplacedKind::study);
  try {
    write_study_tables(so.train.out, rows, study_title(def), !so.no_plot, reporter);
    write_file_atomic(so.train.out + "/study.json", def.dump(2) + "\n");
  } catch (...) {
    if (replaced) replaced->restore();
    throw;
  }
  if (replaced) replaced->discard();
  reporter.line("merged " + std::to_string(so.merge.size()) + " shards: results.csv and " +
                "summary.md in " + so.train.out);
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
  cmd->add_flag("--overwrite", so->overwrite,
                "replace what --out holds (another study, a shard, merged tables or a training "
                "run) instead of refusing; it is deleted once the new study has saved its first "
                "checkpoint (a merge: written its tables)")
      ->configurable(false);
  cmd->add_option("--search", so->search,
                  "none: train every method of --pools; genetic: evolve one of them per pool "
                  "layer (see the genetic search's flags)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "genetic"}));
  add_genetic_search_options(cmd, so->genetic);
  cmd->add_option("--shard", so->shard,
                  "I/N: run only runs I, I+N, I+2N, ... of the study (from 0), e.g. one Slurm "
                  "array task each (scripts/slurm-study.sh)")
      ->capture_default_str();
  cmd->add_option("--merge", so->merge,
                  "shard directories (comma-separated) to combine into --out's tables")
      ->delimiter(',')
      ->configurable(false);
  cmd->footer(
      "Writes DIR/runs/METHOD/seed-N/ (one run directory each), DIR/results.csv, DIR/summary.md,\n"
      "DIR/study.png and DIR/config.toml; until then (unsharded, after the first run)\n"
      "DIR/results.partial.csv and DIR/summary.partial.md hold the runs finished so far.\n"
      "Run the same command again to resume.\n\n"
      "Examples:\n"
      "  convpool study --pools max,avg,avgtopk:k=2 --seeds 2 --epochs 10 --out studies/first\n"
      "  convpool study --pools max,mixed --epochs 1 --limit-train 2000 --device cpu --out /tmp/s\n"
      "  convpool study --pools max,avg --seeds 4 --shard 0/2 --out s/shard-0   # and --shard 1/2\n"
      "  convpool study --merge s/shard-0,s/shard-1 --out s\n"
      "  convpool study --search genetic --model models/vgg_bn.cfg --pools max,avg,lip \\\n"
      "      --population 8 --generations 5 --epochs 1 --final-epochs 30 --out s/genetic\n\n"
      "--search genetic writes DIR/runs/LABEL/ (one run per genotype), individuals.csv,\n"
      "summary.md, search.png, best.cfg (a model file train takes) and, with --final-epochs,\n"
      "final/ and final.json. Processes given --shard I/N share one --out.");
  return [so, cmd] {
    if (so->merge.empty()) return run(*so, cmd);
    if (so->search == "genetic")
      CP_USER_ERROR("--merge does not apply to --search genetic: its processes share one --out "
                    "(each generation needs every fitness of the one before), and the tables "
                    "there are already whole");
    if (cmd->count("--shard"))
      CP_USER_ERROR("--merge combines finished shards; --shard (which runs one) does not apply");
    return merge(*so);
  };
}

}  // namespace convpool::cli
