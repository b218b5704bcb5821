// convpool eval: test accuracy, loss, per-class accuracy and the confusion matrix of a
// checkpoint.
#include <cstdio>
#include <memory>
#include <sstream>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "cli_data.h"
#include "convpool/checkpoint.h"
#include "convpool/data.h"
#include "convpool/graph.h"
#include "convpool/pooling.h"
#include "convpool/trainer.h"

namespace convpool::cli {

namespace {

struct EvalOptions {
  std::string checkpoint, data, cache_dir, device = "auto", tta = "none";
  std::string memory_budget = kDefaultMemoryBudget;
  std::string weights = "auto";  // ema, raw, or auto: the EMA's when the checkpoint has them
  int batch = 256, threads = 0;
  size_t limit_test = 0;
  bool json = false;
};

int run(const EvalOptions& o) {
  set_threads(o.threads);
  const std::vector<TtaView> views = tta_views(o.tta);  // a bad spec fails before any loading
  const Checkpoint ckpt = load_checkpoint(o.checkpoint);
  if (const std::string note = format_note(ckpt, o.checkpoint); !note.empty())
    std::fprintf(stderr, "convpool: %s\n", note.c_str());
  const Device device = pick_device(o.device);
  const bool ema = uses_ema_weights(ckpt, o.weights);
  const std::string weights = describe_weights(ckpt, ema);  // said in both outputs
  auto graph = build_from_checkpoint(ckpt, o.checkpoint, GraphOptions{device, o.batch, 0}, ema);
  // The data set the checkpoint's run trained on (CIFAR-10 for checkpoints older than that).
  DataChoice data = checkpoint_data(ckpt.state, o.data, o.cache_dir);
  data.memory_budget = parse_memory_budget(o.memory_budget);
  const int classes = data.classes;
  require_model_fits_data(*graph, o.checkpoint + " (model)", classes, data.side, data_title(data));
  const std::string& dir = data.dir;
  const Dataset test = load_split(data, "test", o.limit_test, o.json);
  if (const std::string note = data_note(test, "test"); !note.empty())
    std::fprintf(stderr, "convpool: %s\n", note.c_str());

  const EvalResult r = checkpoint_evaluator(*graph, ckpt, device, o.batch)->evaluate(test, views);

  std::vector<std::vector<int>> confusion(size_t(classes), std::vector<int>(size_t(classes), 0));
  std::vector<int> per_class_total(size_t(classes), 0);
  for (size_t i = 0; i < test.size(); ++i) {
    confusion[test.labels[i]][r.predictions[i]]++;
    per_class_total[test.labels[i]]++;
  }
  auto class_acc = [&](int c) {
    return per_class_total[c] ? double(confusion[c][c]) / per_class_total[c] : 0.0;
  };
  if (o.json) {
    nlohmann::ordered_json j;
    j["checkpoint"] = o.checkpoint;
    j["device"] = device_name(device);
    j["weights"] = ema ? "ema" : "raw";
    j["images"] = test.size();
    j["accuracy"] = r.accuracy;
    j["loss"] = r.loss;
    j["tta"] = o.tta;
    j["epoch"] = ckpt.state.epoch;
    j["step"] = ckpt.state.step;
    j["epoch_batches"] = ckpt.state.epoch_batches;  // > 0: saved in the middle of epoch + 1
    for (int c = 0; c < classes; ++c)
      j["per_class"][test.class_names[c]] = {{"accuracy", class_acc(c)},
                                             {"images", per_class_total[c]}};
    j["confusion"] = confusion;  // rows: true class, columns: predicted class
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("checkpoint %s (%s) on %s\n", o.checkpoint.c_str(),
              describe_position(ckpt.state).c_str(), device_name(device));
  std::printf("weights %s\n", weights.c_str());
  std::printf("test accuracy %.4f  loss %.4f  (%zu images from %s%s)\n\n", r.accuracy, r.loss,
              test.size(), dir.c_str(),
              views.size() > 1 ? (", test-time augmentation " + o.tta + ": mean logits of " +
                                  std::to_string(views.size()) + " views")
                                     .c_str()
                               : "");
  std::printf("%-12s %8s %7s\n", "class", "accuracy", "images");
  for (int c = 0; c < classes; ++c)
    if (per_class_total[c] == 0)  // a class without test images (an image folder's val/)
      std::printf("%-12s %8s %7d\n", test.class_names[c].c_str(), "-", 0);
    else
      std::printf("%-12s %8.4f %7d\n", test.class_names[c].c_str(), class_acc(c),
                  per_class_total[c]);
  if (classes > 20) {  // a matrix too wide to read on a terminal
    std::printf("\nconfusion matrix: %d classes, in --json\n", classes);
    return 0;
  }
  std::printf("\nconfusion matrix (rows: true class, columns: predicted)\n%-12s", "");
  for (int c = 0; c < classes; ++c) std::printf(" %5.5s", test.class_names[c].c_str());
  std::printf("\n");
  for (int t = 0; t < classes; ++t) {
    std::printf("%-12s", test.class_names[t].c_str());
    for (int p = 0; p < classes; ++p) std::printf(" %5d", confusion[t][p]);
    std::printf("\n");
  }
  return 0;
}

}  // namespace

std::unique_ptr<Trainer> checkpoint_evaluator(Graph& graph, const Checkpoint& ckpt,
                                              Device device, int batch) {
  TrainConfig cfg;
  cfg.batch = batch;
  cfg.seed = ckpt.state.seed;
  cfg.device = device;
  cfg.input = ckpt.state.input;
  cfg.dataset = parse_dataset_kind(ckpt.state.dataset);
  cfg.classes = int(checkpoint_class_names(ckpt.state).size());
  TrainState state = ckpt.state;
  state.batch = batch;
  return std::make_unique<Trainer>(graph, cfg, state);
}

Runner add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "evaluate a checkpoint on the test set of the data set it trained on");
  cmd->add_option("--checkpoint", o->checkpoint, "a .safetensors checkpoint from train")
      ->required();
  cmd->add_option("--data", o->data,
                  "the checkpoint's data set: its CIFAR binary directory (default: $CIFAR10_DIR, "
                  "then data/cifar-10-batches-bin), or its image folder (default: the one it "
                  "trained on)")
      ->check(kNonEmpty);
  cmd->add_option("--memory-budget", o->memory_budget,
                  "image folders: a test set over this size streams from its mapped cache")
      ->capture_default_str();
  cmd->add_option("--cache-dir", o->cache_dir,
                  "image folders: where the decoded images are kept (as train's)")
      ->check(kNonEmpty);
  add_device_options(cmd, o->device, o->threads);
  cmd->add_option("--batch", o->batch, "evaluation batch size")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--limit-test", o->limit_test, "use only the first N test images")
      ->check(kWholeNumber);
  cmd->add_option("--tta", o->tta,
                  "test-time augmentation: none, flip (the image and its mirror) or "
                  "flip,translate (also shifted by one pixel both ways, airbench94's)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "machine-readable output");
  cmd->add_option("--weights", o->weights,
                  "auto (the EMA's when the checkpoint has them, from train --ema), ema or raw")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "ema", "raw"}));
  cmd->footer("Example:\n  convpool eval --checkpoint runs/NAME/best.safetensors --json");
  return [o] { return run(*o); };
}

}  // namespace convpool::cli
