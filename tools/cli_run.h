// What `train` and `study` share: the training options, their registration on a subcommand,
// the run-directory config file (write and read back), and running one training run.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "cli_data.h"
#include "cli_progress.h"
#include "convpool/data.h"
#include "convpool/trainer.h"

namespace convpool::cli {

struct TrainOptions {
  std::string data, model, out, pool, device = "auto", resume, config;
  std::string global_pool;         // --global-pool: an encoder in place of the last pool layer
  std::string optimizer = "adam";  // cfg.optimizer.kind once parsed
  std::string data_placement = "auto";  // cfg.data_placement once resolved
  std::string dataset = "cifar10";      // `resolved` and cfg.classes once resolved
  std::string cache_dir;                // image folders: where the decoded cache goes
  std::string memory_budget = kDefaultMemoryBudget;  // image folders: when to stream
  int image_size = 0;                   // image folders: the side (0: the model's input)
  std::string pad_mode = "zero";        // cfg.input.reflect once parsed
  std::string tta = "none";             // test-time views evaluated after training
  std::string lr_schedule = "constant", milestone_unit = "epochs";  // cfg.optimizer.schedule
  std::string lr_milestones;  // "30,60"; a string, so that config.toml can hold none
  std::string eval_with = "ema";  // cfg.eval_ema
  int threads = 0;
  size_t limit_train = 0, limit_test = 0;
  // A resume evaluates on another test set than its run (--limit-test changed): the best
  // checkpoint is chosen afresh, since accuracies on two test sets do not compare.
  bool new_test_set = false;
  bool no_graph = false, deterministic = false, normalize = false, quiet = false, verbose = false,
       tf32 = false;
  std::vector<float> mean, std;  // empty: from --normalize, else 0 and 1
  bool normalize_from_data = false;  // mean and std measured on the training set
  TrainConfig cfg;
  DataChoice resolved;  // the data set resolve_options chose
  Verbosity verbosity() const;
};

// The options every training command takes: data, model, schedule, optimizer, device,
// input pipeline, output verbosity, and --config FILE.
void add_training_options(CLI::App* cmd, TrainOptions& o);

// Fills options not given on the command line from a TOML config file (a run's config.toml):
// the command line wins. Unknown keys are a one-line error with the nearest valid name.
// Keys named in `skip` (without the leading --) are passed over.
void apply_config_file(CLI::App* cmd, const std::string& path,
                       const std::set<std::string>& skip = {});
// The same for config text already read; `path` names it in errors.
void apply_config_text(CLI::App* cmd, const std::string& text, const std::string& path,
                       const std::set<std::string>& skip = {});

// Resolves what the flags leave open (device, threads, input normalisation) into `o`, and
// records the resolved values in `cmd`, so that write_config() stores the effective run.
void resolve_options(CLI::App* cmd, TrainOptions& o);

// The data set of a training command: its kind (an image folder when --data holds train/ and
// --dataset was not given), where it is, its classes and image side, into o.resolved,
// o.cfg.classes and o.cfg.input.side; records the kind in `cmd`. resolve_options calls it.
void resolve_data(CLI::App* cmd, TrainOptions& o);

// A float written so that it reads back exactly (config.toml values).
std::string float_str(float v);
// Replaces what an option holds by `values`, as if they had been given (so that config.toml
// records the effective run).
void set_effective(CLI::App* cmd, const std::string& name, const std::vector<std::string>& values);

// --normalize-from-data: sets the input pipeline's mean and std to the training images'
// per-channel statistics (pixel / 255) and records them as --mean and --std in `cmd`, so the
// run's config.toml and checkpoints repeat them. Nothing without the flag or on a resume.
void normalize_from_data(CLI::App* cmd, TrainOptions& o, const Dataset& train);

// Builds `model` with the pooling overrides (`global_pool`, then `pool`; either may be empty)
// on the CPU at batch 1, so that a bad model file or method fails in a moment, before data is
// read or hours of training start. `data`: the classes and side it must fit.
void check_model(const std::string& model, const std::string& pool, const DataChoice& data,
                 const std::string& global_pool = "");

// Both splits of the resolved data set. A record count that is not CIFAR-10's is noted on
// stderr, unless --quiet; so are an image folder's classes, cache and unreadable files.
struct RunData {
  std::string dir;
  Dataset train, test;
};
RunData load_run_data(const TrainOptions& o);  // the --dataset's training and test sets

// Whether `dir` holds a run's files (config.toml, metrics.csv, summary.txt, checkpoints).
bool holds_run(const std::string& dir);
// Removes those files from `dir` (for --overwrite); anything else there stays.
void remove_run_files(const std::string& dir);

// Whether a file name is one of a run's (config.toml, metrics.csv, summary.txt, checkpoints).
bool is_run_file(const std::string& name);

// --overwrite: moves a run's files (or a study's: study.json, tables, runs/, and a run's files)
// from `dir` into DIR/.convpool-replaced, with a manifest of what moved and the kind.
// discard() deletes them once the new run has saved its first checkpoint (a study or merge:
// once it has finished); restore() puts them back, removing the new command's files of that
// kind, when it fails before that. A process killed in between leaves them aside:
// finish_interrupted_replace, called by the next writer under the directory's lock, deletes
// them if the new command had saved a checkpoint and restores them otherwise (returning a
// note). A failed move restores what had moved and is a one-line error.
enum class ReplacedKind { run, study };
class ReplacedRun {
 public:
  ReplacedRun(std::string dir, ReplacedKind kind);
  void discard();
  void restore();
  // For a catch block: restores unless already discarded or restored, with a note naming
  // `what` ("run", "study").
  void restore_after_failure(const char* what);
  bool done() const { return done_; }

 private:
  std::string dir_;
  bool done_ = false;
};
std::string finish_interrupted_replace(const std::string& dir);
// Whether DIR holds what an interrupted --overwrite set aside (a command that only reads,
// or a resume before it takes the lock, says so instead of "cannot open").
bool replace_pending(const std::string& dir);

// Creates a run or study directory; a one-line error says why it cannot.
void make_directory(const std::string& path);

// `cmd`'s full effective configuration (given and default values, with descriptions), as
// write_config writes it to `path`.
std::string config_text(const CLI::App* cmd, const std::string& path);
// Writes config_text to path, atomically. It reads back with --config.
void write_config(const CLI::App* cmd, const std::string& path);
// Whether `dir` holds a checkpoint (last, best or step-N.safetensors).
bool holds_checkpoint(const std::string& dir);

// Trains one run as `o` says (fresh, or from o.resume) on data already loaded, printing
// through `reporter`. Writes the run directory: checkpoints, metrics.csv and summary.txt.
std::vector<EpochMetrics> train_run(TrainOptions& o, const Dataset& train, const Dataset& test,
                                    ConsoleReporter& reporter);

}  // namespace convpool::cli
