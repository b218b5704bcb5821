// Training recipes (lr schedule, optimizer, clipping, label smoothing, EMA) across a resume:
// a run stopped in the middle of its schedule and resumed from the checkpoint gives the
// losses and the weights of the uninterrupted run, bit for bit, on the CPU.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "convpool/checkpoint.h"
#include "convpool/trainer.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

const char* kModel =
    "input channels=3 height=32 width=32\n"
    "conv filters=4 size=3 stride=2\nbatchnorm\nrelu\npool max size=2\nflatten\ndense units=10\n";

constexpr int kBatch = 8;

std::unique_ptr<Graph> graph_for(const TrainConfig& cfg, uint64_t seed) {
  auto g = Graph::build(parse_model_text(kModel, "m"),
                        GraphOptions{Device::cpu, kBatch, optimizer_state_slots(cfg.optimizer)});
  g->init_params(seed);
  return g;
}

std::vector<float> all_params(const Graph& g) {
  return std::vector<float>(g.params(), g.params() + g.num_params());
}

// Asks for a stop once training reaches `epoch` (1-based) at batch `batch`.
class StopAt : public TrainObserver {
 public:
  StopAt(int epoch, uint64_t batch) : epoch_(epoch), batch_(batch) {}
  double batch_interval_seconds() const override { return 0; }
  void on_batch(const BatchProgress& p) override {
    if (p.epoch != epoch_ || p.batch != batch_) return;
    // The epoch's first part then takes far longer than its rest, whose time alone a resume
    // would otherwise report for the epoch.
    std::this_thread::sleep_for(std::chrono::milliseconds(kStopDelayMs));
    request_stop();
  }
  static constexpr int kStopDelayMs = 300;

 private:
  int epoch_;
  uint64_t batch_;
};

struct Recipe {
  std::string name;
  TrainConfig cfg;
};

std::vector<Recipe> recipes(uint64_t steps_per_epoch) {
  std::vector<Recipe> out;
  TrainConfig base;
  base.batch = kBatch;
  base.epochs = 3;
  base.model_text = kModel;
  base.input.flip = true;

  Recipe sgd{"onecycle sgd-nesterov", base};
  sgd.cfg.optimizer.kind = OptimizerKind::sgd;
  sgd.cfg.optimizer.lr = 0.05f;
  sgd.cfg.optimizer.momentum = 0.9f;
  sgd.cfg.optimizer.nesterov = true;
  sgd.cfg.optimizer.weight_decay = 5e-4f;
  sgd.cfg.optimizer.schedule.kind = LrScheduleKind::onecycle;
  sgd.cfg.optimizer.schedule.warmup = 0.25f;
  sgd.cfg.optimizer.clip_grad_norm = 1.f;
  sgd.cfg.label_smoothing = 0.1f;
  sgd.cfg.ema_decay = 0.9f;
  out.push_back(sgd);

  Recipe adam{"warm-up cosine adamw", base};
  adam.cfg.optimizer.kind = OptimizerKind::adamw;
  adam.cfg.optimizer.weight_decay = 0.05f;
  adam.cfg.optimizer.lr = 3e-3f;
  adam.cfg.optimizer.schedule.kind = LrScheduleKind::cosine;
  adam.cfg.optimizer.schedule.warmup = 0.1f;
  adam.cfg.optimizer.clip_grad_norm = 0.5f;
  adam.cfg.label_smoothing = 0.2f;
  adam.cfg.ema_decay = 0.95f;
  adam.cfg.eval_ema = false;
  out.push_back(adam);
  for (Recipe& r : out)
    resolve_schedule(r.cfg.optimizer.schedule, r.cfg.epochs, steps_per_epoch);
  return out;
}

}  // namespace

