// Layer: the unit every op implements. A layer parses its own arguments, infers its output
// shape at build time, declares the parameters and scratch it needs, and runs forward and
// backward on whichever device its tensors live on.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "convpool/model.h"
#include "convpool/tensor.h"

namespace convpool {

class Communicator;

// Per-step facts every layer may need. `stream` is a cudaStream_t for CUDA runs.
struct StepContext {
  Device device = Device::cpu;
  bool training = true;
  uint64_t seed = 0;
  uint64_t step = 0;  // optimizer step: drives per-step randomness (stochastic/mixed pooling)
  void* stream = nullptr;
  // CUDA runs: the step counter in device memory. Kernels read it there, so a captured CUDA
  // Graph replays with the current step rather than the one it was captured with.
  const uint64_t* device_step = nullptr;
  // Data-parallel runs: the position of this rank's first sample in the step's global batch.
  // Per-element draws (stochastic pooling, dropout) add it to their index, so they do not
  // depend on the number of ranks.
  uint64_t sample_offset = 0;
  // Synchronised BatchNorm (--sync-bn): sums the batch statistics over the ranks. Null: each
  // rank normalises with its own slice's statistics, as PyTorch's DDP does by default.
  const Communicator* sync_stats = nullptr;
};

// How a parameter starts. fan_in/fan_out are those of the owning layer (conv: C*KH*KW and
// OC*KH*KW). dirac: the identity convolution (1 at the kernel centre of output channel o for
// input channel o mod C), so a block starts as a pass-through; from_data: left to the layer's
// init_from_data hook, called with a batch of real inputs (Graph::init_from_data).
enum class Init { glorot_uniform, he_normal, he_uniform, zeros, ones, constant, dirac, from_data };
const char* init_name(Init init);
// "glorot", "he_normal", "he_uniform", "zeros", "ones", "dirac"; a one-line error otherwise.
Init parse_init(const std::string& name, const LayerArgs& args);

// trainable: updated by the optimizer; frozen: a parameter the optimizer leaves alone (saved,
// counted as a parameter); buffer: state that is not a parameter (BatchNorm running
// statistics), written by its layer, saved in checkpoints, not counted in parameter totals.
enum class ParamKind { trainable, frozen, buffer };
const char* param_kind_name(ParamKind kind);

struct ParamDecl {
  std::string suffix;  // "weight", "bias", ...: the full name is "<layer>.<suffix>"
  Shape shape;         // PyTorch layout: conv [OC,C,KH,KW], dense [OUT,IN,1,1], bias [N,1,1,1]
  Init init = Init::zeros;
  int fan_in = 0, fan_out = 0;
  float value = 0.f;  // for Init::constant
  int rank = 4;       // dimensions in checkpoints: conv weight 4, dense weight 2, bias 1
  ParamKind kind = ParamKind::trainable;
  // Multipliers of the learning rate and the weight decay. The standard recipes decay weights
  // only: biases and normalisation parameters declare wd_mult 0.
  float lr_mult = 1.f, wd_mult = 1.f;
};

// A small case an op must run: a model-file line and the per-sample shapes of its inputs.
// The registry-walking suite (tests/test_op_registry.cpp) builds, gradient-checks, saves and
// reloads every example of every op.
struct OpExample {
  std::string line;
  std::vector<Shape> inputs;
  float lo = -1.f, hi = 1.f;  // the range of the random inputs (stochastic pooling: >= 0)
};

class Layer {
 public:
  explicit Layer(LayerSpec spec) : spec_(std::move(spec)) {}
  virtual ~Layer() = default;

  const std::string& name() const { return spec_.name; }
  const std::string& type() const { return spec_.type; }
  const LayerSpec& spec() const { return spec_; }
  // Position in the graph; also the layer's key for per-layer random streams.
  uint32_t index() const { return index_; }
  void set_index(uint32_t i) { index_ = i; }

