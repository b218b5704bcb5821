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
#include "cli_study_genetic_runs.h"
#include "convpool/checkpoint.h"
#include "convpool/file_io.h"
#include "convpool/graph.h"
#include "convpool/metrics.h"
#include "convpool/model.h"
#include "convpool/pooling.h"
#include "convpool/run_lock.h"

namespace convpool::cli {

namespace fs = std::filesystem;

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
