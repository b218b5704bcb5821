// The runs of a genetic pooling search: a run directory per genotype (runs/LABEL: its
// model.cfg, run files and fitness.json), locked while it trains, so that processes sharing
// the directory train each genotype once; the generations bred from their fitness
// (convpool/genetic_search.h); the tables and plot; and the best genotype's full training with
// its one test evaluation (final/, final.json).
#include "cli_study_genetic_runs.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "cli_common.h"
#include "convpool/checkpoint.h"
#include "convpool/file_io.h"
#include "convpool/graph.h"
#include "convpool/metrics.h"
#include "convpool/model.h"
#include "convpool/pooling.h"
#include "convpool/run_lock.h"

namespace convpool::cli {

namespace fs = std::filesystem;

namespace {
// The validation loss recorded for a genotype that failed: finite, so JSON keeps it.
constexpr double kFailedLoss = 1e30;
}  // namespace

std::optional<Evaluation> GeneticSearch::read_fitness(const Genotype& g) const {
  const std::string path = dir(g) + "/fitness.json";
  if (!fs::exists(path)) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(read_regular_file(path, size_t(1) << 20, "fitness"));
    if (j.at("epochs").get<int>() != base_.cfg.epochs ||
        j.at("genotype").get<std::string>() != describe_genotype(g, genes_, pools_))
      CP_USER_ERROR(path << " holds the fitness of " << j.at("genotype").dump() << " after "
                         << j.at("epochs").get<int>() << " epochs, not of this search's genotype: "
                         << "use a fresh --out");
    return Evaluation{
        {j.at("validation_accuracy").get<double>(), j.at("validation_loss").get<double>()},
        j.at("seconds").get<double>()};
  } catch (const nlohmann::json::exception& e) {
    CP_USER_ERROR(path << ": not a fitness record (" << e.what() << ")");
  }
}

Evaluation GeneticSearch::train_individual(const Genotype& g) {
  const std::string run = dir(g);
  std::string failed;
  Evaluation e;
  try {
    e = train_genotype(g);
    if (!std::isfinite(e.fitness.accuracy) || !std::isfinite(e.fitness.loss))
      failed = "a non-finite validation loss or accuracy";
  } catch (const Interrupted&) {
    throw;
  } catch (const Error& err) {
    failed = err.what();
  }
  // A genotype that cannot be built or trained (a window larger than its input, a loss that
  // diverged) is the least fit: the search goes on, and replays it the same way.
  if (!failed.empty()) e = Evaluation{{0.0, kFailedLoss}, e.seconds};
  nlohmann::json j = {{"genotype", describe_genotype(g, genes_, pools_)},
                      {"epochs", base_.cfg.epochs},
                      {"validation_accuracy", e.fitness.accuracy},
                      {"validation_loss", e.fitness.loss},
                      {"seconds", e.seconds}};
  if (!failed.empty()) {
    j["failed"] = failed;
    reporter_.line(genotype_label(g) + " failed, its fitness is 0: " + failed);
  }
  write_file_atomic(run + "/fitness.json", j.dump(2) + "\n");
  return e;
}

Evaluation GeneticSearch::train_genotype(const Genotype& g) {
  const std::string run = dir(g);
  const std::string model = run + "/model.cfg";
  std::vector<std::string> choice;
  for (int i : g) choice.push_back(pools_[size_t(i)]);
  write_file_atomic(model, rewrite_pool_lines(text_, base_.model, genes_, choice));
  TrainOptions o = base_;
  o.model = model;
  o.pool.clear();
  o.global_pool.clear();  // already in the model text
  o.out = run;
  o.resume.clear();
  o.tta = "none";  // the fitness is the plain validation accuracy
  const std::string last = run + "/last.safetensors";
  int done_epochs = 0;
  if (fs::exists(last)) {
    done_epochs = load_checkpoint(last).state.epoch;
    if (done_epochs < base_.cfg.epochs) o.resume = last;
  } else {
    remove_run_files(run);  // a run killed before its first checkpoint starts afresh
  }
  if (done_epochs < base_.cfg.epochs) train_run(o, train_, validation_, reporter_);
  Evaluation e;
  bool found = false;
  for (const EpochMetrics& m : read_metrics_csv(run + "/metrics.csv")) {
    if (m.epoch > base_.cfg.epochs) continue;
    e.seconds += m.seconds;
    if (m.epoch == base_.cfg.epochs) {
      e.fitness = {m.test_accuracy, m.test_loss};
      found = true;
    }
  }
  if (!found) CP_USER_ERROR(run << "/metrics.csv has no epoch " << base_.cfg.epochs);
  return e;
}

