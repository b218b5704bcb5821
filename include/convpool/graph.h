// Graph: a built network. Graph::build infers every shape, names every layer, and allocates
// parameters, gradients, optimizer state, activations and scratch in one Arena.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "convpool/arena.h"
#include "convpool/layer.h"
#include "convpool/model.h"

namespace convpool {

struct GraphOptions {
  Device device = Device::cpu;
  int batch = 32;                 // the largest batch the graph will run
  int optimizer_state_slots = 2;  // flat buffers the size of the parameters (Adam: m and v)
  size_t max_arena_bytes = size_t(16) << 30;  // a model needing more is refused at build time
  bool input_gradient = false;  // also compute the gradient of the input (benchmarks, saliency)
  bool fuse_relu = true;        // fold a ReLU into the pooling layer after it (same results)
};

struct ParamInfo {
  std::string name;  // "conv1.weight"
  Shape shape;
  size_t offset;  // into the flat parameter (and gradient) buffer, in floats
  int layer;      // index of the owning layer
  int rank;       // dimensions in checkpoints (PyTorch layout): the leading `rank` of n,c,h,w
};

class Graph {
 public:
  static std::unique_ptr<Graph> build(const ModelSpec& spec, const GraphOptions& opts);

  Device device() const { return opts_.device; }
  int max_batch() const { return opts_.batch; }
  Shape input_shape(int n) const { return shapes_.front().with_batch(n); }
  Shape output_shape(int n) const { return shapes_.back().with_batch(n); }
  Tensor input(int n) const { return activation(0, n); }
  Tensor output(int n) const { return activation(layers_.size(), n); }
  Tensor output_grad(int n) const { return gradient(layers_.size(), n); }
  // Activation i is the input of layer i (i = 0) or the output of layer i-1.
  Tensor activation(size_t i, int n) const;
  Tensor gradient(size_t i, int n) const;

  // Runs every layer on the first n samples (n <= max_batch).
  void forward(const StepContext& ctx, int n);
  // From output_grad(n) back to the parameter gradients (overwritten each call).
  void backward(const StepContext& ctx, int n);
  // Single-layer steps; the whole pass is exactly these in order. Each is a profile Region
  // named "<layer>/fwd" or "<layer>/bwd" (convpool/profile.h).
  void forward_layer(size_t i, const StepContext& ctx, int n);
  void backward_layer(size_t i, const StepContext& ctx, int n);

  // Glorot-uniform weights and zero biases from `seed` (the Keras defaults), on any device.
  void init_params(uint64_t seed);

  float* params() const { return arena_.region(params_region_); }
  float* grads() const { return arena_.region(grads_region_); }
  float* optimizer_state(int slot) const { return arena_.region(state_regions_.at(slot)); }
  size_t num_params() const { return num_params_; }
  const std::vector<ParamInfo>& param_infos() const { return param_infos_; }
  size_t num_layers() const { return layers_.size(); }
  const Layer& layer(size_t i) const { return *layers_.at(i); }
  Shape layer_output_shape(size_t i) const { return shapes_.at(i + 1); }
  size_t arena_bytes() const { return arena_.bytes(); }
  std::string summary() const;  // a Keras-style table of layers, shapes and parameter counts

 private:
  GraphOptions opts_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<Shape> shapes_;  // per-sample shapes: input, then each layer's output
  Arena arena_;
  std::vector<int> act_regions_, grad_regions_;
  int params_region_ = -1, grads_region_ = -1;
  std::vector<int> state_regions_;
  std::vector<ParamInfo> param_infos_;
  std::vector<ParamDecl> param_decls_;
  std::vector<std::array<std::string, 2>> region_names_;  // per layer: "<name>/fwd", "/bwd"
  size_t num_params_ = 0;
};

}  // namespace convpool