TEST(RecipeResume, MidScheduleResumeIsBitExact) {
  TempDir d;
  write_cifar_dir(d.str("data"), 20, fresh_seed());  // 100 images: 13 steps of 8, one partial
  const Dataset train = load_cifar10(d.str("data"), "train");
  const Dataset test = load_cifar10(d.str("data"), "test");
  const uint64_t steps_per_epoch = (train.size() + kBatch - 1) / kBatch;
  for (Recipe& r : recipes(steps_per_epoch)) {
    SCOPED_TRACE(r.name);
    const uint64_t seed = fresh_seed();
    r.cfg.seed = seed;
    r.cfg.out_dir = d.str(r.name + " straight");
    auto straight_graph = graph_for(r.cfg, seed);
    const auto straight = Trainer(*straight_graph, r.cfg).fit(train, test);

    // Stopped in epoch 2 at batch 5: in the middle of the warm-up's decay.
    r.cfg.out_dir = d.str(r.name + " stopped");
    auto stopped_graph = graph_for(r.cfg, seed);
    StopAt stop(2, 5);
    Trainer stopper(*stopped_graph, r.cfg, {}, &stop);
    EXPECT_THROW(stopper.fit(train, test), Interrupted);
    clear_stop_requests();
    const Checkpoint c = load_checkpoint(d.str(r.name + " stopped/last.safetensors"));
    ASSERT_EQ(c.state.step, steps_per_epoch + 5);
    EXPECT_GE(c.state.epoch_seconds, StopAt::kStopDelayMs * 1e-3);
    EXPECT_EQ(c.state.optimizer.schedule.total_steps, r.cfg.optimizer.schedule.total_steps);

    // The resume takes its recipe from the checkpoint, as convpool train --resume does.
    TrainConfig resumed_cfg = r.cfg;
    resumed_cfg.optimizer = c.state.optimizer;
    resumed_cfg.label_smoothing = c.state.label_smoothing;
    resumed_cfg.ema_decay = c.state.ema_decay;
    resumed_cfg.eval_ema = c.state.eval_ema;
    auto resumed_graph = graph_for(resumed_cfg, seed + 1);
    restore_graph(c, "c", *resumed_graph, true);
    Trainer resumer(*resumed_graph, resumed_cfg, c.state);
    restore_ema(c, "c", *resumed_graph, resumer.ema_weights());
    const auto resumed = resumer.fit(train, test);
    ASSERT_EQ(resumed.size(), 2u);
    for (int e = 0; e < 2; ++e) {
      EXPECT_EQ(resumed[e].loss, straight[e + 1].loss) << "epoch " << e + 2;
      EXPECT_EQ(resumed[e].test_loss, straight[e + 1].test_loss) << "epoch " << e + 2;
      EXPECT_EQ(resumed[e].lr, straight[e + 1].lr) << "epoch " << e + 2;
    }
    // The interrupted epoch reports its whole time (before the stop and after the resume), and
    // its rate over all its images.
    EXPECT_GE(resumed[0].seconds, c.state.epoch_seconds);
    EXPECT_NEAR(resumed[0].images_per_second * resumed[0].seconds, double(train.size()), 1e-6);
    EXPECT_EQ(all_params(*resumed_graph), all_params(*straight_graph));
    const Checkpoint a = load_checkpoint(d.str(r.name + " straight/last.safetensors"));
    const Checkpoint b = load_checkpoint(d.str(r.name + " stopped/last.safetensors"));
    for (const auto& p : straight_graph->param_infos())
      EXPECT_EQ(a.file.find("ema." + p.name)->data, b.file.find("ema." + p.name)->data) << p.name;
  }
}

// The EMA after each step against the recurrence computed by hand, in double, from the
// weights each step left (read after every batch): ema_0 = the initial weights, then
// ema_t = decay * ema_(t-1) + (1 - decay) * weights_t, BatchNorm's statistics included. The
// epoch's test loss is that of the EMA weights, which best.safetensors holds beside the raw
// ones, and which eval (build_from_checkpoint with ema_weights) loads.
TEST(RecipeEma, FollowsTheRecurrenceAndIsWhatIsEvaluated) {
  TempDir d;
  write_cifar_dir(d.str("data"), 8, fresh_seed());  // 40 images: 5 steps of 8
  const Dataset train = load_cifar10(d.str("data"), "train");
  const Dataset test = load_cifar10(d.str("data"), "test");
  TrainConfig cfg;
  cfg.batch = kBatch;
  cfg.epochs = 1;
  cfg.model_text = kModel;
  cfg.optimizer.kind = OptimizerKind::sgd;
  cfg.optimizer.lr = 0.1f;
  cfg.ema_decay = 0.8f;
  cfg.out_dir = d.str("run");
  auto g = graph_for(cfg, 3);
  const std::vector<float> initial = all_params(*g);
  std::vector<double> want(initial.begin(), initial.end());
  struct Recorder : TrainObserver {
    Graph* graph;
    std::vector<double>* ema;
    double decay;
    int steps = 0;
    double batch_interval_seconds() const override { return 0; }
    void on_batch(const BatchProgress&) override {
      for (size_t i = 0; i < ema->size(); ++i)
        (*ema)[i] = decay * (*ema)[i] + (1 - decay) * double(graph->params()[i]);
      ++steps;
    }
  } recorder;
  recorder.graph = g.get();
  recorder.ema = &want;
  recorder.decay = double(cfg.ema_decay);
  Trainer trainer(*g, cfg, {}, &recorder);
  const auto m = trainer.fit(train, test);
  ASSERT_EQ(recorder.steps, 5);
  const float* ema = trainer.ema_weights();
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(ema[i] - want[i]));
  EXPECT_LT(worst, 1e-6);
  EXPECT_NE(all_params(*g), std::vector<float>(ema, ema + g->num_params()));

  const Checkpoint best = load_checkpoint(d.str("run/best.safetensors"));
  EXPECT_EQ(best.state.ema_decay, cfg.ema_decay);
  for (bool use_ema : {true, false}) {
    auto loaded = build_from_checkpoint(best, "best", GraphOptions{Device::cpu, kBatch, 0}, use_ema);
    const float* want_weights = use_ema ? ema : g->params();
    EXPECT_EQ(all_params(*loaded), std::vector<float>(want_weights, want_weights + g->num_params()));
    TrainConfig eval_cfg;
    eval_cfg.batch = kBatch;
    const EvalResult r = Trainer(*loaded, eval_cfg).evaluate(test);
    if (use_ema) {
      EXPECT_EQ(r.loss, m[0].test_loss);
    }
  }
}