bool GeneticSearch::settle(const Genotype& g, const std::string& what) {
  const std::string label = genotype_label(g);
  if (known_.count(label)) return true;
  const std::string run = dir(g);
  if (auto e = read_fitness(g)) {
    known_[label] = *e;
    return true;
  }
  make_directory(run);
  const auto lock = RunDirectoryLock::try_lock(run, "run");
  if (!lock) return false;
  if (auto e = read_fitness(g)) {  // finished while this process looked elsewhere
    known_[label] = *e;
    return true;
  }
  reporter_.line(what + ": " + describe_genotype(g, genes_, pools_) + " (" + label + ")" +
                 (lock->taken_over_from().empty()
                      ? ""
                      : ", taking over from " + lock->taken_over_from() + ", which stopped"));
  try {
    known_[label] = train_individual(g);
  } catch (const Interrupted&) {
    throw Interrupted("search interrupted during " + label +
                      "; its checkpoint is saved: run the same command again to resume");
  }
  return true;
}

std::vector<SearchIndividual> GeneticSearch::run(const std::string& title, bool plot) {
  GeneticSettings ga = g_.ga;
  ga.seed = base_.cfg.seed;
  const int choices = int(pools_.size());
  std::vector<SearchIndividual> rows;
  std::vector<Genotype> population;
  std::vector<Fitness> fitness;
  std::set<std::string> seen;
  for (int gen = 0; gen < ga.generations; ++gen) {
    population = gen == 0 ? first_generation(ga, int(genes_.size()), choices)
                          : next_generation(ga, gen, choices, population, fitness);
    std::vector<Genotype> fresh;
    std::set<std::string> queued;
    for (const Genotype& g : population)
      if (!known_.count(genotype_label(g)) && queued.insert(genotype_label(g)).second)
        fresh.push_back(g);
    // This process's share first, then the others' (any no live process has started).
    std::vector<size_t> order, waiting;
    for (size_t k = 0; k < fresh.size(); ++k)
      if (int(k % size_t(shards_)) == shard_) order.push_back(k);
    for (size_t k = 0; k < fresh.size(); ++k)
      if (int(k % size_t(shards_)) != shard_) order.push_back(k);
    const std::string where =
        "generation " + std::to_string(gen + 1) + "/" + std::to_string(ga.generations);
    for (size_t k : order)
      if (!settle(fresh[k], where)) waiting.push_back(k);
    auto last_note = std::chrono::steady_clock::now();
    while (!waiting.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      if (stop_requested())
        throw Interrupted(
            "search interrupted while waiting for other processes' genotypes; "
            "run the same command again to resume");
      std::vector<size_t> still;
      for (size_t k : waiting)
        if (!settle(fresh[k], where)) still.push_back(k);
      waiting = still;
      if (!waiting.empty() &&
          std::chrono::steady_clock::now() - last_note > std::chrono::seconds(60)) {
        last_note = std::chrono::steady_clock::now();
        const std::string first = dir(fresh[waiting[0]]);
        std::string holder;
        try {
          holder = read_regular_file(first + "/" + RunDirectoryLock::kFileName, 4096, "lock file");
        } catch (const Error&) {  // only a courtesy in the note
        }
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\r'))
          holder.pop_back();
        reporter_.line(where + ": waiting for " + std::to_string(waiting.size()) +
                       " genotype(s) other processes are training (first: " + first +
                       (holder.empty() ? "" : ", by " + holder) + ")");
      }
    }
    fitness.clear();
    for (size_t i = 0; i < population.size(); ++i) {
      const std::string label = genotype_label(population[i]);
      const Evaluation& e = known_.at(label);
      rows.push_back(
          {gen + 1, int(i) + 1, population[i], e.fitness, !seen.insert(label).second, e.seconds});
      fitness.push_back(e.fitness);
    }
    write_tables(
        rows,
        title + (gen + 1 < ga.generations ? " (partial: " + std::to_string(gen + 1) + " of " +
                                                std::to_string(ga.generations) + " generations)"
                                          : ""),
        false);
  }
  const SearchIndividual& best = best_individual(rows);
  std::vector<std::string> choice;
  for (int i : best.genotype) choice.push_back(pools_[size_t(i)]);
  char fit[96];
  std::snprintf(fit, sizeof fit, "%.4f", best.fitness.accuracy);
  write_file_atomic(base_.out + "/best.cfg",
                    "# The best genotype of a genetic pooling search (convpool study --search "
                    "genetic, in " +
                        base_.out + "): " + describe_genotype(best.genotype, genes_, pools_) +
                        ", validation accuracy " + fit + ".\n" +
                        rewrite_pool_lines(text_, base_.model, genes_, choice));
  write_tables(rows, title, true);
  if (plot) plot_with_helper("--search '" + base_.out + "'", reporter_);
  return rows;
}

