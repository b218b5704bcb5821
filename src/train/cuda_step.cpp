#include "cuda_step.h"

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "convpool/buffer.h"
#include "convpool/distributed.h"
#include "convpool/profile.h"
#include "cuda/check.h"
#include "cuda/context.h"
#include "cuda/device_data.h"
#include "cuda/nccl_comm.h"
#include "cuda/pinned.h"
#include "kernels/input.cuh"
#include "kernels/loss.cuh"
#include "kernels/optim.cuh"

namespace convpool::cuda {

namespace {
constexpr int kSlots = 2;  // staging slots: one being copied while the other is computed

// Device accumulators of one epoch, read once at its end.
struct Counters {
  double loss_sum;
  unsigned long long correct;
  unsigned long long first_bad_step;
};
}  // namespace

struct TrainStepper::Impl {
  Graph& graph;
  OptimizerConfig opt;
  StepRecipe recipe;
  InputTransform input;
  uint64_t seed;
  bool use_graph;
  int batch;
  Stream copy_stream;
  Buffer scalars{Device::cuda, sizeof(StepScalars)};
  Buffer counters{Device::cuda, sizeof(Counters)};
  Buffer sample_loss;  // per-sample losses of a batch, summed in a fixed order (kernels/loss.cu)
  std::vector<float> logits;  // evaluation logits copied back per batch
  struct Slot {
    PinnedBuffer host_pixels, host_labels;
    Buffer pixels, labels;
    Event copied, free;
    cudaGraphExec_t exec = nullptr;  // the captured full-batch step reading this slot
    // The place in the global batch that `exec` baked in: a data-parallel rank's slice of the
    // last, partial batch can have the full slice's size at another place.
    uint32_t exec_first = 0;
    int exec_n_global = 0;
  };
  std::array<Slot, kSlots> slots;
  // The device placement: the data sets in GPU memory, the epoch's order, and the position of
  // the next global batch in it (read and moved by the captured step).
  bool resident;
  ResidentDataset train_data, eval_data;
  DeviceEpochOrder order;
  Buffer cursor{Device::cuda, sizeof(uint64_t)};
  Buffer eval_index;               // evaluation: the batch's image indices, copied per batch
  bool order_checked = false;      // the first epoch's device order was compared with the CPU's
  std::unique_ptr<NcclComm> nccl;  // data-parallel jobs only
  uint64_t queued = 0;
  bool warmed_up = false;  // a full batch has run eagerly: capture is safe from now on
  double host_wait = 0;
  // The running step's place in its global batch (data-parallel slices; the whole batch in a
  // single process), baked into a captured graph: full batches always have the same.
  int n_global = 1;
  uint32_t first = 0;

  Impl(Graph& g, const OptimizerConfig& o, const StepRecipe& r, const InputTransform& in,
       uint64_t s, bool graphs, bool on_device)
      // CONVPOOL_CUDA_SYNC=1 synchronises after every launch, which stream capture forbids.
      : graph(g),
        opt(o),
        recipe(r),
        input(in),
        seed(s),
        use_graph(graphs && !sync_after_launch()),
        batch(g.max_batch()),
        resident(on_device) {
    for (auto& slot : slots) {
      slot.host_pixels = PinnedBuffer(size_t(batch) * image_bytes());
      slot.host_labels = PinnedBuffer(size_t(batch));
      slot.pixels = Buffer(Device::cuda, size_t(batch) * image_bytes());
      slot.labels = Buffer(Device::cuda, size_t(batch));
    }
    sample_loss = Buffer(Device::cuda, sizeof(double) * size_t(batch));
    eval_index = Buffer(Device::cuda, sizeof(uint32_t) * size_t(batch));
    logits.resize(size_t(batch) * size_t(classes()));
  }
  ~Impl() { drop_graphs(); }

  // Forgets the captured steps (their baked pointers are stale): the next full batch runs
  // eagerly, then is captured again.
  void drop_graphs() {
    for (auto& slot : slots)
      if (slot.exec) {
        cudaGraphExecDestroy(slot.exec);
        slot.exec = nullptr;
      }
    warmed_up = false;
  }

  cudaStream_t stream() const { return context().stream(); }
  // Waits for the compute stream; in a data-parallel job through the communicator, which
  // turns a dead peer's hang into an error naming this rank.
  void wait() {
    if (nccl)
      nccl->synchronize(stream());
    else
      CP_CUDA_CHECK(cudaStreamSynchronize(stream()));
  }
  int classes() const { return int(graph.output_shape(1).numel()); }  // logits per image
  size_t image_bytes() const {  // one uint8 image of the input pipeline's side
    return size_t(kCifarChannels) * size_t(input.side) * size_t(input.side);
  }
  StepScalars* step_scalars() const { return scalars.as<StepScalars>(); }
  Counters* device_counters() const { return counters.as<Counters>(); }

