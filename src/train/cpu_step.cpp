// The CPU backend of the training step: eager, with the loss sums on the host and the
// non-finite check before each update (src/train/step.h).
#include <cmath>

#include "cpu/loss.h"
#include "convpool/profile.h"
#include "step.h"

namespace convpool {

namespace {

bool all_finite(const float* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

class CpuStepBackend final : public StepBackend, StepParts {
 public:
  CpuStepBackend(Graph& graph, const OptimizerConfig& opt, const StepRecipe& recipe,
                 const InputTransform& input, uint64_t seed, bool skip_non_finite, NonFiniteHandler on_non_finite,
                 const Communicator& comm, bool sync_bn)
      : comm_(comm),
        sync_bn_(sync_bn && comm.distributed()),
        graph_(graph),
        opt_(opt),
        recipe_(recipe),
        input_(input),
        seed_(seed),
        skip_(skip_non_finite),
        on_non_finite_(std::move(on_non_finite)),
        slots_(optimizer_state_slots(opt)),
        labels_(size_t(graph.max_batch())) {}

  bool step(const Dataset& ds, const uint32_t* idx, int n, uint64_t step, int n_global,
            uint32_t first) override {
    ds_ = &ds, idx_ = idx, step_ = step, n_global_ = n_global, first_ = first;
    training_step(graph_, context(), *this, n);
    return applied_;
  }

  StepCounters collect() override {
    const StepCounters c = sums_;
    sums_ = {};
    return c;
  }
  StepCounters peek() override { return sums_; }
  bool sums_on_host() const override { return true; }

  const float* eval_logits(const Dataset& ds, const uint32_t* idx, int n,
                           const TtaView& view) override {
    view_to_float(ds, idx, n, graph_.input(n).data, input_, view);
    graph_.forward(StepContext{Device::cpu, false, seed_, step_, nullptr}, n);
    return graph_.output(n).data;
  }
  void synchronize() override {}

 private:
  int classes() const { return int(graph_.output_shape(1).numel()); }  // logits per image
  // StepParts, in the order training_step calls them.
  StepContext context() const {
    StepContext ctx{Device::cpu, true, seed_, step_, nullptr};
    ctx.sample_offset = first_;
    ctx.sync_stats = sync_bn_ ? &comm_ : nullptr;
    return ctx;
  }

  void input(int n) override {
    Region region(regions::input, Device::cpu);
    images_to_float(*ds_, idx_, n, graph_.input(n).data, input_, true, seed_, step_, first_);
    for (int i = 0; i < n; ++i) labels_[size_t(i)] = ds_->labels[idx_[i]];
    n_ = n;
  }
  void loss(int n) override {
    Region region(regions::loss, Device::cpu);
    last_ = cpu::softmax_xent(n, classes(), graph_.output(n).data, labels_.data(),
                              graph_.output_grad(n).data, 1.f / float(n_global_),
                              recipe_.label_smoothing);
  }
  void update() override {
    Region region(regions::optimizer, Device::cpu);  // the sums, the finite check and the update
    // Data-parallel: the gradients of every rank's slice and the step's sums, summed. Each
    // rank then decides the same way and applies the same update. A world of one: no-ops.
    comm_.allreduce_sum(graph_.grads(), graph_.param_groups().trainable_end());
    double sums[2] = {last_.loss, double(last_.correct)};
    comm_.allreduce_sum(sums, 2);
    last_.loss = sums[0];
    last_.correct = int(sums[1]);
    applied_ = std::isfinite(last_.loss) && all_finite(graph_.grads(), graph_.num_params());
    if (!applied_ && !skip_)
      on_non_finite_(std::isfinite(last_.loss) ? "gradient" : "loss", locate_non_finite());
    if (!applied_) return;
    optimizer_step(Device::cpu, opt_, step_, graph_.param_groups(), graph_.params(),
                   graph_.grads(), slots_ > 0 ? graph_.optimizer_state(0) : nullptr,
                   slots_ > 1 ? graph_.optimizer_state(1) : nullptr);
    if (recipe_.ema)
      ema_update(Device::cpu, recipe_.ema, graph_.params(), graph_.num_params(), recipe_.ema_decay);
    sums_.loss_sum += last_.loss;
    sums_.correct += uint64_t(last_.correct);
  }

  // Runs the step's forward and backward again (the same draws: they are keyed by the step),
  // checking each node's output, then each input gradient, as soon as it is written: the
  // activation memory is shared between tensors, so the finished step no longer holds them.
  std::string locate_non_finite() {
    const StepContext ctx = context();
    if (auto i = graph_.forward_until_non_finite(ctx, n_))
      return "first in the output of layer " + graph_.layer(*i).name();
    cpu::softmax_xent(n_, classes(), graph_.output(n_).data, labels_.data(),
                      graph_.output_grad(n_).data, 1.f / float(n_global_), recipe_.label_smoothing);
    if (auto j = graph_.backward_until_non_finite(ctx, n_))
      return "first in the input gradient of layer " + graph_.layer(*j).name();
    return "none found in activations or gradients";
  }

  const Communicator& comm_;
  bool sync_bn_;
  Graph& graph_;
  OptimizerConfig opt_;
  StepRecipe recipe_;
  InputTransform input_;
  uint64_t seed_;
  bool skip_;
  NonFiniteHandler on_non_finite_;
  int slots_;
  std::vector<uint8_t> labels_;
  const Dataset* ds_ = nullptr;
  const uint32_t* idx_ = nullptr;
  uint64_t step_ = 0;
  int n_ = 0, n_global_ = 1;
  uint32_t first_ = 0;
  cpu::LossSums last_{};
  bool applied_ = false;
  StepCounters sums_;
};

}  // namespace

std::unique_ptr<StepBackend> make_cpu_step_backend(Graph& graph, const OptimizerConfig& opt,
                                                   const StepRecipe& recipe,
                                                   const InputTransform& input, uint64_t seed,
                                                   bool skip_non_finite,
                                                   NonFiniteHandler on_non_finite,
                                                   const Communicator& comm, bool sync_bn) {
  return std::make_unique<CpuStepBackend>(graph, opt, recipe, input, seed, skip_non_finite,
                                          std::move(on_non_finite), comm, sync_bn);
}

}  // namespace convpool
