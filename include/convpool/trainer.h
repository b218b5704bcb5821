// Trainer: runs epochs of shuffled mini-batches through a Graph, evaluates on the test set
// after each epoch, prints a Keras-style line, appends it to the run's metrics file, and
// saves checkpoints (last, best, and every N steps). Stops cleanly on SIGINT/SIGTERM and on
// non-finite values.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "convpool/checkpoint.h"
#include "convpool/data.h"
#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/optim.h"

namespace convpool {

// Where a CUDA run keeps the data set. `pinned`: in host memory, each batch staged
// through pinned buffers and copied while the previous batch computes (any data set size).
// `device`: uploaded to GPU memory once; the epoch order is made there and each step gathers
// and augments its batch on the device, inside the captured step. `automatic`: device when
// the training and test sets fit in kResidentFraction of the free GPU memory, else pinned.
enum class DataPlacement { automatic, pinned, device };
constexpr double kResidentFraction = 0.25;
const char* data_placement_name(DataPlacement p);  // "auto", "pinned", "device"
// The CLI's names; a one-line error naming the choices otherwise.
DataPlacement parse_data_placement(const std::string& name);
// `requested` made concrete for a run on `device` whose data sets hold `bytes` in all:
// automatic becomes device or pinned (the CPU keeps its data in host memory: pinned); device
// placement on the CPU is a one-line error.
DataPlacement resolve_data_placement(DataPlacement requested, Device device, size_t bytes);

struct TrainConfig {
  int epochs = 10;
  int batch = 32;
  uint64_t seed = 1;
  Device device = Device::cpu;
  OptimizerConfig optimizer;
  // The training loss's target: (1 - eps) onehot + eps / classes (kernels/loss_math.cuh);
  // reported training losses include it, test losses do not.
  float label_smoothing = 0.f;
  // Above 0: an exponential moving average of the whole parameter buffer (weights and
  // BatchNorm's running statistics, as timm's ModelEmaV2 averages the whole state), updated
  // after every step: ema = decay * ema + (1 - decay) * weights. Saved in checkpoints.
  float ema_decay = 0.f;
  bool eval_ema = true;       // with ema_decay: evaluate, and pick best.safetensors, with the EMA
  InputTransform input;       // normalisation; crop/flip of training batches
  std::string out_dir;        // metrics.csv and checkpoints go here; empty: nothing written
  std::string model_text;     // saved in checkpoints
  std::string pool_override;  // saved in checkpoints
  uint64_t save_every = 0;    // also save last.safetensors every N steps (0: per epoch only)
  int keep = 0;               // keep the N newest step-NNN.safetensors history files
  std::string nan_policy = "stop";  // "stop" or "skip" (skip the update of that batch; CPU)
  // The end of a non-finite loss's message: what the command that trains can change.
  std::string non_finite_advice = "try a lower --lr or --nan-policy skip";
  bool cuda_graph = true;  // CUDA: replay full batches as a captured CUDA Graph
  // CUDA: where the data set lives. `convpool train` resolves automatic with the data sets'
  // sizes (resolve_data_placement); a Trainer given automatic uses pinned.
  DataPlacement data_placement = DataPlacement::automatic;
  // Data-parallel runs (convpool/distributed.h): BatchNorm normalises with the statistics of
  // the whole global batch rather than each rank's slice.
  bool sync_bn = false;
  DatasetKind dataset = DatasetKind::cifar10;  // saved in checkpoints
  // The data set's classes: the model must give this many logits (and its images must be
  // input.side wide).
  int classes = kCifarClasses;
  std::string data;  // image folders: the folder, saved in checkpoints for eval to find
};

// Where an epoch stands, for progress displays.
struct BatchProgress {
  int epoch = 0, epochs = 0;        // 1-based epoch being trained, of `epochs`
  uint64_t batch = 0, batches = 0;  // batches done in this epoch, of `batches`
  double loss = 0, accuracy = 0;    // running means over the batches done
  // Since this epoch began, a resumed epoch's earlier part included when its checkpoint timed
  // it (older checkpoints did not: then since the resume), over `timed_batches` batches.
  double seconds = 0;
  uint64_t timed_batches = 0;
  double images_per_second = 0;
};

// Receives progress. The trainer prints nothing itself; the CLI's reporter draws bars and
// lines. on_batch is called at most every batch_interval_seconds(): on CUDA each call reads
// the device counters (one sync), so the interval bounds how often training syncs.
class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual double batch_interval_seconds() const { return 0.25; }
  virtual void on_batch(const BatchProgress&) {}
  virtual void on_epoch(const EpochMetrics&, int /*epochs*/) {}
  virtual void on_checkpoint() {}  // after each save of the run's checkpoints
};

