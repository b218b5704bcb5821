#include "convpool/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "../cpu/loss.h"
#include "convpool/error.h"

namespace convpool {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

// Host-side scratch for the CPU path.
struct Trainer::Impl {
  std::vector<uint8_t> labels;
  std::ofstream metrics;
};

Trainer::Trainer(Graph& graph, const TrainConfig& cfg)
    : graph_(graph), cfg_(cfg), impl_(std::make_unique<Impl>()) {
  validate(cfg.optimizer);
  if (graph.device() != Device::cpu)
    CP_USER_ERROR("the trainer's CUDA path is not built yet; use --device cpu");
  if (cfg.batch > graph.max_batch()) CP_FAIL("batch larger than the graph was built for");
  if (graph.output_shape(1).numel() != size_t(kCifarClasses))
    CP_USER_ERROR("the model's output has " << graph.output_shape(1).numel()
                                            << " values; CIFAR-10 needs 10 logits");
  if (optimizer_state_slots(cfg.optimizer) > 0 && graph.num_params() > 0)
    CP_CHECK(graph.optimizer_state(optimizer_state_slots(cfg.optimizer) - 1) != nullptr,
             "graph built without optimizer state");
  impl_->labels.resize(cfg.batch);
  if (!cfg.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(cfg.out_dir, ec);
    const std::string path = cfg.out_dir + "/metrics.csv";
    const bool fresh = !std::filesystem::exists(path);
    impl_->metrics.open(path, std::ios::app);
    if (!impl_->metrics) CP_USER_ERROR("cannot write " << path << " (is the directory writable?)");
    if (fresh)
      impl_->metrics << "epoch,loss,accuracy,test_loss,test_accuracy,seconds,images_per_second\n";
  }
}

Trainer::~Trainer() = default;

EpochMetrics Trainer::train_epoch(const Dataset& train, int epoch) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto order = epoch_order(train.size(), cfg_.seed, uint64_t(epoch));
  const int B = cfg_.batch;
  double loss_sum = 0;
  long correct = 0;
  const OptimizerConfig& oc = cfg_.optimizer;
  const int slots = optimizer_state_slots(oc);
  for (size_t first = 0; first < train.size(); first += B) {
    // The last batch may be partial: it is trained on, never dropped.
    const int n = int(std::min<size_t>(B, train.size() - first));
    images_to_float(train, order.data() + first, n, graph_.input(n).data);
    for (int i = 0; i < n; ++i) impl_->labels[i] = train.labels[order[first + i]];
    ++step_;
    StepContext ctx{Device::cpu, true, cfg_.seed, step_, nullptr};
    graph_.forward(ctx, n);
    const auto s = cpu::softmax_xent(n, kCifarClasses, graph_.output(n).data, impl_->labels.data(),
                                     graph_.output_grad(n).data, 1.f / float(n));
    if (!std::isfinite(s.loss))
      CP_USER_ERROR("loss became non-finite at step " << step_ << " (epoch " << epoch + 1
                                                      << "); try a lower --lr");
    loss_sum += s.loss;
    correct += s.correct;
    graph_.backward(ctx, n);
    optimizer_step(Device::cpu, oc, step_, graph_.params(), graph_.grads(),
                   slots > 0 ? graph_.optimizer_state(0) : nullptr,
                   slots > 1 ? graph_.optimizer_state(1) : nullptr, graph_.num_params());
  }
  EpochMetrics m;
  m.epoch = epoch + 1;
  m.loss = loss_sum / double(train.size());
  m.accuracy = double(correct) / double(train.size());
  m.seconds = seconds_since(t0);
  m.images_per_second = double(train.size()) / m.seconds;
  return m;
}

EvalResult Trainer::evaluate(const Dataset& test) {
  EvalResult r;
  r.predictions.resize(test.size());
  std::vector<uint32_t> order(test.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(i);
  const int B = graph_.max_batch();
  double loss_sum = 0;
  long correct = 0;
  for (size_t first = 0; first < test.size(); first += B) {
    const int n = int(std::min<size_t>(B, test.size() - first));
    images_to_float(test, order.data() + first, n, graph_.input(n).data);
    StepContext ctx{Device::cpu, false, cfg_.seed, step_, nullptr};
    graph_.forward(ctx, n);
    const float* logits = graph_.output(n).data;
    const auto s = cpu::softmax_xent(n, kCifarClasses, logits, test.labels.data() + first,
                                     nullptr, 0.f);
    loss_sum += s.loss;
    correct += s.correct;
    for (int i = 0; i < n; ++i) {
      int arg = 0;
      for (int k = 1; k < kCifarClasses; ++k)
        if (logits[i * kCifarClasses + k] > logits[i * kCifarClasses + arg]) arg = k;
      r.predictions[first + i] = arg;
    }
  }
  r.loss = loss_sum / double(test.size());
  r.accuracy = double(correct) / double(test.size());
  return r;
}

std::vector<EpochMetrics> Trainer::fit(const Dataset& train, const Dataset& test) {
  if (train.size() == 0) CP_USER_ERROR("no training images");
  if (test.size() == 0) CP_USER_ERROR("no test images");
  std::vector<EpochMetrics> all;
  for (int e = 0; e < cfg_.epochs; ++e) {
    EpochMetrics m = train_epoch(train, e);
    const EvalResult ev = evaluate(test);
    m.test_loss = ev.loss;
    m.test_accuracy = ev.accuracy;
    if (!cfg_.quiet) {
      std::printf("epoch %d/%d  loss %.4f  acc %.4f  test_loss %.4f  test_acc %.4f  %.1fs  %.0f img/s\n",
                  m.epoch, cfg_.epochs, m.loss, m.accuracy, m.test_loss, m.test_accuracy,
                  m.seconds, m.images_per_second);
      std::fflush(stdout);
    }
    if (impl_->metrics.is_open()) {
      impl_->metrics << m.epoch << "," << m.loss << "," << m.accuracy << "," << m.test_loss << ","
                     << m.test_accuracy << "," << m.seconds << "," << m.images_per_second << "\n";
      impl_->metrics.flush();
    }
    all.push_back(m);
  }
  return all;
}

}  // namespace convpool