nlohmann::json GeneticSearch::read_final() const {
  const std::string path = base_.out + "/final.json";
  if (!fs::exists(path)) return nullptr;
  try {
    return nlohmann::json::parse(read_regular_file(path, size_t(1) << 20, "final result"));
  } catch (const nlohmann::json::exception& e) {
    CP_USER_ERROR(path << ": not a final result (" << e.what()
                       << "); remove it to evaluate the final run again");
  }
}

std::string GeneticSearch::final_section() const {
  if (const nlohmann::json j = read_final(); !j.is_null()) try {
      char buf[512];
      std::snprintf(buf, sizeof buf,
                    "`best.cfg` trained for %d epochs on the %zu training images (seed %llu; "
                    "validation accuracy %.4f on the %zu held out), then evaluated once on the "
                    "test set: **test accuracy %.4f** (loss %.4f, %zu images; final/).",
                    j.at("epochs").get<int>(), j.at("train_images").get<size_t>(),
                    (unsigned long long)j.at("seed").get<uint64_t>(),
                    j.at("validation_accuracy").get<double>(),
                    j.at("validation_images").get<size_t>(), j.at("test_accuracy").get<double>(),
                    j.at("test_loss").get<double>(), j.at("test_images").get<size_t>());
      return buf;
    } catch (const nlohmann::json::exception& e) {
      CP_USER_ERROR(base_.out << "/final.json: not a final result (" << e.what() << ")");
    }
  if (g_.final_epochs > 0)
    return "Pending: the full training of the best genotype (" + std::to_string(g_.final_epochs) +
           " epochs, in final/) has not finished; run the search's command again to finish it.";
  return "Not run by this search (`--final-epochs 0`): train the best genotype with `convpool "
         "train --model " +
         base_.out + "/best.cfg` and the search's other settings.";
}

void GeneticSearch::write_tables(const std::vector<SearchIndividual>& rows,
                                 const std::string& title, bool final) {
  const std::string path = base_.out + "/individuals.csv";
  const std::string csv = individuals_csv(rows, genes_, pools_);
  // Processes of one search write the same tables; one that lags never puts back fewer rows.
  if (fs::exists(path)) {
    const std::string old = read_regular_file(path, size_t(256) << 20, "individuals table");
    if (std::count(old.begin(), old.end(), '\n') > std::count(csv.begin(), csv.end(), '\n')) return;
  }
  write_file_atomic(path, csv);
  write_file_atomic(base_.out + "/summary.md",
                    search_summary_markdown(rows, genes_, pools_, title, final_section()));
  if (final) reporter_.line("individuals.csv, summary.md and best.cfg in " + base_.out);
}

