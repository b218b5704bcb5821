// The layer registry: type name -> factory. Adding a layer type adds one row here.
#include <utility>

#include "convpool/error.h"
#include "convpool/layer.h"

namespace convpool {

std::unique_ptr<Layer> make_conv_layer(const LayerSpec&);
std::unique_ptr<Layer> make_dense_layer(const LayerSpec&);
std::unique_ptr<Layer> make_pool_layer(const LayerSpec&);
std::unique_ptr<Layer> make_relu_layer(const LayerSpec&);
std::unique_ptr<Layer> make_flatten_layer(const LayerSpec&);

namespace {
const std::vector<std::pair<std::string, LayerFactory>>& registry() {
  static const std::vector<std::pair<std::string, LayerFactory>> table = {
      {"conv", make_conv_layer}, {"dense", make_dense_layer},     {"pool", make_pool_layer},
      {"relu", make_relu_layer}, {"flatten", make_flatten_layer},
  };
  return table;
}
}  // namespace

std::vector<std::string> layer_type_names() {
  std::vector<std::string> names;
  for (auto& [name, f] : registry()) names.push_back(name);
  return names;
}

std::unique_ptr<Layer> make_layer(const LayerSpec& spec) {
  for (auto& [name, factory] : registry())
    if (name == spec.type) return factory(spec);
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

}  // namespace convpool
