// convpool: the command-line interface. Each subcommand is one small function below.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "convpool/data.h"
#include "convpool/device.h"
#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/pooling.h"
#include "convpool/trainer.h"

extern "C" void openblas_set_num_threads(int);

namespace {

using namespace convpool;

std::string default_model_path() {
  const std::string local = "models/keras_cifar10.cfg";
  if (std::filesystem::exists(local)) return local;
  return std::string(CONVPOOL_SOURCE_DIR) + "/models/keras_cifar10.cfg";
}

std::string timestamp() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  return buf;
}

void set_threads(int threads) {
  if (threads <= 0) return;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

struct TrainOptions {
  std::string data, model = default_model_path(), out, pool, device = "auto";
  int threads = 0;
  size_t limit_train = 0, limit_test = 0;
  TrainConfig cfg;
};

void add_train_options(CLI::App& cmd, TrainOptions& o) {
  cmd.add_option("--data", o.data, "CIFAR-10 binary directory (default: $CIFAR10_DIR, then "
                                    "data/cifar-10-batches-bin)");
  cmd.add_option("--model", o.model, "model file")->capture_default_str();
  cmd.add_option("--epochs", o.cfg.epochs, "epochs to train")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  cmd.add_option("--batch", o.cfg.batch, "batch size")
      ->capture_default_str()->check(CLI::Range(1, 65536));
  cmd.add_option("--optimizer", o.cfg.optimizer.kind, "adam or sgd")
      ->capture_default_str()->check(CLI::IsMember({"adam", "sgd"}));
  cmd.add_option("--lr", o.cfg.optimizer.lr, "learning rate")
      ->capture_default_str()->check(CLI::Range(1e-12, 10.0));
  cmd.add_option("--momentum", o.cfg.optimizer.momentum, "SGD momentum")
      ->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  cmd.add_flag("--nesterov", o.cfg.optimizer.nesterov, "SGD with Nesterov momentum");
  cmd.add_option("--weight-decay", o.cfg.optimizer.weight_decay, "L2 weight decay")
      ->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  cmd.add_option("--seed", o.cfg.seed, "seed for initialisation, shuffling and pooling draws")
      ->capture_default_str();
  cmd.add_option("--device", o.device, "auto, cpu or cuda")
      ->capture_default_str()->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd.add_option("--threads", o.threads, "CPU threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd.add_option("--limit-train", o.limit_train, "use only the first N training images");
  cmd.add_option("--limit-test", o.limit_test, "use only the first N test images");
  cmd.add_option("--pool", o.pool, "override every pooling layer: METHOD[:key=value,...], "
                                    "e.g. avgtopk:k=3 (see `convpool pool-methods`)");
  cmd.add_option("--out", o.out, "run directory (default: runs/<model>-<time>)");
  cmd.add_flag("--quiet", o.cfg.quiet, "print only errors");
}

Device pick_device(const std::string& name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") {
    require_cuda_device();  // throws a one-line reason
    return Device::cuda;
  }
  return cuda_device_available() ? Device::cuda : Device::cpu;
}

int run_train(TrainOptions& o) {
  set_threads(o.threads);
  ModelSpec spec = load_model_file(o.model);
  if (!o.pool.empty()) apply_pool_override(spec, o.pool);
  o.cfg.device = pick_device(o.device);
  if (o.out.empty())
    o.out = "runs/" + std::filesystem::path(o.model).stem().string() + "-" + timestamp();
  o.cfg.out_dir = o.out;
  const std::string dir = resolve_cifar_dir(o.data);
  Dataset train = load_cifar10(dir, "train", o.limit_train);
  Dataset test = load_cifar10(dir, "test", o.limit_test);

  GraphOptions gopts{o.cfg.device, o.cfg.batch, optimizer_state_slots(o.cfg.optimizer)};
  auto graph = Graph::build(spec, gopts);
  graph->init_params(o.cfg.seed);
  if (!o.cfg.quiet) {
    std::printf("convpool train: %s on %s, %zu train / %zu test images from %s\n",
                o.model.c_str(), device_name(o.cfg.device), train.size(), test.size(),
                dir.c_str());
    std::printf("%s\n", graph->summary().c_str());
    std::printf("threads %d, batch %d, %s lr %g, seed %llu, run directory %s\n",
                omp_get_max_threads(), o.cfg.batch, o.cfg.optimizer.kind.c_str(),
                double(o.cfg.optimizer.lr), (unsigned long long)o.cfg.seed, o.out.c_str());
    std::fflush(stdout);
  }
  Trainer trainer(*graph, o.cfg);
  auto metrics = trainer.fit(train, test);
  if (!o.cfg.quiet)
    std::printf("final test accuracy %.4f after %d epochs (metrics in %s/metrics.csv)\n",
                metrics.back().test_accuracy, o.cfg.epochs, o.out.c_str());
  return 0;
}

int run_pool_methods() {
  std::printf("%-11s %-22s %s\n", "method", "parameters", "definition");
  for (auto& m : pool_methods())
    std::printf("%-11s %-22s %s\n", m.name.c_str(), m.params.empty() ? "-" : m.params.c_str(),
                m.definition.c_str());
  std::printf("\nEvery method takes size=N stride=N pad=N, or the word 'global' for the whole "
              "plane.\nExamples: `pool avgtopk k=3 size=2` in a model file; "
              "`convpool train --pool avgtopk:k=3`.\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"convpool: train and compare pooling methods for CNNs on CIFAR-10"};
  app.require_subcommand(1);
  app.footer("Examples:\n  convpool train --epochs 10\n  convpool train --pool avgtopk:k=3 "
             "--device cpu --limit-train 2000 --epochs 1\n  convpool pool-methods");

  TrainOptions train;
  auto* train_cmd = app.add_subcommand("train", "train a model on CIFAR-10");
  add_train_options(*train_cmd, train);
  train_cmd->footer("Example:\n  convpool train --data data/cifar-10-batches-bin --epochs 10 "
                    "--batch 32 --device cpu");
  auto* methods_cmd = app.add_subcommand("pool-methods", "list the pooling methods");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*train_cmd) return run_train(train);
    if (*methods_cmd) return run_pool_methods();
  } catch (const convpool::Error& e) {
    std::fprintf(stderr, "convpool: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "convpool: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