void GeneticSearch::train_best(const SearchIndividual& best, const Dataset& test) {
  const std::string run = base_.out + "/final";
  make_directory(run);
  const auto lock = RunDirectoryLock::try_lock(run, "run");
  if (!lock) {
    reporter_.line("the best genotype's full training runs in another process (" + run + ")");
    return;
  }
  if (const nlohmann::json j = read_final(); !j.is_null() && j.is_object() &&
                                             j.value("epochs", 0) == g_.final_epochs &&
                                             j.value("label", "") == genotype_label(best.genotype))
    return;
  TrainOptions o = base_;
  o.model = base_.out + "/best.cfg";
  o.pool.clear();
  o.global_pool.clear();
  o.out = run;
  o.resume.clear();
  o.cfg.epochs = g_.final_epochs;
  const std::string last = run + "/last.safetensors";
  // The epochs a checkpoint there was trained towards: its schedule ends there, so a run for
  // another --final-epochs starts again rather than resume past (or short of) that end.
  const std::string target = run + "/target-epochs";
  const std::string wanted = std::to_string(g_.final_epochs) + "\n";
  if (fs::exists(last) &&
      (!fs::exists(target) || read_regular_file(target, 64, "final run's target") != wanted ||
       load_checkpoint(last).model_text !=
           read_regular_file(o.model, kMaxModelFileBytes, "model file")))
    remove_run_files(run);  // another genotype's, or another length of training
  if (!fs::exists(last))
    remove_run_files(run);
  else if (load_checkpoint(last).state.epoch < g_.final_epochs)
    o.resume = last;
  write_file_atomic(target, wanted);
  reporter_.line("full training of the best genotype, " + std::to_string(g_.final_epochs) +
                 " epochs: " + describe_genotype(best.genotype, genes_, pools_));
  std::vector<EpochMetrics> metrics;
  if (o.resume.empty() && fs::exists(last)) {
    metrics = read_metrics_csv(run + "/metrics.csv");
  } else {
    try {
      train_run(o, train_, validation_, reporter_);
    } catch (const Interrupted&) {
      throw Interrupted(
          "search interrupted during the best genotype's full training; its "
          "checkpoint is saved: run the same command again to resume");
    }
    metrics = read_metrics_csv(run + "/metrics.csv");
  }
  CP_CHECK(!metrics.empty(), "the final run's metrics");
  // The one evaluation on the test set.
  const Checkpoint ckpt = load_checkpoint(last);
  const bool ema = uses_ema_weights(ckpt, base_.eval_with == "raw" ? "raw" : "auto");
  auto graph =
      build_from_checkpoint(ckpt, last, GraphOptions{base_.cfg.device, base_.cfg.batch, 0}, ema);
  const EvalResult r = checkpoint_evaluator(*graph, ckpt, base_.cfg.device, base_.cfg.batch)
                           ->evaluate(test, tta_views(base_.tta));
  const nlohmann::json j = {{"genotype", describe_genotype(best.genotype, genes_, pools_)},
                            {"label", genotype_label(best.genotype)},
                            {"epochs", g_.final_epochs},
                            {"seed", base_.cfg.seed},
                            {"train_images", train_.size()},
                            {"validation_images", validation_.size()},
                            {"validation_accuracy", metrics.back().test_accuracy},
                            {"test_images", test.size()},
                            {"tta", base_.tta},
                            {"test_accuracy", r.accuracy},
                            {"test_loss", r.loss}};
  write_file_atomic(base_.out + "/final.json", j.dump(2) + "\n");
  char line[160];
  std::snprintf(line, sizeof line,
                "best genotype after %d epochs: test accuracy %.4f on %zu images", g_.final_epochs,
                r.accuracy, test.size());
  reporter_.line(line);
}

}  // namespace convpool::cli
