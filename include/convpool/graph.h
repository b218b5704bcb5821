// Graph: a built network of named nodes. Graph::build resolves each layer's inputs by name,
// orders the nodes topologically, infers every shape, fuses where it is safe, and allocates
// parameters, gradients, optimizer state, activations and scratch in one Arena, with the
// activation memory planned from lifetimes (src/graph/memory_plan.h).
#pragma once
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "convpool/arena.h"
#include "convpool/layer.h"
#include "convpool/model.h"
#include "convpool/optim.h"

namespace convpool {

struct GraphOptions {
  Device device = Device::cpu;
  int batch = 32;                 // the largest batch the graph will run
  int optimizer_state_slots = 2;  // flat buffers the size of the parameters (Adam: m and v)
  size_t max_arena_bytes = size_t(16) << 30;  // a model needing more is refused at build time
  bool input_gradient = false;  // also compute the gradient of the input (benchmarks, saliency)
  bool fuse_relu = true;        // fold a ReLU into the pooling layer after it (same results)
  // Share activation and gradient memory between tensors whose lifetimes in a training step
  // do not overlap. Off: one buffer per tensor, so that every activation and gradient can be
  // read after a step (per-layer benchmarks, tests that look inside).
  bool plan_memory = true;
};

struct ParamInfo {
  std::string name;  // "conv1.weight"
  Shape shape;
  size_t offset;  // into the flat parameter (and gradient) buffer, in floats
  int layer;      // index of the owning node
  int rank;       // dimensions in checkpoints (PyTorch layout): the leading `rank` of n,c,h,w
  ParamKind kind = ParamKind::trainable;
  float lr_mult = 1.f, wd_mult = 1.f;
};

// Bytes of the activations, the tensors kept for backward and the activation gradients of a
// training step at the built batch.
struct ActivationMemory {
  size_t planned = 0;  // what the plan allocates
  size_t peak = 0;     // most bytes alive at once: the least any plan could allocate
  size_t naive = 0;    // one buffer per tensor
  size_t kept = 0;     // of naive: the layers' state kept from forward to backward (CPU conv's
                       // im2col columns, pooling's argmax and selections, BatchNorm's moments)
};

class Graph {
 public:
  static std::unique_ptr<Graph> build(const ModelSpec& spec, const GraphOptions& opts);

  Device device() const { return opts_.device; }
  int max_batch() const { return opts_.batch; }
  Shape input_shape(int n) const { return shapes_.front().with_batch(n); }
  Shape output_shape(int n) const { return shapes_.back().with_batch(n); }
  // Values: 0 is the model's input, value i + 1 the output of node i. Nodes are numbered in
  // execution (topological) order, which is file order for a chain.
  Tensor input(int n) const { return activation(0, n); }
  Tensor output(int n) const { return activation(layers_.size(), n); }
  Tensor output_grad(int n) const { return gradient(layers_.size(), n); }
  Tensor activation(size_t value, int n) const;
  Tensor gradient(size_t value, int n) const;  // data is null where no gradient is kept
  // The values node i reads, in the order its layer takes them.
  const std::vector<int>& node_inputs(size_t i) const { return inputs_.at(i); }

  // Runs every node on the first n samples (n <= max_batch).
  void forward(const StepContext& ctx, int n);
  // From output_grad(n) back to the parameter gradients (overwritten each call).
  void backward(const StepContext& ctx, int n);
  // Single-node steps; the whole pass is exactly these in order. Each is a profile Region
  // named "<layer>/fwd" or "<layer>/bwd" (convpool/profile.h).
  void forward_layer(size_t i, const StepContext& ctx, int n);
  void backward_layer(size_t i, const StepContext& ctx, int n);
  // Diagnosis on the CPU: forward (backward) again, node by node, checking each output (input
  // gradient) as soon as it is written; returns the first node that wrote a non-finite value.
  std::optional<size_t> forward_until_non_finite(const StepContext& ctx, int n);
  std::optional<size_t> backward_until_non_finite(const StepContext& ctx, int n);

  // Every parameter from its declared initialiser and `seed` (glorot: the Keras default), on
  // any device; optimizer state and gradients to zero.
  void init_params(uint64_t seed);
  // Runs forward in evaluation mode on the n samples in input(n), calling init_from_data on
  // each layer that has parameters initialised from data, before its own forward.
  void init_from_data(int n);
  // True when some parameter waits for init_from_data (e.g. conv init=whiten).
  bool needs_data_init() const;

  float* params() const { return arena_.region(params_region_); }
  float* grads() const { return arena_.region(grads_region_); }
  float* optimizer_state(int slot) const { return arena_.region(state_regions_.at(slot)); }
  size_t num_params() const { return num_params_; }  // floats of the flat buffer, padding included
  const std::vector<ParamInfo>& param_infos() const { return param_infos_; }
  // The trainable parameters as contiguous ranges with their multipliers: what the optimizer
  // updates. Frozen parameters and buffers lie after them.
  const ParamGroups& param_groups() const { return groups_; }
  size_t num_layers() const { return layers_.size(); }
  const Layer& layer(size_t i) const { return *layers_.at(i); }
  Shape layer_output_shape(size_t i) const { return shapes_.at(i + 1); }
  size_t arena_bytes() const { return arena_.bytes(); }
  const ActivationMemory& activation_memory() const { return memory_; }
  std::string summary() const;  // a Keras-style table of layers, shapes and parameter counts

 private:
  struct Builder;
  Tensor storage_tensor(int storage, const Shape& per_sample, int n) const;
  void run_backward(size_t i, const StepContext& ctx, int n);

  GraphOptions opts_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::vector<int>> inputs_;  // per node: the values it reads
  std::vector<Shape> shapes_;             // per value, per sample
  // Per value: where its activation and its gradient live (-1: no gradient kept).
  std::vector<int> act_storage_, grad_storage_;
  std::vector<size_t> storage_offset_;  // floats into the activation block, per storage
  // Per node and input: add that input's gradient to what is there (a tensor read by several
  // nodes); through the scratch at scratch_offset_ when the layer cannot accumulate itself.
  std::vector<std::vector<bool>> accumulate_;
  std::vector<std::vector<long>> scratch_offset_;  // floats into the scratch region, or -1
  Arena arena_;
  int activations_region_ = -1, scratch_region_ = -1;
  int params_region_ = -1, grads_region_ = -1;
  std::vector<int> state_regions_;
  std::vector<ParamInfo> param_infos_;
  std::vector<ParamDecl> param_decls_;
  ParamGroups groups_;
  ActivationMemory memory_;
  std::vector<std::array<std::string, 2>> region_names_;  // per node: "<name>/fwd", "/bwd"
  size_t num_params_ = 0;
  // The tensors handed to a node, refilled per call: their capacity stays, so a steady-state
  // step allocates nothing.
  std::vector<Tensor> node_in_, node_din_;
};

}  // namespace convpool