  // Build time. `in` holds the per-sample shapes (n = 1) of the inputs, in the order the model
  // names them. Throws with the layer name on bad shapes. One-input ops implement
  // infer_shape(Shape) instead; the default here refuses any other number of inputs.
  virtual Shape infer(std::span<const Shape> in);
  virtual Shape infer_shape(const Shape& /*in*/) { fail("takes several inputs"); }
  // Whether this op can run on `device`; checked when the graph is built, so a graph that a
  // backend cannot run is refused before any step.
  virtual bool supports(Device /*device*/) const { return true; }
  // What backward reads, for the memory plan: an activation lives until its last reader.
  virtual bool backward_reads_input() const { return true; }
  virtual bool backward_reads_output() const { return true; }
  // True when backward can add its input gradients to what is there (the per-input
  // `accumulate` flags of backward_inputs); else the graph gives it scratch and adds it.
  virtual bool accumulates_input_grad() const { return false; }
  virtual std::vector<ParamDecl> param_decls() const { return {}; }
  // Called by the graph after infer_shape, before sizing buffers: backend-specific setup
  // (cuDNN descriptors and algorithm choice) happens here, never inside a step.
  virtual void prepare(Device device, int /*max_batch*/) { device_ = device; }
  // Floats kept from forward to backward (e.g. argmax indices) and scratch, for `batch`.
  virtual size_t state_floats(int /*batch*/) const { return 0; }
  virtual size_t workspace_floats(int /*batch*/) const { return 0; }
  // One-line description for the model summary, e.g. "32 filters 3x3 stride 1 valid".
  virtual std::string describe() const = 0;
  // True if the output is the input reinterpreted (flatten): the graph then gives the output
  // and its gradient the input's memory, and forward/backward have nothing to do.
  virtual bool aliases_input() const { return false; }
  // Fusion, decided by a pass of the graph builder over ReLUs whose input and output each
  // have a single reader. A layer that can apply the ReLU before it inside its own kernels
  // agrees in absorb_preceding_relu (and from then on does so); else the layer that produces
  // the ReLU's input may agree in absorb_following_relu to apply it to its own output on
  // `device` (its backward then masks dy where its output is 0). The ReLU is told which with
  // fuse_relu and becomes a no-op whose output and gradient are its input's memory: a pass
  // over the activation saved in each direction.
  virtual bool absorb_preceding_relu() { return false; }
  virtual bool absorb_following_relu(Device /*device*/) { return false; }
  virtual void fuse_relu(const std::string& /*into*/) {}

  // FLOPs of forward for one sample (used by profile tables); 0 when not meaningful.
  virtual double forward_flops() const { return 0; }
  // How the built backend runs this layer at batch n, for profile and bench tables (e.g. the
  // cuDNN algorithms chosen); "" when there is nothing to say.
  virtual std::string backend_detail(int /*batch*/) const { return ""; }

  // Called once by the graph after allocation.
  void bind(std::vector<Tensor> params, std::vector<Tensor> grads, float* state, float* workspace) {
    params_ = std::move(params);
    grads_ = std::move(grads);
    state_ = state;
    workspace_ = workspace;
  }

  // Called by Graph::init_from_data for a layer with Init::from_data parameters, with its
  // inputs computed from a batch of real data, before its own forward runs.
  virtual void init_from_data(std::span<const Tensor> /*in*/) {
    fail("declares a parameter initialised from data but has no init_from_data");
  }

  // y = f(inputs). Tensors carry the actual batch size (which may be below the built batch).
  // One-input ops implement forward(x, y) instead.
  virtual void forward_inputs(const StepContext& ctx, std::span<const Tensor> in, const Tensor& y);
  // Writes parameter gradients (overwriting) and, for each input i with din[i].data, its
  // gradient: overwritten, or added to when accumulate[i] (only asked of ops that
  // accumulates_input_grad()). One-input ops implement backward(x, y, dy, dx) instead.
  virtual void backward_inputs(const StepContext& ctx, std::span<const Tensor> in, const Tensor& y,
                               const Tensor& dy, std::span<const Tensor> din,
                               const std::vector<bool>& accumulate);
  virtual void forward(const StepContext&, const Tensor& /*x*/, const Tensor& /*y*/) {
    fail("has no one-input forward");
  }
  virtual void backward(const StepContext&, const Tensor& /*x*/, const Tensor& /*y*/,
                        const Tensor& /*dy*/, const Tensor& /*dx*/) {
    fail("has no one-input backward");
  }

 protected:
  [[noreturn]] void fail(const std::string& msg) const;  // "where: layer NAME: msg"
  LayerSpec spec_;
  std::vector<Tensor> params_, grads_;
  float* state_ = nullptr;
  float* workspace_ = nullptr;
  uint32_t index_ = 0;
  Device device_ = Device::cpu;
};

using LayerFactory = std::function<std::unique_ptr<Layer>(const LayerSpec&)>;

// One registered op: its model-file type name, factory, and the examples every op must give.
struct OpInfo {
  std::string name;
  LayerFactory make;
  std::vector<OpExample> examples;
};

// Adding an op means writing its file (which defines a function returning its OpInfo) and
// adding one row to the table in registry.cpp.
const std::vector<OpInfo>& op_registry();
std::unique_ptr<Layer> make_layer(const LayerSpec& spec);
std::vector<std::string> layer_type_names();

}  // namespace convpool
