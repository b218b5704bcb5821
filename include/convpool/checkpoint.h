// Checkpoints: a safetensors file holding every parameter (conv1.weight, ...), the optimizer
// state (optim.m.conv1.weight, ...) and, in __metadata__, the model text, the pooling
// override and the training state needed to resume exactly. See docs/checkpoints.md.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "convpool/data.h"
#include "convpool/epoch_metrics.h"
#include "convpool/graph.h"
#include "convpool/optim.h"
#include "convpool/safetensors.h"

namespace convpool {

// Version 2 adds a checksum over the header (metadata included); version 1 files, whose
// checksum covers the tensor data alone, are still read.
constexpr int kCheckpointVersion = 2;

// Where a run stands. Randomness is counter-based (Philox keyed by seed, counted by step and
// epoch), so seed + epoch + step is the whole RNG state.
struct TrainState {
  int epoch = 0;               // epochs fully completed
  uint64_t step = 0;           // optimizer steps taken
  uint64_t epoch_batches = 0;  // batches done in the current (unfinished) epoch
  double epoch_loss_sum = 0;   // running sums of the unfinished epoch
  uint64_t epoch_correct = 0;
  // Training time the unfinished epoch took before this checkpoint: a resumed epoch reports
  // its whole time, so a study's seconds per epoch survive interruptions (0 in older files).
  double epoch_seconds = 0;
  double best_accuracy = -1;
  uint64_t seed = 1;
  int batch = 32;
  OptimizerConfig optimizer;
  float label_smoothing = 0.f;  // TrainConfig's, as are the two below
  float ema_decay = 0.f;        // above 0: the file also holds ema.<param> tensors
  bool eval_ema = true;
  InputTransform input;  // evaluation must normalise as training did
  // How epochs were shuffled (kEpochOrderScheme in convpool/data.h); a checkpoint older than
  // the scheme says "fisher-yates", and cannot be resumed bit for bit.
  std::string epoch_order = kEpochOrderScheme;
  std::string dataset = "cifar10";  // dataset_name(): what the run trained and tested on
  // The classes' names in label order (the training set's); empty in checkpoints older than
  // image folders, whose data set's built-in names apply.
  std::vector<std::string> class_names;
  std::string data;  // image folders: the folder trained on, as the run named it
  // The finished epochs' metrics, epochs 1..epoch in order (trainers keep all of them; a
  // state made by hand may hold fewer): a resume rewrites metrics.csv from it, so the file
  // always agrees with the checkpoint it resumes from.
  std::vector<EpochMetrics> history;
};

// "after epoch 3, step 1234" or "in epoch 4 at batch 17, step 1251": where a checkpoint
// stands, said the same way by eval and by --resume.
std::string describe_position(const TrainState& state);


struct Checkpoint {
  int version = kCheckpointVersion;
  std::string model_text;
  std::string pool_override;
  TrainState state;
  SafetensorsFile file;
};

// "" for a current checkpoint; for an older format, a one-line note saying what it lacks.
std::string format_note(const Checkpoint& ckpt, const std::string& origin);

// `ema` (the graph's device, num_params floats; with state.ema_decay): saved as ema.<param>.
void save_checkpoint(const std::string& path, const Graph& graph, const std::string& model_text,
                     const std::string& pool_override, const TrainState& state,
                     const float* ema = nullptr);
// Reads and validates (CRC, version, metadata). Errors are one line naming the file.
Checkpoint load_checkpoint(const std::string& path);
Checkpoint decode_checkpoint(const std::string& bytes, const std::string& origin,
                             ChecksumPolicy checksums = ChecksumPolicy::verify);
// The checkpoint's EMA weights are stored as this prefix + the parameter's name.
constexpr const char* kCheckpointEmaPrefix = "ema.";
// Whether eval and export use the EMA's weights: `choice` "ema", "raw", or "auto" (the EMA's
// whenever the checkpoint holds them, from train --ema).
bool uses_ema_weights(const Checkpoint& ckpt, const std::string& choice);
// "ema (decay 0.99)" or "raw (as trained, not the EMA)": said beside what was evaluated.
std::string describe_weights(const Checkpoint& ckpt, bool ema);

// The model a checkpoint holds (its pooling override applied), built for `opts`, with its
// weights restored: what eval does with a checkpoint file.
// `ema_weights`: the EMA's weights (ema.<param>) instead of the trained ones.
std::unique_ptr<Graph> build_from_checkpoint(const Checkpoint& ckpt, const std::string& origin,
                                             const GraphOptions& opts, bool ema_weights = false);
// Copies weights (the EMA's with `ema_weights`, and, if asked, optimizer state) into graph;
// any missing, extra or mis-shaped tensor is a one-line error naming it.
void restore_graph(const Checkpoint& ckpt, const std::string& origin, Graph& graph,
                   bool with_optimizer_state, bool ema_weights = false);
// Copies the checkpoint's ema.<param> tensors into `ema` (num_params floats on the graph's
// device, laid out as the parameters): a resumed run's EMA.
void restore_ema(const Checkpoint& ckpt, const std::string& origin, const Graph& graph,
                 float* ema);

}  // namespace convpool