  void reset_counters() {
    const Counters zero{0.0, 0, ~0ull};
    CP_CUDA_CHECK(
        cudaMemcpyAsync(device_counters(), &zero, sizeof zero, cudaMemcpyHostToDevice, stream()));
    wait();  // `zero` lives on this stack frame
  }

  // The parts of training_step (src/train/step.h) on the device, for the staged slot.
  struct Parts final : StepParts {
    Impl& m;
    const Slot& slot;
    Parts(Impl& impl, const Slot& s) : m(impl), slot(s) {}
    void input(int n) override {
      cudaStream_t s = m.stream();
      Region region(regions::input, Device::cuda, s);
      begin_step(m.step_scalars(), m.opt, s);
      if (m.resident) {
        // The batch gather is part of the step (and of its graph): no host work per step.
        gather_input_to_float(m.train_data.images(), m.train_data.labels(), m.order.get(),
                              m.cursor.as<uint64_t>(), m.graph.input(n).data,
                              slot.labels.as<uint8_t>(), n, m.input, true, m.seed,
                              &m.step_scalars()->step, s, m.first);
        advance_cursor(m.cursor.as<uint64_t>(), uint32_t(m.n_global), s);
      } else {
        input_to_float(slot.pixels.as<uint8_t>(), m.graph.input(n).data, n, m.input, true, m.seed,
                       &m.step_scalars()->step, s, m.first);
      }
    }
    void loss(int n) override {
      cudaStream_t s = m.stream();
      Region region(regions::loss, Device::cuda, s);
      Counters* c = m.device_counters();
      softmax_xent(n, m.classes(), m.graph.output(n).data, slot.labels.as<uint8_t>(),
                   m.graph.output_grad(n).data, 1.f / float(m.n_global), m.recipe.label_smoothing,
                   &c->loss_sum, m.sample_loss.as<double>(), &c->correct, s, m.step_scalars(),
                   &c->first_bad_step);
    }
    void update() override {
      cudaStream_t s = m.stream();
      const int slots_used = optimizer_state_slots(m.opt);
      Region region(regions::optimizer, Device::cuda, s);
      // Data-parallel: every rank's gradients summed (the loss is scaled by the global batch).
      if (m.nccl) m.nccl->allreduce_sum(m.graph.grads(), m.graph.param_groups().trainable_end(), s);
      optimizer_update(m.opt, m.graph.param_groups(), m.step_scalars(), m.graph.params(),
                       m.graph.grads(), slots_used > 0 ? m.graph.optimizer_state(0) : nullptr,
                       slots_used > 1 ? m.graph.optimizer_state(1) : nullptr, s,
                       &m.device_counters()->first_bad_step);
      if (m.recipe.ema)
        ema_update(m.recipe.ema, m.graph.params(), m.graph.num_params(), m.recipe.ema_decay, s,
                   &m.device_counters()->first_bad_step);
    }
  };

  // Everything one training step launches, in order, on the compute stream.
  void launch_step(const Slot& slot, int n) {
    StepContext ctx;
    ctx.device = Device::cuda;
    ctx.training = true;
    ctx.seed = seed;
    ctx.stream = stream();
    ctx.device_step = &step_scalars()->step;
    ctx.sample_offset = first;
    Parts parts(*this, slot);
    training_step(graph, ctx, parts, n);
  }

  void capture(Slot& slot) {
    cudaStream_t s = stream();
    CP_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    try {
      launch_step(slot, batch);
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(s, &broken);  // leave the stream usable before reporting
      if (broken) cudaGraphDestroy(broken);
      throw;
    }
    cudaGraph_t g = nullptr;
    CP_CUDA_CHECK(cudaStreamEndCapture(s, &g));
    const cudaError_t err = cudaGraphInstantiate(&slot.exec, g, 0);
    cudaGraphDestroy(g);
    slot.exec_first = first;
    slot.exec_n_global = n_global;
    if (err != cudaSuccess)
      CP_FAIL("instantiating the training step's CUDA Graph failed: " << cudaGetErrorString(err)
                                                                      << " (try --no-graph)");
  }

