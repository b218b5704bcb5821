// convpool study --search genetic: evolves one pooling choice per pool layer of a model
// (convpool/genetic_search.h breeds the generations). Each new genotype trains briefly, at the
// study's seed, on the training images less a held-out part, whose accuracy is its fitness;
// the test set is used once, by the full training of the best genotype (--final-epochs).
//
// The directory holds one run per evaluated genotype (runs/LABEL: its model.cfg, run files and
// fitness.json), search.json (what defines the search), individuals.csv, summary.md,
// search.png and best.cfg. A generation is a pure function of the previous one's fitness, so
// the same command resumes a killed search and replays to the same result. Processes share
// one directory (--shard I/N, e.g. Slurm array tasks on a shared file system): each trains its
// share of a generation first, then any genotype no live process is training (a run directory
// is locked while it trains, and the lock dies with its process), then waits for the rest.
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
#include "cli_study.h"
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

struct Evaluation {
  Fitness fitness;
  double seconds = 0;
};

class GeneticSearch {
 public:
  GeneticSearch(TrainOptions& base, const GeneticSearchOptions& g,
                const std::vector<std::string>& pools, const std::string& model_text,
                std::vector<PoolGene> genes, int shard, int shards, const Dataset& train,
                const Dataset& validation, ConsoleReporter& reporter)
      : base_(base),
        g_(g),
        pools_(pools),
        text_(model_text),
        genes_(std::move(genes)),
        shard_(shard),
        shards_(shards),
        train_(train),
        validation_(validation),
        reporter_(reporter) {}

  // Every generation, then best.cfg and the tables; returns the individuals.
  std::vector<SearchIndividual> run(const std::string& title, bool plot);
  // The full training of the best genotype and its one test evaluation (final.json).
  void train_best(const SearchIndividual& best, const Dataset& test);
  void write_tables(const std::vector<SearchIndividual>& rows, const std::string& title,
                    bool final);

 private:
  std::string dir(const Genotype& g) const { return base_.out + "/runs/" + genotype_label(g); }
  std::optional<Evaluation> read_fitness(const Genotype& g) const;
  // final.json, or null when there is none; a damaged one is a one-line error.
  nlohmann::json read_final() const;
  // Evaluates `g` unless another live process is at it; false then.
  bool settle(const Genotype& g, const std::string& what);
  // Trains (or resumes) g and writes its fitness.json; a failure is recorded, not thrown.
  Evaluation train_individual(const Genotype& g);
  Evaluation train_genotype(const Genotype& g);
  std::string final_section() const;

  TrainOptions& base_;
  const GeneticSearchOptions& g_;
  const std::vector<std::string>& pools_;
  std::string text_;
  std::vector<PoolGene> genes_;
  int shard_, shards_;
  const Dataset& train_;
  const Dataset& validation_;
  ConsoleReporter& reporter_;
  std::map<std::string, Evaluation> known_;  // by genotype label
};

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

}  // namespace

void add_genetic_search_options(CLI::App* cmd, GeneticSearchOptions& g) {
  const std::string group = "Genetic search (--search genetic)";
  cmd->add_option("--population", g.ga.population, "individuals per generation")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--generations", g.ga.generations, "generations, the first one random")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--tournament", g.ga.tournament,
                  "individuals drawn to pick each parent (the fittest of them wins)")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--elite", g.ga.elite,
                  "best individuals carried unchanged to the next generation")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--crossover", g.ga.crossover,
                  "probability that a child mixes its parents' genes (uniform crossover)")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--mutation", g.ga.mutation,
                  "probability that each gene is redrawn to another method")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--validation", g.validation,
                  "fraction of the training images held out to measure fitness (never the test "
                  "set)")
      ->capture_default_str()
      ->group(group);
  cmd->add_option("--final-epochs", g.final_epochs,
                  "then train the best genotype this many epochs and evaluate it once on the "
                  "test set (0: do not)")
      ->capture_default_str()
      ->group(group);
}

std::vector<std::string> genetic_flags_given(const CLI::App* cmd) {
  std::vector<std::string> given;
  const GeneticSearchOptions d;
  for (const char* name : {"--population", "--generations", "--tournament", "--elite",
                           "--crossover", "--mutation", "--validation", "--final-epochs"}) {
    const CLI::Option* opt = cmd->get_option(name);
    // A study's own config.toml lists every flag at its default: only other values count.
    if (opt->count() > 0 && opt->as<std::string>() != opt->get_default_str()) given.push_back(name);
  }
  return given;
}

