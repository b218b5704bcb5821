// The op registry: type name -> factory and examples. Adding an op adds one row here.
#include <utility>

#include "convpool/error.h"
#include "convpool/layer.h"

namespace convpool {

OpInfo conv_op();
OpInfo dense_op();
OpInfo pool_op();
OpInfo relu_op();
OpInfo flatten_op();
OpInfo batchnorm_op();
OpInfo add_op();
OpInfo concat_op();
OpInfo dropout_op();
OpInfo gelu_op();
OpInfo leaky_relu_op();
OpInfo scale_op();
OpInfo intermap_pool_op();
OpInfo weighted_pool_op();
OpInfo lip_pool_op();
OpInfo pyramid_pool_op();
OpInfo gem_pool_op();
OpInfo attention_pool_op();
OpInfo compact_bilinear_op();
OpInfo spectral_pool_op();
OpInfo spp_pool_op();

const std::vector<OpInfo>& op_registry() {
  static const std::vector<OpInfo> table = {
      conv_op(),
      dense_op(),
      pool_op(),
      relu_op(),
      flatten_op(),
      batchnorm_op(),
      add_op(),
      concat_op(),
      dropout_op(),
      gelu_op(),
      leaky_relu_op(),
      scale_op(),
      intermap_pool_op(),
      pyramid_pool_op(),
      weighted_pool_op(),
      lip_pool_op(),
      gem_pool_op(),
      attention_pool_op(),
      compact_bilinear_op(),
      spectral_pool_op(),
      spp_pool_op(),
  };
  return table;
}

std::vector<std::string> layer_type_names() {
  std::vector<std::string> names;
  for (auto& op : op_registry()) names.push_back(op.name);
  return names;
}

std::unique_ptr<Layer> make_layer(const LayerSpec& spec) {
  for (auto& op : op_registry())
    if (op.name == spec.type) return op.make(spec);
  std::string near = nearest_word(spec.type, layer_type_names());
  std::string known;
  for (auto& n : layer_type_names()) known += (known.empty() ? "" : ", ") + n;
  CP_USER_ERROR(
      spec.where << ": unknown layer type '" << spec.type << "'"
                 << (near.empty() ? " (known: " + known + ")" : " (did you mean '" + near + "'?)"));
}

void Layer::fail(const std::string& msg) const {
  CP_USER_ERROR(spec_.where << ": " << spec_.type << " '" << spec_.name << "': " << msg);
}

Shape Layer::infer(std::span<const Shape> in) {
  if (in.size() != 1)
    fail("takes one input, not " + std::to_string(in.size()));
  return infer_shape(in[0]);
}

void Layer::forward_inputs(const StepContext& ctx, std::span<const Tensor> in, const Tensor& y) {
  forward(ctx, in[0], y);
}

void Layer::backward_inputs(const StepContext& ctx, std::span<const Tensor> in, const Tensor& y,
                            const Tensor& dy, std::span<const Tensor> din,
                            const std::vector<bool>& accumulate) {
  CP_CHECK(!accumulate[0], "layer " << name() << " cannot accumulate its input gradient");
  backward(ctx, in[0], y, dy, din[0]);
}

Init parse_init(const std::string& name, const LayerArgs& args) {
  if (name == "glorot") return Init::glorot_uniform;
  if (name == "he_normal") return Init::he_normal;
  if (name == "he_uniform") return Init::he_uniform;
  if (name == "zeros") return Init::zeros;
  if (name == "ones") return Init::ones;
  if (name == "dirac") return Init::dirac;
  if (name == "whiten") return Init::from_data;
  const std::vector<std::string> known = {"glorot", "he_normal", "he_uniform", "zeros",
                                          "ones",   "dirac",     "whiten"};
  const std::string near = nearest_word(name, known);
  args.fail("init=" + name + " is not one of: glorot he_normal he_uniform zeros ones dirac whiten" +
            (near.empty() ? std::string() : " (did you mean '" + near + "'?)"));
}

const char* param_kind_name(ParamKind kind) {
  switch (kind) {
    case ParamKind::trainable: return "trainable";
    case ParamKind::frozen: return "frozen";
    case ParamKind::buffer: return "buffer";
  }
  return "?";
}

}  // namespace convpool
