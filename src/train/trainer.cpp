#include "convpool/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "cpu/loss.h"
#include "convpool/buffer.h"
#include "convpool/distributed.h"
#include "step.h"
#include "convpool/metrics.h"
#include "convpool/profile.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "cuda_step.h"
#endif

namespace convpool {

namespace fs = std::filesystem;

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

void validate_recipe(const TrainConfig& cfg) {
  if (!(cfg.label_smoothing >= 0.f && cfg.label_smoothing < 1.f))
    CP_USER_ERROR("--label-smoothing must be in [0, 1) (got " << cfg.label_smoothing << ")");
  if (cfg.ema_decay != 0.f && !(cfg.ema_decay > 0.f && cfg.ema_decay < 1.f))
    CP_USER_ERROR("--ema decay must be in (0, 1), e.g. 0.999 (got " << cfg.ema_decay
                                                                   << "; 0 turns it off)");
  // What only the CPU backend does: refused on CUDA, never ignored.
  if (cfg.device == Device::cuda && cfg.sync_bn)
    CP_USER_ERROR("--sync-bn runs on the CPU backend only (on CUDA each rank's BatchNorm would "
                  "normalise with its own slice): drop it, or train with --device cpu");
  if (cfg.device == Device::cuda && cfg.nan_policy == "skip")
    CP_USER_ERROR("--nan-policy skip is only available on the CPU; CUDA runs stop instead");
}

void require_model_fits_data(const Graph& graph, const std::string& origin, int classes, int side,
                             const std::string& data) {
  const Shape in = graph.input_shape(1);
  if (in.c != kCifarChannels || in.h != side || in.w != side)
    CP_USER_ERROR(origin << " takes " << in.c << "x" << in.h << "x" << in.w << " inputs, but "
                         << data << "'s images are 3x" << side << "x" << side
                         << " (set its input line to 'input channels=3 height=" << side
                         << " width=" << side << "')");
  if (graph.output_shape(1).numel() != size_t(classes))
    CP_USER_ERROR(origin << " gives " << graph.output_shape(1).numel() << " outputs per image; "
                         << data << " needs " << classes
                         << " logits (its last layer's units=" << classes << ")");
}

namespace {
// The data a Trainer is handed must be what it was configured for.
void require_data_fits(const Dataset& ds, const TrainConfig& cfg) {
  if (ds.side != cfg.input.side)
    CP_USER_ERROR(ds.name << "'s images are " << ds.side << "x" << ds.side << " but the run takes "
                          << cfg.input.side << "x" << cfg.input.side);
  if (ds.classes != cfg.classes)
    CP_USER_ERROR(ds.name << " has " << ds.classes << " classes but the run trains "
                          << cfg.classes);
}
}  // namespace

// ---- trainer ----
struct Trainer::Impl {
  Buffer ema;  // the EMA of the parameters (--ema), on the graph's device
  Buffer raw;  // the trained parameters while the EMA's are in the graph for evaluation
  std::unique_ptr<StepBackend> backend;  // runs the steps: src/train/step.h
  std::unique_ptr<MetricsLog> metrics;
  std::string last_saved;  // path of the newest good checkpoint, for messages
  std::chrono::steady_clock::time_point epoch_start, last_report;
  // What the epoch's timing covers besides the batches trained since it (re)started: a
  // resumed epoch's earlier part, when its checkpoint timed it (older ones did not: then the
  // time, the rate and the ETA cover the resumed part alone).
  double epoch_seconds_before = 0;
  uint64_t epoch_untimed_batches = 0;
  size_t epoch_images_before = 0;
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
  // The backends compute each step's lr from the schedule's length: fixed before training.
  if (!is_resolved(cfg.optimizer.schedule))
    CP_FAIL("the lr schedule's length is not set: call resolve_schedule before training");
  if (cfg.nan_policy != "stop" && cfg.nan_policy != "skip")
    CP_USER_ERROR("--nan-policy must be stop or skip (got " << cfg.nan_policy << ")");
  validate_recipe(cfg);
  StepRecipe recipe;
  recipe.label_smoothing = cfg.label_smoothing;
  if (cfg.ema_decay > 0.f) {
    // Starts as the weights training starts from; a resume then restores its own (restore_ema).
    const size_t bytes = graph.num_params() * sizeof(float);
    impl_->ema = Buffer(graph.device(), bytes);
    if (cfg.eval_ema) impl_->raw = Buffer(graph.device(), bytes);
    copy_bytes(impl_->ema.get(), graph.device(), graph.params(), graph.device(), bytes);
    recipe.ema_decay = cfg.ema_decay;
    recipe.ema = impl_->ema.as<float>();
  }
  const Communicator& comm = world();
  // Each rank trains on its slice of every global batch of cfg.batch images.
  if (cfg.batch < comm.size())
    CP_USER_ERROR("a batch of " << cfg.batch << " cannot be split over " << comm.size()
                                << " ranks: use --batch " << comm.size() << " or more");
  if (batch_slice(size_t(cfg.batch), comm.size() - 1, comm.size()).size() >
      size_t(graph.max_batch()))
    CP_FAIL("batch larger than the graph was built for");
  if (graph.device() == Device::cuda) {
#ifdef CONVPOOL_HAVE_CUDA
    // Unresolved (callers without the data sets' sizes, e.g. benchmarks): pinned, which fits
    // any data set.
    impl_->backend = std::make_unique<cuda::TrainStepper>(
        graph, cfg.optimizer, recipe, cfg.input, cfg.seed, state.step, cfg.cuda_graph,
        cfg.data_placement == DataPlacement::device);
#else
    CP_USER_ERROR("this convpool binary was built without CUDA");
#endif
  } else {
    impl_->backend = make_cpu_step_backend(
        graph, cfg.optimizer, recipe, cfg.input, cfg.seed, cfg.nan_policy == "skip",
        [this](const char* what, const std::string& where) { non_finite(what, where); }, comm,
        cfg.sync_bn);
  }
  require_model_fits_data(graph, "the model", cfg.classes, cfg.input.side, "the data set");
  state_.seed = cfg.seed;
  state_.batch = cfg.batch;
  state_.optimizer = cfg.optimizer;
  state_.label_smoothing = cfg.label_smoothing;
  state_.ema_decay = cfg.ema_decay;
  state_.eval_ema = cfg.eval_ema;
  state_.input = cfg.input;
  state_.dataset = dataset_name(cfg.dataset);
  state_.data = cfg.data;
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

float* Trainer::ema_weights() const { return impl_->ema.as<float>(); }

namespace {
// While alive, the graph's parameters are the EMA's (for evaluation); the trained ones are
// put back when it dies, also when evaluation throws.
class EmaInGraph {
 public:
  EmaInGraph(Graph& graph, const Buffer& ema, Buffer& raw) : graph_(graph), raw_(raw) {
    copy_bytes(raw.get(), graph.device(), graph.params(), graph.device(), raw.bytes());
    copy_bytes(graph.params(), graph.device(), ema.get(), graph.device(), raw.bytes());
  }
  ~EmaInGraph() {
    copy_bytes(graph_.params(), graph_.device(), raw_.get(), graph_.device(), raw_.bytes());
  }
  EmaInGraph(const EmaInGraph&) = delete;
  EmaInGraph& operator=(const EmaInGraph&) = delete;