// A checkpoint written before schedules existed (no "schedule" in its optimizer metadata)
// loads, and resumes, at a constant lr.
TEST(RecipeResume, CheckpointWithoutAScheduleLoadsAsConstant) {
  TempDir d;
  TrainConfig cfg;
  auto g = graph_for(cfg, 1);
  TrainState state;
  state.optimizer.lr = 0.02f;
  save_checkpoint(d.str("c.safetensors"), *g, kModel, "", state);
  SafetensorsFile f =
      decode_safetensors(read_regular_file(d.str("c.safetensors"), kMaxCheckpointBytes, "c"), "c");
  auto optimizer = nlohmann::json::parse(f.metadata.at("optimizer"));
  ASSERT_TRUE(optimizer.contains("schedule"));
  optimizer.erase("schedule");
  f.metadata["optimizer"] = optimizer.dump();
  const Checkpoint old = decode_checkpoint(encode_safetensors(f.tensors, f.metadata), "old");
  EXPECT_EQ(old.state.optimizer.schedule.kind, LrScheduleKind::constant);
  EXPECT_EQ(old.state.optimizer.schedule.warmup, 0.f);
  EXPECT_EQ(scheduled_lr(old.state.optimizer, 77), 0.02f);
}

// A resume keeps its promises about data. A schedule spans the run's steps: resuming a
// one-cycle run on more training images (a larger --limit-train) would train its remaining
// steps past the schedule's end at a vanishing lr, so it is refused; on the run's own data it
// continues. A resume that evaluates on another test set (--limit-test changed) chooses its
// best checkpoint afresh instead of comparing accuracies across test sets.
TEST(RecipeResume, ResumeRefusesOtherTrainingDataAndRechoosesBestOnAnotherTestSet) {
  TempDir d;
  write_cifar_dir(d.str("data"), 40, 23);  // 200 training images, 40 test images
  const std::string run = " --device cpu --threads 1 --quiet --data " + d.str("data");
  ASSERT_EQ(run_convpool("train --batch 32 --lr-schedule onecycle --epochs 2 --limit-train 64 --out " +
                         d.str("cyc") + run)
                .exit_code,
            0);
  // Stop after epoch 1 by resuming the epoch-1 state: a finished 2-epoch run extended to 3.
  const std::string last = d.str("cyc/last.safetensors");
  const CommandResult more = run_convpool("train --resume " + last + " --epochs 3 --limit-train 128" + run);
  EXPECT_NE(more.exit_code, 0);
  EXPECT_NE(more.output.find("trained 2 steps per epoch"), std::string::npos) << more.output;
  EXPECT_NE(more.output.find("this data gives 4 per epoch"), std::string::npos) << more.output;
  const CommandResult same = run_convpool("train --resume " + last + " --epochs 3" + run);
  EXPECT_EQ(same.exit_code, 0) << same.output;

  ASSERT_EQ(run_convpool("train --batch 32 --epochs 1 --limit-test 20 --out " + d.str("t") + run)
                .exit_code,
            0);
  const CommandResult other_tests = run_convpool(
      "train --resume " + d.str("t/last.safetensors") + " --epochs 2 --limit-test 40 --device cpu "
      "--threads 1 --data " + d.str("data"));
  EXPECT_EQ(other_tests.exit_code, 0) << other_tests.output;
  EXPECT_NE(other_tests.output.find("best.safetensors is chosen afresh"), std::string::npos)
      << other_tests.output;
  // The best checkpoint is the one evaluated on the new test set, whatever the old accuracy.
  EXPECT_EQ(load_checkpoint(d.str("t/best.safetensors")).state.epoch, 2);
}