int run_genetic_search(TrainOptions& base, CLI::App* cmd, const GeneticSearchOptions& g,
                       const std::vector<std::string>& pools, int shard, int shards, bool plot) {
  ModelSpec spec = load_model_file(base.model);
  if (!base.global_pool.empty()) apply_global_pool_override(spec, base.global_pool);
  const std::vector<PoolGene> genes = searchable_pool_lines(spec.text, base.model);
  GeneticSettings ga = g.ga;
  ga.seed = base.cfg.seed;
  check_genetic_settings(ga, int(genes.size()), int(pools.size()));
  if (!(g.validation > 0 && g.validation < 1))
    CP_USER_ERROR("--validation " << g.validation << ": expected a fraction in (0, 1)");
  if (g.final_epochs < 0 || g.final_epochs > 100000)
    CP_USER_ERROR("--final-epochs " << g.final_epochs << ": expected 0 to 100000");
  // Every method at every searched layer builds: a bad choice fails now, not in generation 9.
  for (const std::string& pool : pools) {
    const std::string text = rewrite_pool_lines(spec.text, base.model, genes,
                                                std::vector<std::string>(genes.size(), pool));
    const auto graph = Graph::build(parse_model_text(text, base.model + " (with " + pool + ")"),
                                    GraphOptions{Device::cpu, 1, 0});
    require_model_fits_data(*graph, base.model, base.resolved.classes, base.resolved.side,
                            data_title(base.resolved));
  }
  make_directory(base.out);
  if (fs::exists(base.out + "/study.json") || fs::exists(base.out + "/last.safetensors"))
    CP_USER_ERROR(
        "--out " << base.out << " holds "
                 << (fs::exists(base.out + "/study.json") ? "a pooling study" : "a training run")
                 << ", not a genetic search: choose another --out");

  const RunData data = load_run_data(base);
  normalize_from_data(cmd, base, data.train);
  if (data.train.mapped)
    CP_USER_ERROR(
        "--search genetic holds the training images in memory, and these are over "
        "--memory-budget: raise it, or search on fewer (--limit-train)");
  const size_t held = size_t(std::llround(g.validation * double(data.train.size())));
  if (held < 1 || held >= data.train.size())
    CP_USER_ERROR("--validation " << g.validation << " of " << data.train.size()
                                  << " training images holds out " << held
                                  << ": each side needs at least one image");
  const std::vector<size_t> val_idx = hold_out_indices(data.train.size(), held, ga.seed);
  std::vector<size_t> train_idx;
  for (size_t i = 0, k = 0; i < data.train.size(); ++i)
    if (k < val_idx.size() && val_idx[k] == i)
      ++k;
    else
      train_idx.push_back(i);
  const Dataset train = select_images(data.train, train_idx),
                validation = select_images(data.train, val_idx);

  std::vector<std::string> gene_names;
  for (auto& gene : genes) gene_names.push_back(gene.layer);
  const nlohmann::json def = {
      {"search", "genetic"},
      {"model", fs::path(base.model).stem().string()},
      {"model_text", spec.text},
      {"genes", gene_names},
      {"pools", pools},
      {"population", ga.population},
      {"generations", ga.generations},
      {"tournament", ga.tournament},
      {"elite", ga.elite},
      {"crossover", ga.crossover},
      {"mutation", ga.mutation},
      {"seed", ga.seed},
      {"epochs", base.cfg.epochs},
      {"train_images", train.size()},
      {"validation_images", validation.size()},
      {"device", base.device},
      {"recipe", training_recipe(config_text(cmd, base.out + "/config.toml"))}};
  const std::string def_path = base.out + "/search.json";
  // Created once, atomically (a hard link fails where the file exists), so processes started
  // together with different settings cannot both write it: the second compares and refuses.
  {
    const std::string tmp = def_path + ".new-" + std::to_string(::getpid());
    write_file_atomic(tmp, def.dump(2) + "\n");
    const int linked = ::link(tmp.c_str(), def_path.c_str());
    const int err = errno;
    ::unlink(tmp.c_str());
    if (linked != 0 && err != EEXIST)
      CP_USER_ERROR("cannot create " << def_path << ": " << std::strerror(err));
  }
  {
    nlohmann::json old;
    try {
      old = nlohmann::json::parse(read_regular_file(def_path, size_t(64) << 20, "search"));
    } catch (const nlohmann::json::exception& e) {
      CP_USER_ERROR(def_path << ": not a search description (" << e.what() << ")");
    }
    if (old != def)
      CP_USER_ERROR("--out " << base.out << " holds another search (its "
                             << first_difference(def, old)
                             << " differs): run its own command to resume it, or choose another "
                                "--out");
  }
  write_config(cmd, base.out + "/config.toml");

  install_stop_handlers();
  ConsoleReporter reporter(base.verbosity(), stdout_is_terminal());
  char head[256];
  std::snprintf(head, sizeof head,
                "genetic pooling search: %zu pool layers x %zu methods, population %d, %d "
                "generations, %d epoch(s) on %zu images each, fitness on %zu held out; ",
                genes.size(), pools.size(), ga.population, ga.generations, base.cfg.epochs,
                train.size(), validation.size());
  reporter.line(head + std::string("process ") + std::to_string(shard) + "/" +
                std::to_string(shards) + ", into " + base.out);
  const std::string title = "Genetic pooling search: " + def["model"].get<std::string>() + ", " +
                            std::to_string(ga.population) + " x " + std::to_string(ga.generations) +
                            " generations, " + std::to_string(base.cfg.epochs) + " epoch(s) on " +
                            std::to_string(train.size()) + " images, seed " +
                            std::to_string(ga.seed) + ", " + base.device;
  const double steps = double(base.cfg.epochs) * std::ceil(double(train.size()) / base.cfg.batch);
  if (base.cfg.ema_decay > 0 && base.cfg.eval_ema && steps < 2 / (1 - double(base.cfg.ema_decay)))
    reporter.line("note: each genotype trains " + std::to_string(int(steps)) +
                  " steps, and the EMA of decay " + float_str(base.cfg.ema_decay) +
                  " still holds much of the initial weights then: its fitness measures little "
                  "(pass --eval-with raw, or a lower --ema)");
  GeneticSearch search(base, g, pools, spec.text, genes, shard, shards, train, validation,
                       reporter);
  const auto rows = search.run(title, plot);
  if (g.final_epochs > 0) {
    search.train_best(best_individual(rows), data.test);
    search.write_tables(rows, title, false);  // now with the final result
  }
  return 0;
}

}  // namespace convpool::cli
