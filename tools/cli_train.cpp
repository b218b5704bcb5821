// convpool train: fresh runs, --resume, and --config (a run's config.toml repeats it).
#include <cstdio>
#include <filesystem>
#include <optional>
#include <memory>
#include <set>
#include <string>

#include "cli_common.h"
#include "convpool/error.h"
#include "convpool/file_io.h"
#include "convpool/run_lock.h"
#include "convpool/distributed.h"
#include "cli_run.h"
#include "convpool/checkpoint.h"
#include "convpool/data.h"
#include "convpool/device.h"
#include "convpool/metrics.h"
#include "convpool/trainer.h"

namespace convpool::cli {

namespace {

// What a checkpoint holds of its run's recipe: --resume takes these from it, and refuses them
// on its command line. --dataset is checked against the checkpoint apart from these.
const std::set<std::string> kRecipeInCheckpoint = {"model",
                                                   "pool",
                                                   "global-pool",
                                                   "batch",
                                                   "optimizer",
                                                   "lr",
                                                   "seed",
                                                   "momentum",
                                                   "weight-decay",
                                                   "nesterov",
                                                   "crop-pad",
                                                   "pad-mode",
                                                   "cutout",
                                                   "flip",
                                                   "normalize",
                                                   "normalize-from-data",
                                                   "mean",
                                                   "std",
                                                   "lr-schedule",
                                                   "warmup",
                                                   "final-lr-ratio",
                                                   "onecycle-start-div",
                                                   "onecycle-final-div",
                                                   "lr-milestones",
                                                   "lr-milestone-unit",
                                                   "lr-gamma",
                                                   "clip-grad-norm",
                                                   "label-smoothing",
                                                   "ema",
                                                   "eval-with"};

std::filesystem::path checkpoint_directory(const std::string& checkpoint) {
  const std::filesystem::path dir = std::filesystem::path(checkpoint).parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

// A run directory belongs to one run: a fresh run, or a resume into a directory other than
// its checkpoint's, refuses one that holds another run unless --overwrite says to replace it.
enum class Claim { keep, restart, replace };  // the run files there: kept, removed, moved aside
Claim claim_run_directory(const TrainOptions& o, bool overwrite, const CLI::App* cmd,
                          std::string& note) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!o.resume.empty()) {
    const fs::path own = fs::path(o.resume).parent_path().empty()
                             ? fs::path(".")
                             : fs::path(o.resume).parent_path();
    if (fs::equivalent(own, o.out, ec)) {
      // The directory's metrics.csv and summary.txt are rewritten: they must be this run's
      // (convpool's), not files of the user's that happen to sit beside a checkpoint.
      const auto refuse_foreign = [&](const std::string& file, const std::string& why) {
        CP_USER_ERROR("--resume " << o.resume << " would rewrite " << file << ", which " << why
                                  << ": resume into another directory with --out NEW_DIR");
      };
      const std::string metrics = (fs::path(o.out) / "metrics.csv").string();
      if (fs::exists(metrics)) {
        try {
          read_metrics_csv(metrics);
        } catch (const Error&) {
          refuse_foreign(metrics, "is not a convpool metrics file");
        }
      }
      if (const std::string summary = (fs::path(o.out) / "summary.txt").string();
          fs::exists(summary)) {
        const std::string text = read_regular_file(summary, kMaxSmallTextBytes, "run summary");
        if (text.rfind("epochs ", 0) != 0 && text.rfind("no epochs", 0) != 0)
          refuse_foreign(summary, "is not a convpool run summary");
      }
      // Resuming in place is allowed, but from an older checkpoint (best, step-N) while the
      // run's last.safetensors has moved on, it would overwrite last and drop the later
      // epochs from metrics.csv: only with --overwrite, which asks for that roll-back.
      const fs::path last = own / "last.safetensors";
      std::error_code same;
      if (!overwrite && fs::exists(last) && !fs::equivalent(last, o.resume, same)) {
        const uint64_t from = load_checkpoint(o.resume).state.step;
        const uint64_t newest = load_checkpoint(last.string()).state.step;
        if (newest > from)
          CP_USER_ERROR("--resume " << o.resume << " is at step " << from << ", but "
                                    << last.string() << " has moved on to step " << newest
                                    << "; resuming would replace it and drop the later epochs "
                                       "from metrics.csv: resume "
                                    << last.string()
                                    << ", branch off with --out NEW_DIR, or pass --overwrite "
                                       "to roll the run back");
      }
      return Claim::keep;
    }
  }
  if (fs::exists(fs::path(o.out) / "study.json") || fs::exists(fs::path(o.out) / "runs")) {
    if (overwrite) return Claim::replace;
    CP_USER_ERROR("--out " << o.out << " holds a study (study.json or runs/), not a training run; "
                           << "choose another --out, or pass --overwrite to replace it");
  }
  if (!holds_run(o.out)) return Claim::keep;
  if (overwrite) return Claim::replace;
  // A run that ended before its first checkpoint (killed, or a non-finite loss at its first
  // steps) left only its config.toml and metrics rows no checkpoint holds: the same command
  // starts it again; another command may not take its directory.
  const std::string config = o.out + "/config.toml";
  if (o.resume.empty() && !holds_checkpoint(o.out)) {
    std::string recorded;
    try {
      recorded = read_regular_file(config, kMaxModelFileBytes, "config file");
    } catch (const Error&) {
    }
    if (!recorded.empty() && recorded == config_text(cmd, config)) {
      note = "note: " + o.out +
             " holds this run's settings but no checkpoint (it ended before its first save); "
             "starting it again";
      return Claim::restart;
    }
    CP_USER_ERROR("--out " << o.out << " holds the start of another run with no checkpoint "
                           << "(its config.toml differs from this command's); choose another "
                           << "--out, or pass --overwrite to replace it");
  }
  const std::string last = o.out + "/last.safetensors";
  CP_USER_ERROR("--out " << o.out << " already holds a run (config.toml, metrics.csv or "
                         << "checkpoints); choose another --out, "
                         << (std::filesystem::exists(last)
                                 ? "continue that run with --resume " + last + ", "
                                 : std::string())
                         << "or pass --overwrite to replace it");
}

int run(TrainOptions& o, CLI::App* cmd, bool overwrite) {
  if (!o.config.empty()) apply_config_file(cmd, o.config);
  if (cmd->count("--out") && o.out.empty())
    CP_USER_ERROR("--out is empty: name the run directory (or leave --out out for runs/NAME-TIME)");
  if (!o.resume.empty()) {
    for (const std::string& flag : kRecipeInCheckpoint)
      if (cmd->count("--" + flag))
        CP_USER_ERROR("--resume continues the checkpoint's run; --" << flag << " cannot change it");
    // An --overwrite interrupted in the checkpoint's directory set its files aside: the
    // writer's lock, then what every writer does first (restore or delete them).
    if (const std::string dir = checkpoint_directory(o.resume).string(); replace_pending(dir)) {
      const RunDirectoryLock lock(dir, "--resume");
      if (const std::string restored = finish_interrupted_replace(dir); !restored.empty())
        std::fprintf(stderr, "convpool: %s\n", restored.c_str());
    }
    // The data set is the checkpoint's: read before any data is loaded.
    const std::string trained_on = load_checkpoint(o.resume).state.dataset;
    if (cmd->count("--dataset") && o.dataset != trained_on)
      CP_USER_ERROR(o.resume << " was trained on " << trained_on
                             << "; --resume continues on it (drop --dataset " << o.dataset << ")");
    // The rest of the run's settings (epochs, --tta, threads, --limit-train, saving...)
    // continue from the config.toml beside the checkpoint unless given here, so that a bare
    // --resume finishes the run as it was started, on the same data. Where it runs is chosen
    // anew (--device auto by default), so a CUDA run can go on on a machine without a GPU.
    if (const auto recorded = checkpoint_directory(o.resume) / "config.toml";
        std::filesystem::exists(recorded)) {
      std::set<std::string> skip = kRecipeInCheckpoint;
      skip.insert({"device", "data-placement"});
      // --limit-test given anew: whether it names the run's test set.
      if (cmd->count("--limit-test")) {
        const std::string text =
            read_regular_file(recorded.string(), kMaxModelFileBytes, "config file");
        const size_t at = text.find("\nlimit-test=");
        const size_t recorded_limit =
            at == std::string::npos ? 0 : std::stoull(text.substr(at + 12));
        o.new_test_set = recorded_limit != o.limit_test;
      }
      apply_config_file(cmd, recorded.string(), skip);
    }
    o.dataset = trained_on;
    if (o.out.empty()) o.out = std::filesystem::path(o.resume).parent_path().string();
    if (o.out.empty()) o.out = ".";
  }
  resolve_options(cmd, o);
  // The CPU backend has no unordered reductions (split-K partial sums are added in thread
  // order), so it is reproducible as it is. On CUDA every reduction of ours is in a fixed
  // order (the loss sum too, kernels/loss.cu); --deterministic also restricts cuDNN to its
  // deterministic algorithms, refusing a shape that has none (src/cuda/conv_cudnn.cpp).
  set_cuda_deterministic(o.deterministic);
  if (o.out.empty())
    o.out = "runs/" + std::filesystem::path(o.model).stem().string() + "-" + timestamp();

  if (o.resume.empty()) check_model(o.model, o.pool, o.resolved, o.global_pool);
  // Data-parallel: rank 0 alone owns the run directory; the other ranks write nothing and
  // print nothing (an error still names its rank and ends the job).
  if (world().rank() != 0) {
    o.quiet = true;
    const RunData data = load_run_data(o);
    normalize_from_data(cmd, o, data.train);
    install_stop_handlers();
    ConsoleReporter reporter(o.verbosity(), false);
    o.out.clear();
    train_run(o, data.train, data.test, reporter);
    return 0;
  }
  // One writer per run directory, from before it is inspected until the run ends.
  make_directory(o.out);
  const RunDirectoryLock lock(o.out, "--out");
  if (const std::string restored = finish_interrupted_replace(o.out); !restored.empty())
    std::fprintf(stderr, "convpool: %s\n", restored.c_str());
  std::string restart_note;
  const Claim claim = claim_run_directory(o, overwrite, cmd, restart_note);
  const RunData data = load_run_data(o);
  normalize_from_data(cmd, o, data.train);
  if (claim == Claim::restart) remove_run_files(o.out);
  // The replaced run is deleted only once this one has saved a checkpoint.
  std::optional<ReplacedRun> replaced;
  // A study's directory is replaced whole (its runs/, tables and study.json), not only the
  // run files among them.
  if (claim == Claim::replace)
    replaced.emplace(o.out, std::filesystem::exists(o.out + "/study.json") ||
                                    std::filesystem::exists(o.out + "/runs")
                                ? ReplacedKind::study
                                : ReplacedKind::run);
  if (o.resume.empty()) {
    write_config(cmd, o.out + "/config.toml");
  } else if (const auto source = std::filesystem::path(o.resume).parent_path() / "config.toml";
             !std::filesystem::exists(o.out + "/config.toml") &&
             std::filesystem::exists(source)) {
    // Resumed into a new directory: the run's configuration comes along with it.
    std::filesystem::copy_file(source, o.out + "/config.toml");
  }
  install_stop_handlers();
  ConsoleReporter reporter(o.verbosity(), stdout_is_terminal());
  // Notes go to stderr, as every "convpool: note:" does.
  if (!lock.taken_over_from().empty() && o.verbosity() != Verbosity::quiet)
    std::fprintf(stderr, "convpool: note: %s was last locked by %s, which ended without "
                 "releasing it; this run takes it over\n",
                 o.out.c_str(), lock.taken_over_from().c_str());
  if (!restart_note.empty() && o.verbosity() != Verbosity::quiet)
    std::fprintf(stderr, "convpool: %s\n", restart_note.c_str());
  if (replaced) reporter.after_checkpoint = [&replaced] { replaced->discard(); };
  try {
    train_run(o, data.train, data.test, reporter);
  } catch (...) {
    if (replaced) replaced->restore_after_failure("run");
    throw;
  }
  reporter.line(run_summary_line(read_metrics_csv(o.out + "/metrics.csv")) + "; run directory " +
                o.out);
  return 0;
}

}  // namespace

