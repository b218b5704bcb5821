// convpool train: fresh runs and --resume.
#include <omp.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli_common.h"
#include "convpool/checkpoint.h"
#include "convpool/data.h"
#include "convpool/device.h"
#include "convpool/graph.h"
#include "convpool/pooling.h"
#include "convpool/trainer.h"

namespace convpool::cli {

namespace {

struct TrainOptions {
  std::string data, model = default_model_path(), out, pool, device = "auto", resume;
  int threads = 0;
  size_t limit_train = 0, limit_test = 0;
  bool no_graph = false, deterministic = false;
  TrainConfig cfg;
};

int run(TrainOptions& o, const CLI::App& cmd) {
  set_threads(o.threads);
  ModelSpec spec;
  TrainState state;
  std::unique_ptr<Checkpoint> ckpt;
  if (!o.resume.empty()) {
    for (const char* flag : {"--model", "--pool", "--batch", "--optimizer", "--lr", "--seed",
                             "--momentum", "--weight-decay"})
      if (cmd.count(flag))
        CP_USER_ERROR("--resume continues the checkpoint's run; " << flag << " cannot change it");
    ckpt = std::make_unique<Checkpoint>(load_checkpoint(o.resume));
    spec = parse_model_text(ckpt->model_text, o.resume + " (model)");
    o.pool = ckpt->pool_override;
    if (!o.pool.empty()) apply_pool_override(spec, o.pool);
    state = ckpt->state;
    o.cfg.batch = state.batch;
    o.cfg.seed = state.seed;
    o.cfg.optimizer = state.optimizer;
    if (o.out.empty()) o.out = std::filesystem::path(o.resume).parent_path().string();
    if (o.out.empty()) o.out = ".";
    if (state.epoch >= o.cfg.epochs)
      CP_USER_ERROR(o.resume << " has already trained " << state.epoch
                             << " epochs; pass --epochs above that to continue");
  } else {
    spec = load_model_file(o.model);
    if (!o.pool.empty()) apply_pool_override(spec, o.pool);
  }
  o.cfg.cuda_graph = !o.no_graph;
  o.cfg.model_text = spec.text;
  o.cfg.pool_override = o.pool;
  o.cfg.device = pick_device(o.device);
  // The CPU backend has no unordered reductions (split-K partial sums are added in thread
  // order), so it is reproducible as it is; the CUDA loss counters use atomics, so it is not.
  if (o.deterministic && o.cfg.device == Device::cuda)
    CP_USER_ERROR("--deterministic is not available on CUDA yet; use --device cpu");
  if (o.out.empty())
    o.out = "runs/" + std::filesystem::path(o.model).stem().string() + "-" + timestamp();
  o.cfg.out_dir = o.out;
  validate(o.cfg.optimizer);

  // Build before reading data, so model errors come first and fast.
  GraphOptions gopts{o.cfg.device, o.cfg.batch, optimizer_state_slots(o.cfg.optimizer)};
  auto graph = Graph::build(spec, gopts);
  graph->init_params(o.cfg.seed);
  if (ckpt) restore_graph(*ckpt, o.resume, *graph, true);

  const std::string dir = resolve_cifar_dir(o.data);
  Dataset train = load_cifar10(dir, "train", o.limit_train);
  Dataset test = load_cifar10(dir, "test", o.limit_test);
  if (!o.cfg.quiet) {
    std::printf("convpool train: %s on %s, %zu train / %zu test images from %s\n",
                ckpt ? o.resume.c_str() : o.model.c_str(), device_name(o.cfg.device), train.size(),
                test.size(), dir.c_str());
    if (o.cfg.device == Device::cuda) std::printf("device: %s\n", cuda_device_report().c_str());
    std::printf("%s\n", graph->summary().c_str());
    std::printf("threads %d, batch %d, %s lr %g, seed %llu, run directory %s\n",
                omp_get_max_threads(), o.cfg.batch, o.cfg.optimizer.kind.c_str(),
                double(o.cfg.optimizer.lr), (unsigned long long)o.cfg.seed, o.out.c_str());
    if (ckpt)
      std::printf("resuming at epoch %d, step %llu (batch %llu of the epoch)\n", state.epoch + 1,
                  (unsigned long long)state.step, (unsigned long long)state.epoch_batches);
    std::fflush(stdout);
  }
  install_stop_handlers();
  Trainer trainer(*graph, o.cfg, state);
  auto metrics = trainer.fit(train, test);
  if (!o.cfg.quiet && !metrics.empty())
    std::printf("final test accuracy %.4f after %d epochs; checkpoints and metrics.csv in %s\n",
                metrics.back().test_accuracy, o.cfg.epochs, o.out.c_str());
  return 0;
}

}  // namespace

Runner add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  CLI::App* cmd = app.add_subcommand("train", "train a model on CIFAR-10");
  cmd->add_option("--data", o->data,
                  "CIFAR-10 binary directory (default: $CIFAR10_DIR, then "
                  "data/cifar-10-batches-bin)");
  cmd->add_option("--model", o->model, "model file")->capture_default_str();
  cmd->add_option("--epochs", o->cfg.epochs, "total epochs to train (also when resuming)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--batch", o->cfg.batch, "batch size")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--optimizer", o->cfg.optimizer.kind, "adam or sgd")
      ->capture_default_str()
      ->check(CLI::IsMember({"adam", "sgd"}));
  cmd->add_option("--lr", o->cfg.optimizer.lr, "learning rate")
      ->capture_default_str()
      ->check(CLI::Range(1e-12, 10.0));
  cmd->add_option("--momentum", o->cfg.optimizer.momentum, "SGD momentum")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.999999));
  cmd->add_flag("--nesterov", o->cfg.optimizer.nesterov, "SGD with Nesterov momentum");
  cmd->add_option("--weight-decay", o->cfg.optimizer.weight_decay, "L2 weight decay")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.999999));
  cmd->add_option("--seed", o->cfg.seed, "seed for initialisation, shuffling and pooling draws")
      ->capture_default_str();
  cmd->add_option("--device", o->device, "auto, cpu or cuda")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_option("--threads", o->threads, "CPU threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--limit-train", o->limit_train, "use only the first N training images");
  cmd->add_option("--limit-test", o->limit_test, "use only the first N test images");
  cmd->add_option("--pool", o->pool,
                  "override every pooling layer: METHOD[:key=value,...], "
                  "e.g. avgtopk:k=3 (see `convpool pool-methods`)");
  cmd->add_option("--out", o->out,
                  "run directory (default: runs/<model>-<time>; with --resume, "
                  "the checkpoint's directory)");
  cmd->add_option("--resume", o->resume, "continue exactly from a checkpoint");
  cmd->add_option("--save-every", o->cfg.save_every, "also save last.safetensors every N steps")
      ->check(CLI::Range(uint64_t(1), uint64_t(1) << 40));
  cmd->add_option("--keep", o->cfg.keep, "keep the N newest step-*.safetensors files")
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--nan-policy", o->cfg.nan_policy,
                  "on a non-finite loss or gradient: stop, or skip that batch's update")
      ->capture_default_str()
      ->check(CLI::IsMember({"stop", "skip"}));
  cmd->add_flag("--quiet", o->cfg.quiet, "print only errors");
  cmd->add_flag("--deterministic", o->deterministic,
                "bit-reproducible runs: always true on the CPU for a fixed --threads; "
                "not yet available on CUDA (refused there)");
  cmd->add_flag("--no-graph", o->no_graph,
                "CUDA: launch every kernel eagerly instead of replaying a captured CUDA Graph");
  cmd->footer(
      "Examples:\n"
      "  convpool train --data data/cifar-10-batches-bin --epochs 10 --device cpu\n"
      "  convpool train --pool mixed --save-every 500 --keep 3\n"
      "  convpool train --resume runs/NAME/last.safetensors --epochs 20");
  return [o, cmd] { return run(*o, *cmd); };
}

}  // namespace convpool::cli