  // Stages images idx[0..n) and labels in the slot and starts their copy to the device.
  void stage(Slot& slot, const Dataset& ds, const uint32_t* idx, int n, cudaStream_t copy) {
    const auto t0 = std::chrono::steady_clock::now();
    {
      Region region(regions::data_wait, Device::cpu);
      CP_CUDA_CHECK(cudaEventSynchronize(slot.free.get()));  // the GPU is done with the slot
    }
    host_wait += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (ds.image_bytes() != image_bytes())
      CP_USER_ERROR(ds.name << "'s images are " << ds.side << "x" << ds.side
                            << " but the model takes " << input.side << "x" << input.side);
    uint8_t* px = slot.host_pixels.as<uint8_t>();
    uint8_t* lb = slot.host_labels.as<uint8_t>();
    for (int i = 0; i < n; ++i) {
      std::memcpy(px + size_t(i) * image_bytes(), ds.image(idx[i]), image_bytes());
      lb[i] = ds.labels[idx[i]];
    }
    CP_CUDA_CHECK(cudaMemcpyAsync(slot.pixels.get(), px, size_t(n) * image_bytes(),
                                  cudaMemcpyHostToDevice, copy));
    CP_CUDA_CHECK(cudaMemcpyAsync(slot.labels.get(), lb, size_t(n), cudaMemcpyHostToDevice, copy));
    CP_CUDA_CHECK(cudaEventRecord(slot.copied.get(), copy));
  }
};

TrainStepper::TrainStepper(Graph& graph, const OptimizerConfig& opt, const StepRecipe& recipe,
                           const InputTransform& input, uint64_t seed, uint64_t start_step,
                           bool use_graph, bool resident)
    : impl_(std::make_unique<Impl>(graph, opt, recipe, input, seed, use_graph, resident)) {
  validate(input);
  CP_CHECK(graph.device() == Device::cuda, "TrainStepper needs a graph built on cuda");
  // CONVPOOL_NCCL=1 runs the all-reduce in a world of one too: scripts/gpu-check's test of the
  // NCCL path on a single GPU.
  const char* force = std::getenv("CONVPOOL_NCCL");
  if (world().distributed() || (force && std::string(force) == "1"))
    impl_->nccl = std::make_unique<NcclComm>(world());
  set_step(impl_->step_scalars(), start_step, impl_->stream());
  impl_->reset_counters();
}

TrainStepper::~TrainStepper() {
  // No kernel may outlive the buffers. redundant-sync: cudaFree and cudaFreeHost may
  // synchronise the device themselves (they do on the emulator); this does not rely on it.
  if (impl_) cudaStreamSynchronize(impl_->stream());
}

bool TrainStepper::pinned() const { return impl_->slots[0].host_pixels.pinned(); }

void TrainStepper::begin_epoch(const Dataset& train, const uint32_t* order, uint64_t epoch,
                               uint64_t position) {
  Impl& m = *impl_;
  if (!m.resident) return;
  m.wait();  // no queued step still reads the old order
  const bool data_moved = m.train_data.hold(train, m.stream());
  if (m.order.make(train.size(), m.seed, epoch, m.stream()) || data_moved) m.drop_graphs();
  if (!m.order_checked) {
    // The GPU's sort against the CPU's once per run: the placements must train on the same
    // batches (CI checks this on the CPU through Thrust's own systems; this is the GPU).
    if (const size_t at = m.order.first_difference(order, train.size()); at != train.size())
      CP_FAIL("the epoch order made on the GPU differs from the CPU's at position "
              << at << " of " << train.size() << " (epoch " << epoch + 1 << ")");
    m.order_checked = true;
  }
  // Stream-ordered, and waited for: `position` lives on this stack frame.
  CP_CUDA_CHECK(cudaMemcpyAsync(m.cursor.get(), &position, sizeof position, cudaMemcpyHostToDevice,
                                m.stream()));
  m.wait();
}

bool TrainStepper::step(const Dataset& ds, const uint32_t* idx, int n, uint64_t, int n_global,
                        uint32_t first) {
  Impl& m = *impl_;
  m.n_global = n_global;
  m.first = first;
  // The device placement stages nothing: one slot (its labels buffer and its graph) serves.
  Impl::Slot& slot = m.slots[m.resident ? 0 : m.queued++ % kSlots];
  if (!m.resident) {
    m.stage(slot, ds, idx, n, m.copy_stream.get());
    CP_CUDA_CHECK(cudaStreamWaitEvent(m.stream(), slot.copied.get(), 0));
  }
  if (m.use_graph && n == m.batch && m.warmed_up) {
    if (slot.exec && (slot.exec_first != first || slot.exec_n_global != n_global)) {
      m.launch_step(slot, n);  // a full-size slice elsewhere in a partial global batch
      // redundant-sync: only the last, partial global batch of an epoch comes here, and the
      // epoch's collect() waits for the stream before the slot is staged again.
      CP_CUDA_CHECK(cudaEventRecord(slot.free.get(), m.stream()));
      return true;
    }
    if (!slot.exec) m.capture(slot);
    CP_CUDA_CHECK(cudaGraphLaunch(slot.exec, m.stream()));
  } else if (m.use_graph && n == m.batch) {
    // The first full batch runs eagerly, so that every library's
    // first-call setup (cuDNN and cuBLAS plans, lazy module loading, allocations) happens
    // outside stream capture; the batches after it are captured and replayed.
    m.launch_step(slot, n);
    m.warmed_up = true;
  } else {
    m.launch_step(slot, n);  // the last, partial batch (or --no-graph) runs eagerly
  }
  CP_CUDA_CHECK(cudaEventRecord(slot.free.get(), m.stream()));
  return true;  // a non-finite step is flagged on the device and reported by collect()
}

StepCounters TrainStepper::peek() {
  impl_->wait();  // first: a copy queued behind a hung collective would never return
  Counters c{};
  // Into pageable memory, which CUDA may copy asynchronously too: waited for.
  CP_CUDA_CHECK(cudaMemcpyAsync(&c, impl_->device_counters(), sizeof c, cudaMemcpyDeviceToHost,
                                impl_->stream()));
  CP_CUDA_CHECK(cudaStreamSynchronize(impl_->stream()));
  StepCounters out;
  out.loss_sum = c.loss_sum;
  out.correct = c.correct;
  out.first_bad_step = c.first_bad_step == ~0ull ? 0 : c.first_bad_step;
  out.host_wait_seconds = impl_->host_wait;
  return out;
}

StepCounters TrainStepper::collect() {
  StepCounters out = peek();
  // Each rank's device sums cover its slices: the job's are their sum (collect is called at
  // the same step on every rank; peek, for progress, stays local).
  double sums[2] = {out.loss_sum, double(out.correct)};
  world().allreduce_sum(sums, 2);
  out.loss_sum = sums[0];
  out.correct = uint64_t(sums[1]);
  impl_->reset_counters();
  impl_->host_wait = 0;
  return out;
}

const float* TrainStepper::eval_logits(const Dataset& ds, const uint32_t* idx, int n,
                                       const TtaView& view) {
  float* logits = impl_->logits.data();
  Impl& m = *impl_;
  Impl::Slot& slot = m.slots[m.queued++ % kSlots];
  cudaStream_t s = m.stream();
  if (m.resident) {
    // The evaluation set is uploaded once too; only the batch's indices travel.
    m.eval_data.hold(ds, s);  // (no captured graph reads the evaluation set)
    // eval_index is free: every call ends by synchronising the stream.
    CP_CUDA_CHECK(cudaMemcpyAsync(m.eval_index.get(), idx, sizeof(uint32_t) * size_t(n),
                                  cudaMemcpyHostToDevice, s));
    gather_input_to_float(m.eval_data.images(), m.eval_data.labels(), m.eval_index.as<uint32_t>(),
                          nullptr, m.graph.input(n).data, slot.labels.as<uint8_t>(), n, m.input,
                          false, m.seed, &m.step_scalars()->step, s, 0, view);
  } else {
    m.stage(slot, ds, idx, n, m.stream());
    input_to_float(slot.pixels.as<uint8_t>(), m.graph.input(n).data, n, m.input, false, m.seed,
                   &m.step_scalars()->step, s, 0, view);
  }
  StepContext ctx;
  ctx.device = Device::cuda;
  ctx.training = false;
  ctx.seed = m.seed;
  ctx.stream = s;
  ctx.device_step = &m.step_scalars()->step;
  m.graph.forward(ctx, n);
  CP_CUDA_CHECK(cudaMemcpyAsync(logits, m.graph.output(n).data,
                                sizeof(float) * size_t(n) * size_t(m.classes()),
                                cudaMemcpyDeviceToHost, s));
  // redundant-sync: the synchronisation below also frees the slot; the record keeps its free
  // event current for the next training step's stage() all the same.
  CP_CUDA_CHECK(cudaEventRecord(slot.free.get(), s));
  CP_CUDA_CHECK(cudaStreamSynchronize(s));  // the logits, the indices and the slot's copies
  return logits;
}

void TrainStepper::synchronize() { impl_->wait(); }

}  // namespace convpool::cuda