Runner add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  auto overwrite = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("train", "train a model on CIFAR-10");
  add_training_options(cmd, *o);
  cmd->add_option("--seed", o->cfg.seed,
                  "seed for initialisation, shuffling, augmentation and pooling draws")
      ->capture_default_str()
      ->check(kWholeNumber);
  cmd->add_option("--pool", o->pool,
                  "override every pooling layer: METHOD[:key=value,...], "
                  "e.g. avgtopk:k=3 (see `convpool pool-methods`)")
      ->capture_default_str();
  cmd->add_option("--global-pool", o->global_pool,
                  "a global encoder in place of the model's last pool layer: "
                  "ENCODER[:key=value,...], e.g. gem_pool:p=3 or attention_pool:heads=2")
      ->capture_default_str();
  cmd->add_option("--out", o->out,
                  "run directory (default: runs/<model>-<time>; with --resume, "
                  "the checkpoint's directory)")
      ->configurable(false);
  auto* resume = cmd->add_option("--resume", o->resume, "continue exactly from a checkpoint")
                     ->configurable(false);
  cmd->get_option("--config")->excludes(resume);
  cmd->add_flag("--overwrite", *overwrite,
                "replace the run in --out (its config, metrics and checkpoints) instead of "
                "refusing to write there")
      ->configurable(false);
  cmd->add_flag("--deterministic", o->deterministic,
                "bit-reproducible runs: always true on the CPU for a fixed --threads; "
                "on CUDA, deterministic cuDNN algorithms only (same GPU, binary and "
                "libraries; CUDA and CPU results still differ in the last bits)");
  cmd->footer(
      "Every run writes its directory: config.toml (the effective configuration), metrics.csv,\n"
      "summary.txt, last/best.safetensors.\n\n"
      "Examples:\n"
      "  convpool train --data data/cifar-10-batches-bin --epochs 10 --device cpu\n"
      "  convpool train --pool mixed --crop-pad 4 --flip --normalize --out runs/mixed\n"
      "  convpool train --config runs/mixed/config.toml --out runs/mixed-again\n"
      "  convpool train --resume runs/NAME/last.safetensors --epochs 20");
  return [o, cmd, overwrite] { return run(*o, cmd, *overwrite); };
}

}  // namespace convpool::cli
