#include "convpool/trainer.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "../cpu/loss.h"
#include "convpool/metrics.h"
#include "convpool/profile.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "../cuda/train_step.h"
#endif

namespace convpool {

namespace fs = std::filesystem;

// ---- stop signals ----
namespace {
std::atomic<int> g_stop_requests{0};

extern "C" void on_stop_signal(int sig) {
  if (g_stop_requests.fetch_add(1) >= 1 && sig == SIGINT) {
    static const char msg[] = "\nconvpool: second interrupt, exiting now\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(130);
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool all_finite(const float* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}
}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}
bool stop_requested() { return g_stop_requests.load() > 0; }
void request_stop() { g_stop_requests.fetch_add(1); }
void clear_stop_requests() { g_stop_requests.store(0); }

void require_cifar_model(const Graph& graph, const std::string& origin) {
  const Shape in = graph.input_shape(1);
  if (in.c != kCifarChannels || in.h != kCifarSide || in.w != kCifarSide)
    CP_USER_ERROR(origin << " takes " << in.c << "x" << in.h << "x" << in.w
                         << " inputs, but CIFAR-10 images are 3x32x32 (set its input line to "
                            "'input channels=3 height=32 width=32')");
  if (graph.output_shape(1).numel() != size_t(kCifarClasses))
    CP_USER_ERROR(origin << " gives " << graph.output_shape(1).numel()
                         << " outputs per image; CIFAR-10 needs 10 logits");
}

// ---- trainer ----
struct Trainer::Impl {
  std::vector<uint8_t> labels;
  std::vector<float> logits;  // CUDA evaluation: logits copied back per batch
  std::unique_ptr<MetricsLog> metrics;
  std::string last_saved;  // path of the newest good checkpoint, for messages
  std::chrono::steady_clock::time_point epoch_start, last_report;
#ifdef CONVPOOL_HAVE_CUDA
  std::unique_ptr<cuda::TrainStepper> stepper;
#endif
};

Trainer::Trainer(Graph& graph, const TrainConfig& cfg, const TrainState& state,
                 TrainObserver* observer)
    : graph_(graph),
      cfg_(cfg),
      state_(state),
      impl_(std::make_unique<Impl>()),
      observer_(observer) {
  validate(cfg.optimizer);
  validate(cfg.input);
  if (cfg.nan_policy != "stop" && cfg.nan_policy != "skip")
    CP_USER_ERROR("--nan-policy must be stop or skip (got " << cfg.nan_policy << ")");
  if (cfg.batch > graph.max_batch()) CP_FAIL("batch larger than the graph was built for");
  if (graph.device() == Device::cuda) {
#ifdef CONVPOOL_HAVE_CUDA
    if (cfg.nan_policy == "skip")
      CP_USER_ERROR("--nan-policy skip is only available on the CPU; CUDA runs stop instead");
    impl_->stepper = std::make_unique<cuda::TrainStepper>(graph, cfg.optimizer, cfg.input, cfg.seed,
                                                          state.step, cfg.cuda_graph);
    impl_->logits.resize(size_t(graph.max_batch()) * kCifarClasses);
#else
    CP_USER_ERROR("this convpool binary was built without CUDA");
#endif
  }
  require_cifar_model(graph, "the model");
  state_.seed = cfg.seed;
  state_.batch = cfg.batch;
  state_.optimizer = cfg.optimizer;
  state_.input = cfg.input;
  impl_->labels.resize(cfg.batch);
  if (!cfg.out_dir.empty()) {
    std::error_code ec;
    fs::create_directories(cfg.out_dir, ec);
    remove_stale_temporaries(cfg.out_dir);  // of saves that a kill interrupted
    const std::string path = cfg.out_dir + "/metrics.csv";
    if (state_.history.size() != size_t(state_.epoch)) {
      // A version-1 checkpoint: no history inside, so take what metrics.csv holds of it.
      state_.history.clear();
      try {
        for (const EpochMetrics& m : read_metrics_csv(path))
          if (m.epoch == int(state_.history.size()) + 1 && m.epoch <= state_.epoch)
            state_.history.push_back(m);
      } catch (const Error&) {
        // Unreadable: the rows of earlier epochs are lost, the run itself is not.
      }
    }
    impl_->metrics = std::make_unique<MetricsLog>(path, state_.history);
  }
}

Trainer::~Trainer() = default;

void Trainer::save(const std::string& reason) {
  if (cfg_.out_dir.empty()) return;
#ifdef CONVPOOL_HAVE_CUDA
  if (impl_->stepper) impl_->stepper->synchronize();  // the weights must be final before copying
#endif
  const std::string last = cfg_.out_dir + "/last.safetensors";
  save_checkpoint(last, graph_, cfg_.model_text, cfg_.pool_override, state_);
  impl_->last_saved = last;
  if (reason == "best")
    save_checkpoint(cfg_.out_dir + "/best.safetensors", graph_, cfg_.model_text, cfg_.pool_override,
                    state_);
  if (cfg_.keep > 0 && reason != "stop") {
    char name[64];
    std::snprintf(name, sizeof name, "/step-%010llu.safetensors",
                  static_cast<unsigned long long>(state_.step));
    save_checkpoint(cfg_.out_dir + name, graph_, cfg_.model_text, cfg_.pool_override, state_);
    std::vector<fs::path> history;
    for (auto& e : fs::directory_iterator(cfg_.out_dir))
      if (e.path().filename().string().rfind("step-", 0) == 0 &&
          e.path().extension() == ".safetensors")
        history.push_back(e.path());
    std::sort(history.begin(), history.end());
    for (size_t i = 0; i + cfg_.keep < history.size(); ++i) fs::remove(history[i]);
  }
}

bool Trainer::progress_due(uint64_t batches) {
  if (!observer_) return false;
  const auto now = std::chrono::steady_clock::now();
  if (state_.epoch_batches < batches &&
      std::chrono::duration<double>(now - impl_->last_report).count() <
          observer_->batch_interval_seconds())
    return false;
  impl_->last_report = now;
  return true;
}

void Trainer::report_progress(uint64_t batches, size_t train_size, size_t images_trained,
                              double loss_sum, uint64_t correct) {
  BatchProgress p;
  p.epoch = state_.epoch + 1;
  p.epochs = cfg_.epochs;
  p.batch = state_.epoch_batches;
  p.batches = batches;
  // The sums cover every image of the epoch so far, including a resumed run's earlier part.
  const uint64_t in_sums = std::min<uint64_t>(state_.epoch_batches * cfg_.batch, train_size);
  p.loss = loss_sum / double(std::max<uint64_t>(1, in_sums));
  p.accuracy = double(correct) / double(std::max<uint64_t>(1, in_sums));
  p.seconds = seconds_since(impl_->epoch_start);
  p.images_per_second = double(images_trained) / std::max(1e-9, p.seconds);
  observer_->on_batch(p);
}

void Trainer::stop_and_save() {
  save("stop");
  throw Interrupted("interrupted at step " + std::to_string(state_.step) +
                    (impl_->last_saved.empty()
                         ? std::string("; no run directory, nothing saved")
                         : "; checkpoint saved to " + impl_->last_saved +
                               " (continue with --resume " + impl_->last_saved + ")"));
}

void Trainer::non_finite(const char* what, int n) {
  // Run the step's forward and backward again (the same draws: they are keyed by the step),
  // checking each node's output, then each input gradient, as soon as it is written: the
  // activation memory is shared between tensors, so the finished step no longer holds them.
  std::string where = "none found in activations or gradients";
  StepContext ctx{Device::cpu, true, cfg_.seed, state_.step + 1, nullptr};
  if (auto i = graph_.forward_until_non_finite(ctx, n)) {
    where = "first in the output of layer " + graph_.layer(*i).name();
  } else {
    cpu::softmax_xent(n, kCifarClasses, graph_.output(n).data, impl_->labels.data(),
                      graph_.output_grad(n).data, 1.f / float(n));
    if (auto j = graph_.backward_until_non_finite(ctx, n))
      where = "first in the input gradient of layer " + graph_.layer(*j).name();
  }
  CP_USER_ERROR(
      "non-finite " << what << " at step " << state_.step << " (epoch " << state_.epoch + 1 << "), "
                    << where << "; "
                    << (impl_->last_saved.empty()
                            ? std::string("no checkpoint was written")
                            : "the last good checkpoint " + impl_->last_saved + " is untouched")
                    << "; try a lower --lr or --nan-policy skip");
}

EpochMetrics Trainer::train_epoch(const Dataset& train) {
  Region epoch_region(regions::epoch, Device::cpu);
  const auto t0 = std::chrono::steady_clock::now();
  impl_->epoch_start = impl_->last_report = t0;
  const auto order = epoch_order(train.size(), cfg_.seed, uint64_t(state_.epoch));
  if (graph_.device() == Device::cuda) {
    // A resumed epoch trains only the images after its saved position.
    const size_t images = train.size() - std::min(train.size(), state_.epoch_batches * cfg_.batch);
    EpochMetrics m = train_epoch_cuda(train, order);
    m.seconds = seconds_since(t0);
    m.images_per_second = double(images) / m.seconds;
    return m;
  }
  const int B = cfg_.batch;
  const OptimizerConfig& oc = cfg_.optimizer;
  const int slots = optimizer_state_slots(oc);
  const uint64_t batches = (train.size() + B - 1) / B;
  EpochMetrics m;
  size_t images = 0;
  for (size_t first = state_.epoch_batches * B; first < train.size(); first += B) {
    // The last batch may be partial: it is trained on, never dropped.
    const int n = int(std::min<size_t>(B, train.size() - first));
    {
      Region region(regions::input, Device::cpu);
      images_to_float(train, order.data() + first, n, graph_.input(n).data, cfg_.input, true,
                      cfg_.seed, state_.step + 1);
      for (int i = 0; i < n; ++i) impl_->labels[i] = train.labels[order[first + i]];
    }
    StepContext ctx{Device::cpu, true, cfg_.seed, state_.step + 1, nullptr};
    graph_.forward(ctx, n);
    cpu::LossSums s;
    {
      Region region(regions::loss, Device::cpu);
      s = cpu::softmax_xent(n, kCifarClasses, graph_.output(n).data, impl_->labels.data(),
                            graph_.output_grad(n).data, 1.f / float(n));
    }
    graph_.backward(ctx, n);
    bool finite = false;
    {
      Region region(regions::optimizer, Device::cpu);  // the finite check and the update
      finite = std::isfinite(s.loss) && all_finite(graph_.grads(), graph_.num_params());
      if (!finite && cfg_.nan_policy == "stop")
        non_finite(std::isfinite(s.loss) ? "gradient" : "loss", n);
      ++state_.epoch_batches;
      images += n;
      if (finite) {
        ++state_.step;
        optimizer_step(Device::cpu, oc, state_.step, graph_.param_groups(), graph_.params(),
                       graph_.grads(), slots > 0 ? graph_.optimizer_state(0) : nullptr,
                       slots > 1 ? graph_.optimizer_state(1) : nullptr);
        state_.epoch_loss_sum += s.loss;
        state_.epoch_correct += s.correct;
      } else {
        ++m.skipped_batches;
      }
    }
    if (progress_due(batches))
      report_progress(batches, train.size(), images, state_.epoch_loss_sum, state_.epoch_correct);
    if (stop_requested()) stop_and_save();
    if (cfg_.save_every && state_.step % cfg_.save_every == 0 && finite) save("periodic");
  }
  const uint64_t trained_here = (images + B - 1) / B;
  if (trained_here > 0 && m.skipped_batches == trained_here)
    CP_USER_ERROR("every batch of epoch " << state_.epoch + 1 << " (" << trained_here
                                          << ") had a non-finite loss or gradient and was skipped "
                                             "(--nan-policy skip): the run has failed; "
                                          << (impl_->last_saved.empty()
                                                  ? std::string("no checkpoint was written")
                                                  : "the last good checkpoint " +
                                                        impl_->last_saved + " is untouched"));
  m.epoch = state_.epoch + 1;
  const double seen = double(train.size());
  m.loss = state_.epoch_loss_sum / seen;
  m.accuracy = double(state_.epoch_correct) / seen;
  m.seconds = seconds_since(t0);
  m.images_per_second = double(images) / m.seconds;
  ++state_.epoch;
  state_.epoch_batches = 0;
  state_.epoch_loss_sum = 0;
  state_.epoch_correct = 0;
  return m;
}

EpochMetrics Trainer::train_epoch_cuda(const Dataset& train, const std::vector<uint32_t>& order) {
  EpochMetrics m;
#ifdef CONVPOOL_HAVE_CUDA
  // The device flags the first step whose loss or gradient was not finite (kernels/loss.cu,
  // kernels/optim.cu); every read of the counters checks it before anything is saved.
  const auto fail_if_bad_step = [&](uint64_t bad_step) {
    if (!bad_step) return;
    CP_USER_ERROR("non-finite loss or gradient at step "
                  << bad_step << " (epoch " << state_.epoch + 1 << "); "
                  << (impl_->last_saved.empty()
                          ? std::string("no checkpoint was written")
                          : "the last good checkpoint " + impl_->last_saved + " is untouched")
                  << "; try a lower --lr");
  };
  const int B = cfg_.batch;
  const size_t first_image = state_.epoch_batches * B;
  const uint64_t batches = (train.size() + B - 1) / B;
  for (size_t first = first_image; first < train.size(); first += B) {
    const int n = int(std::min<size_t>(B, train.size() - first));
    impl_->stepper->step(train, order.data() + first, n);
    ++state_.step;
    ++state_.epoch_batches;
    if (progress_due(batches)) {
      const auto c = impl_->stepper->peek_counters();  // one sync, a few times a second at most
      report_progress(batches, train.size(), first + n - first_image,
                      state_.epoch_loss_sum + c.loss_sum, state_.epoch_correct + c.correct);
    }
    if (stop_requested()) {
      // Sums of the partial epoch come from the device; the checkpoint then resumes exactly.
      // A step flagged since the last read has unusable weights: fail instead of saving them.
      const auto c = impl_->stepper->finish_epoch();
      fail_if_bad_step(c.first_bad_step);
      state_.epoch_loss_sum += c.loss_sum;
      state_.epoch_correct += c.correct;
      stop_and_save();
    }
    if (cfg_.save_every && state_.step % cfg_.save_every == 0) {
      const auto c = impl_->stepper->finish_epoch();
      fail_if_bad_step(c.first_bad_step);
      state_.epoch_loss_sum += c.loss_sum;
      state_.epoch_correct += c.correct;
      save("periodic");
    }
  }
  const auto c = impl_->stepper->finish_epoch();
  fail_if_bad_step(c.first_bad_step);
  state_.epoch_loss_sum += c.loss_sum;
  state_.epoch_correct += c.correct;
  m.data_wait_seconds = c.host_wait_seconds;
  m.epoch = state_.epoch + 1;
  m.loss = state_.epoch_loss_sum / double(train.size());
  m.accuracy = double(state_.epoch_correct) / double(train.size());
  ++state_.epoch;
  state_.epoch_batches = 0;
  state_.epoch_loss_sum = 0;
  state_.epoch_correct = 0;
#else
  (void)train;
  (void)order;
#endif
  return m;
}

EvalResult Trainer::evaluate(const Dataset& test) {
  Region eval_region(regions::eval, Device::cpu);
  EvalResult r;
  r.predictions.resize(test.size());
  std::vector<uint32_t> order(test.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(i);
  const int B = graph_.max_batch();
  double loss_sum = 0;
  long correct = 0;
  for (size_t first = 0; first < test.size(); first += B) {
    const int n = int(std::min<size_t>(B, test.size() - first));
    const float* logits = nullptr;
#ifdef CONVPOOL_HAVE_CUDA
    if (impl_->stepper) {
      impl_->stepper->eval_batch(test, order.data() + first, n, impl_->logits.data());
      logits = impl_->logits.data();
    }
#endif
    if (!logits) {
      images_to_float(test, order.data() + first, n, graph_.input(n).data, cfg_.input);
      StepContext ctx{Device::cpu, false, cfg_.seed, state_.step, nullptr};
      graph_.forward(ctx, n);
      logits = graph_.output(n).data;
    }
    const auto s =
        cpu::softmax_xent(n, kCifarClasses, logits, test.labels.data() + first, nullptr, 0.f);
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

std::string format_epoch_line(const EpochMetrics& m, int epochs) {
  char line[256];
  std::snprintf(
      line, sizeof line,
      "epoch %d/%d  loss %.4f  acc %.4f  test_loss %.4f  test_acc %.4f  %.1fs  %.0f img/s", m.epoch,
      epochs, m.loss, m.accuracy, m.test_loss, m.test_accuracy, m.seconds, m.images_per_second);
  std::string s = line;
  if (m.skipped_batches)
    s += "  (" + std::to_string(m.skipped_batches) + " non-finite batches skipped)";
  return s;
}

std::vector<EpochMetrics> Trainer::fit(const Dataset& train, const Dataset& test) {
  if (train.size() == 0) CP_USER_ERROR("no training images");
  if (test.size() == 0) CP_USER_ERROR("no test images");
  if (state_.epoch_batches * size_t(cfg_.batch) > train.size())
    CP_USER_ERROR(
        "the checkpoint is further into its epoch than this training set is long "
        "(was it saved with another --limit-train?)");
  std::vector<EpochMetrics> all;
  while (state_.epoch < cfg_.epochs) {
    EpochMetrics m = train_epoch(train);
    const EvalResult ev = evaluate(test);
    m.test_loss = ev.loss;
    m.test_accuracy = ev.accuracy;
    const bool best = ev.accuracy > state_.best_accuracy;
    if (best) state_.best_accuracy = ev.accuracy;
    if (observer_) observer_->on_epoch(m, cfg_.epochs);
    // The row first, durably: a crash before the checkpoint repeats the epoch, and the
    // resume rewrites metrics.csv from the checkpoint's history, so the row appears once.
    if (impl_->metrics) impl_->metrics->append(m);
    state_.history.push_back(m);
    save(best ? "best" : "epoch");
    all.push_back(m);
  }
  return all;
}

}  // namespace convpool