 private:
  Graph& graph_;
  Buffer& raw_;
};
}  // namespace

void Trainer::save(const std::string& reason) {
  if (cfg_.out_dir.empty()) return;
  impl_->backend->synchronize();  // the weights must be final before copying
  state_.epoch_seconds =
      state_.epoch_batches ? impl_->epoch_seconds_before + seconds_since(impl_->epoch_start) : 0;
  const std::string last = cfg_.out_dir + "/last.safetensors";
  const float* ema = impl_->ema.as<float>();
  save_checkpoint(last, graph_, cfg_.model_text, cfg_.pool_override, state_, ema);
  impl_->last_saved = last;
  if (reason == "best")
    save_checkpoint(cfg_.out_dir + "/best.safetensors", graph_, cfg_.model_text, cfg_.pool_override,
                    state_, ema);
  if (cfg_.keep > 0 && reason != "stop") {
    char name[64];
    std::snprintf(name, sizeof name, "/step-%010llu.safetensors",
                  static_cast<unsigned long long>(state_.step));
    save_checkpoint(cfg_.out_dir + name, graph_, cfg_.model_text, cfg_.pool_override, state_, ema);
    std::vector<fs::path> history;
    for (auto& e : fs::directory_iterator(cfg_.out_dir))
      if (e.path().filename().string().rfind("step-", 0) == 0 &&
          e.path().extension() == ".safetensors")
        history.push_back(e.path());
    std::sort(history.begin(), history.end());
    for (size_t i = 0; i + cfg_.keep < history.size(); ++i) fs::remove(history[i]);
  }
  if (observer_) observer_->on_checkpoint();
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
  p.seconds = impl_->epoch_seconds_before + seconds_since(impl_->epoch_start);
  p.timed_batches = state_.epoch_batches - impl_->epoch_untimed_batches;
  p.images_per_second =
      double(impl_->epoch_images_before + images_trained) / std::max(1e-9, p.seconds);
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

void Trainer::non_finite(const char* what, const std::string& where) {
  CP_USER_ERROR(
      "non-finite " << what << " at step " << state_.step << " (epoch " << state_.epoch + 1 << "), "
                    << where << "; "
                    << (impl_->last_saved.empty()
                            ? std::string("no checkpoint was written")
                            : "the last good checkpoint " + impl_->last_saved + " is untouched")
                    << "; " << cfg_.non_finite_advice);
}

EpochMetrics Trainer::train_epoch(const Dataset& train) {
  require_data_fits(train, cfg_);
  Region epoch_region(regions::epoch, Device::cpu);
  const auto t0 = std::chrono::steady_clock::now();
  impl_->epoch_start = impl_->last_report = t0;
  impl_->epoch_seconds_before = state_.epoch_seconds;
  const bool earlier_part_timed = state_.epoch_seconds > 0;
  impl_->epoch_untimed_batches = earlier_part_timed ? 0 : state_.epoch_batches;
  impl_->epoch_images_before =
      earlier_part_timed ? std::min<size_t>(state_.epoch_batches * cfg_.batch, train.size()) : 0;
  const auto order = epoch_order(train.size(), cfg_.seed, uint64_t(state_.epoch));
  StepBackend& backend = *impl_->backend;
  backend.begin_epoch(train, order.data(), uint64_t(state_.epoch),
                      state_.epoch_batches * uint64_t(cfg_.batch));
  const Communicator& comm = world();
  const int B = cfg_.batch;
  if (const size_t last = train.size() % size_t(B); last && last < size_t(comm.size()))
    CP_USER_ERROR("the last batch of the epoch holds " << last << " image(s), fewer than the "
                  << comm.size() << " ranks: choose --batch or --limit-train so that every "
                                    "batch has at least one image per rank");
  const uint64_t batches = (train.size() + B - 1) / B;
  EpochMetrics m;
  size_t images = 0;
  // Moves the backend's sums into the state; a step the device flagged non-finite fails the
  // run before anything is saved (its weights are unusable).
  const auto collect = [&] {
    const StepCounters c = backend.collect();
    if (c.first_bad_step)
      CP_USER_ERROR("non-finite loss or gradient at step "
                    << c.first_bad_step << " (epoch " << state_.epoch + 1 << "); "
                    << (impl_->last_saved.empty()
                            ? std::string("no checkpoint was written")
                            : "the last good checkpoint " + impl_->last_saved + " is untouched")
                    << "; try a lower --lr");
    state_.epoch_loss_sum += c.loss_sum;
    state_.epoch_correct += c.correct;
    m.data_wait_seconds += c.host_wait_seconds;
  };
  // A resumed epoch trains only the images after its saved position.
  for (size_t first = state_.epoch_batches * B; first < train.size(); first += B) {
    // The last batch may be partial: it is trained on, never dropped.
    const int n = int(std::min<size_t>(B, train.size() - first));
    const BatchSlice mine = batch_slice(size_t(n), comm.rank(), comm.size());
    const bool applied = backend.step(train, order.data() + first + mine.begin, int(mine.size()),
                                      state_.step + 1, n, uint32_t(mine.begin));
    ++state_.epoch_batches;
    images += n;
    if (applied) {
      ++state_.step;
    } else {
      ++m.skipped_batches;
    }
    if (backend.sums_on_host()) collect();
    if (progress_due(batches)) {
      const StepCounters c = backend.peek();  // on CUDA one sync, a few times a second at most
      report_progress(batches, train.size(), images, state_.epoch_loss_sum + c.loss_sum,
                      state_.epoch_correct + c.correct);
    }
    if (comm.distributed()) {
      // The ranks stop at the same step: a signal reaches them at different moments.
      double stop = stop_requested() ? 1 : 0;
      comm.allreduce_sum(&stop, 1);
      if (stop > 0 && !stop_requested()) request_stop();
    }
    if (stop_requested()) {
      collect();  // the partial epoch's sums go into the checkpoint, which then resumes exactly
      stop_and_save();
    }
    if (cfg_.save_every && state_.step % cfg_.save_every == 0 && applied) {
      collect();
      save("periodic");
    }
  }
  collect();
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
  m.seconds = impl_->epoch_seconds_before + seconds_since(t0);
  m.images_per_second = double(impl_->epoch_images_before + images) / m.seconds;
  m.lr = scheduled_lr(cfg_.optimizer, state_.step);
  ++state_.epoch;
  state_.epoch_batches = 0;
  state_.epoch_loss_sum = 0;
  state_.epoch_correct = 0;
  state_.epoch_seconds = 0;
  return m;
}

void tta_logits(StepBackend& backend, const Dataset& ds, const uint32_t* idx, int n,
                int classes, const std::vector<TtaView>& views, float* out) {
  const size_t values = size_t(n) * size_t(classes);
  std::fill(out, out + values, 0.f);
  for (const TtaView& view : views) {
    const float* logits = backend.eval_logits(ds, idx, n, view);
    for (size_t i = 0; i < values; ++i) out[i] += view.weight * logits[i];
  }
}

EvalResult Trainer::evaluate(const Dataset& test, const std::vector<TtaView>& views,
                             bool keep_logits) {
  if (views.empty()) CP_FAIL("evaluate: no test-time view");
  Region eval_region(regions::eval, Device::cpu);
  const Communicator& comm = world();
  if (comm.distributed()) share_rank0_buffers();
  std::optional<EmaInGraph> ema;
  if (impl_->ema.get() && cfg_.eval_ema) {
    impl_->backend->synchronize();  // the last step's update of both buffers is done
    ema.emplace(graph_, impl_->ema, impl_->raw);
    if (comm.distributed()) share_rank0_buffers();  // the EMA's BatchNorm statistics too
  }
  EvalResult r;
  r.predictions.resize(test.size());
  require_data_fits(test, cfg_);
  if (keep_logits) r.logits.assign(test.size() * size_t(cfg_.classes), 0.f);
  std::vector<uint32_t> order(test.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(i);
  const int B = graph_.max_batch();
  double loss_sum = 0;
  long correct = 0;
  // Each rank evaluates its slice of the test set; the sums and predictions are combined.
  const BatchSlice mine = batch_slice(test.size(), comm.rank(), comm.size());
  const int classes = cfg_.classes;
  std::vector<float> averaged(size_t(B) * size_t(classes));
  for (size_t first = mine.begin; first < mine.end; first += B) {
    const int n = int(std::min<size_t>(B, mine.end - first));
    tta_logits(*impl_->backend, test, order.data() + first, n, classes, views, averaged.data());
    const float* logits = averaged.data();
    if (keep_logits)
      std::copy(logits, logits + size_t(n) * size_t(classes),
                r.logits.begin() + long(first * size_t(classes)));
    const auto s =
        cpu::softmax_xent(n, classes, logits, test.labels.data() + first, nullptr, 0.f);
    loss_sum += s.loss;
    correct += s.correct;
    for (int i = 0; i < n; ++i) {
      int arg = 0;
      for (int k = 1; k < classes; ++k)
        if (logits[i * classes + k] > logits[i * classes + arg]) arg = k;
      r.predictions[first + i] = arg;
    }
  }
  if (comm.distributed()) {
    double sums[2] = {loss_sum, double(correct)};
    comm.allreduce_sum(sums, 2);
    loss_sum = sums[0];
    correct = long(sums[1]);
    const std::vector<int> part(r.predictions.begin() + long(mine.begin),
                                r.predictions.begin() + long(mine.end));
    comm.allgather(part.data(), int(part.size()), r.predictions.data());
    if (keep_logits) comm.allreduce_sum(r.logits.data(), r.logits.size());  // slices -> all
  }
  r.loss = loss_sum / double(test.size());
  r.accuracy = double(correct) / double(test.size());
  return r;
}

void Trainer::share_rank0_buffers() {
  // Every rank's parameters are the same (the same summed gradients, the same updates), but
  // each rank's BatchNorm running statistics come from its own slices unless --sync-bn: like
  // DDP, rank 0's are the model's, on every rank before it is evaluated or saved.
  const size_t begin = graph_.param_groups().trainable_end(), count = graph_.num_params() - begin;
  if (!count) return;
  impl_->backend->synchronize();
  std::vector<float> host(count);
  copy_bytes(host.data(), Device::cpu, graph_.params() + begin, graph_.device(),
             count * sizeof(float));
  world().broadcast(host.data(), count);
  copy_bytes(graph_.params() + begin, graph_.device(), host.data(), Device::cpu,
             count * sizeof(float));
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
  require_data_fits(train, cfg_);
  require_data_fits(test, cfg_);
  state_.class_names = train.class_names;
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
