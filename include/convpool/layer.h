// Layer: the unit every op implements. A layer parses its own arguments, infers its output
// shape at build time, declares the parameters and scratch it needs, and runs forward and
// backward on whichever device its tensors live on.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "convpool/model.h"
#include "convpool/tensor.h"

namespace convpool {

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
};

enum class Init { glorot_uniform, zeros, constant };

struct ParamDecl {
  std::string suffix;  // "weight", "bias", ...: the full name is "<layer>.<suffix>"
  Shape shape;         // PyTorch layout: conv [OC,C,KH,KW], dense [OUT,IN,1,1], bias [N,1,1,1]
  Init init = Init::zeros;
  int fan_in = 0, fan_out = 0;
  float value = 0.f;  // for Init::constant
  int rank = 4;       // dimensions in checkpoints: conv weight 4, dense weight 2, bias 1
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

  // Build time. `in` is a per-sample shape (n = 1). Throws with the layer name on bad shapes.
  virtual Shape infer_shape(const Shape& in) = 0;
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
  // Fusion. A layer that can apply the ReLU before it inside its own kernels agrees here (and
  // from then on does so); the graph then calls fuse_into_next() on that ReLU, which becomes a
  // no-op whose output and gradient are its input's memory. Saves a pass over the activation.
  virtual bool absorb_preceding_relu() { return false; }
  virtual void fuse_into_next() {}

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

  // y = f(x). x and y carry the actual batch size (which may be below the built batch).
  virtual void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) = 0;
  // Given x, y and dy, writes parameter gradients (overwriting) and, if dx.data, dx.
  virtual void backward(const StepContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                        const Tensor& dx) = 0;

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

// name -> factory. Adding a layer type means adding one row to the table in registry.cpp.
std::unique_ptr<Layer> make_layer(const LayerSpec& spec);
std::vector<std::string> layer_type_names();

}  // namespace convpool