// One-line errors for recipe values out of range (label smoothing, EMA decay); the Trainer
// checks them too, the CLI before it reads any data.
void validate_recipe(const TrainConfig& cfg);

// Throws a one-line error naming both numbers unless the graph takes the data set's images
// (3 x side x side) and gives its `classes` logits. `origin` names the model in the message,
// `data` the data set ("CIFAR-10", "the image folder ...").
void require_model_fits_data(const Graph& graph, const std::string& origin,
                             int classes = kCifarClasses, int side = kCifarSide,
                             const std::string& data = "CIFAR-10");

// "epoch 3/10  loss 1.2345  acc 0.5678  test_loss ...  12.3s  4056 img/s"
std::string format_epoch_line(const EpochMetrics& m, int epochs);

struct EvalResult {
  double loss = 0, accuracy = 0;
  std::vector<int> predictions;  // per test image
  std::vector<float> logits;     // per test image, one per class (averaged over the views;
                                 // filled when evaluate was asked to keep them)
};

// Thrown when a stop signal ended training after a checkpoint was saved.
class Interrupted : public Error {
 public:
  using Error::Error;
};

// SIGINT/SIGTERM: the first asks the trainer to finish the step, save and exit; a second
// SIGINT exits at once (checkpoints are written atomically, so the last one stays intact).
void install_stop_handlers();
bool stop_requested();
void request_stop();         // what the handler does; also for tests
void clear_stop_requests();  // for tests

class Trainer {
 public:
  // `state` is where training starts: default for a fresh run, a checkpoint's for --resume.
  // `observer` (optional, not owned) receives progress and epoch results.
  Trainer(Graph& graph, const TrainConfig& cfg, const TrainState& state = {},
          TrainObserver* observer = nullptr);
  ~Trainer();
  // Runs the remaining epochs; returns the metrics of each epoch run here.
  std::vector<EpochMetrics> fit(const Dataset& train, const Dataset& test);
  // Test loss and accuracy of the mean logits over `views` (test-time augmentation, tta_views;
  // the default is the images as they are).
  // `keep_logits`: fill EvalResult::logits (predict); training's evaluations leave it empty.
  EvalResult evaluate(const Dataset& test, const std::vector<TtaView>& views = {TtaView{}},
                      bool keep_logits = false);
  const TrainState& state() const { return state_; }
  // The EMA of the parameters (num_params floats on the graph's device), or null without
  // ema_decay: a resume restores it from its checkpoint (restore_ema).
  float* ema_weights() const;
  // Epoch (0-based) of training, from state().epoch_batches on. Saves as configured.
  EpochMetrics train_epoch(const Dataset& train);

 private:
  struct Impl;
  void save(const std::string& reason);
  void share_rank0_buffers();  // data-parallel: rank 0's non-trainable tensors to every rank
  // A non-finite loss or gradient under --nan-policy stop: `where` it first appeared.
  [[noreturn]] void non_finite(const char* what, const std::string& where);
  [[noreturn]] void stop_and_save();  // saves last.safetensors, throws Interrupted
  // Progress: due when there is an observer and its interval has passed (or the epoch ended);
  // only then do callers gather the running sums (a device read on CUDA) and report them.
  bool progress_due(uint64_t batches);
  void report_progress(uint64_t batches, size_t train_size, size_t images_trained, double loss_sum,
                       uint64_t correct);
  Graph& graph_;
  TrainConfig cfg_;
  TrainState state_;
  std::unique_ptr<Impl> impl_;
  TrainObserver* observer_;
};

}  // namespace convpool
