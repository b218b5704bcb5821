// Pooling methods: the catalogue users choose from (`pool METHOD ...` in a model file, or
// `--pool METHOD[:key=value,...]` to override every pooling layer), generated from the one
// table in kernels/pool_methods.cuh.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convpool/model.h"
#include "kernels/pool_math.cuh"

namespace convpool {

class Layer;

enum class PoolOnnxForm { native, patches, refused };
enum class PoolParamKind { integer, real, flag };
enum class PoolInputs { any, nonneg };

struct PoolParamSpec {
  std::string key;
  PoolParamSlot slot;
  PoolParamKind kind;
  double def, lo, hi;
  std::string text() const;  // "k=2 (1..64)"
};

struct PoolMethodSpec {
  PoolMethod id;
  std::string name;          // "avgtopk"
  std::string python_class;  // "AvgTopK"
  PoolOnnxForm onnx;
  std::vector<std::string> study;  // the default study's runs of it ("avgtopk:k=2", ...)
  PoolInputs inputs;
  std::string definition;  // one line
  std::vector<PoolParamSpec> params;
  std::string params_text() const;  // "k=2 (1..64), t=0"
  bool has(PoolParamSlot slot) const;
};

// Every method, in enum order.
const std::vector<PoolMethodSpec>& pool_methods();
const PoolMethodSpec& pool_method(PoolMethod id);
const PoolMethodSpec* find_pool_method(const std::string& name);
// The table as JSON, for `convpool pool-methods --json` and the scripts that read it.
nlohmann::json pool_methods_json();
// The default method list of `convpool study`: every row's study runs, in table order.
std::string default_study_pools();

// Replaces the method (and method parameters) of every `pool` layer by `override`, e.g.
// "avgtopk:k=3" or "lp:p=3"; window size, stride and padding are kept.
void apply_pool_override(ModelSpec& spec, const std::string& override_text);

// The parsed configuration of a `pool` layer, as the ONNX planner reads it (the layer
// parses its parameters once); null for any other layer.
struct PoolLayerConfig {
  const PoolMethodSpec* method;
  bool global;
  int kh, kw, sh, sw, ph, pw;
  PoolWindowParams window;  // k, p, threshold
  bool include_pad, learned;
};
const PoolLayerConfig* pool_layer_config(const Layer& layer);

}  // namespace convpool
