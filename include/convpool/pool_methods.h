// The pooling-method table (kernels/pool_methods.cuh) seen from the host: each method's
// name, parameters with defaults and ranges, ONNX form, PyTorch class and default study runs.
// Needs nothing of the engine but the table, so the PyTorch extension compiles it as well.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/pool_methods.cuh"

namespace convpool {

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

// Another name of a method (CONVPOOL_POOL_ALIASES): `alias key=v` is `method method_key=v`.
struct PoolMethodAlias {
  std::string name;        // "rap"
  PoolMethod method;       // avgtopk
  std::string key;         // "t": the parameter's name in the alias's paper
  std::string method_key;  // "k"
  std::string source;
};
const std::vector<PoolMethodAlias>& pool_method_aliases();
const PoolMethodAlias* find_pool_method_alias(const std::string& name);

// The ops beside `pool` whose windows are `pool`'s (size, stride, pad) and which can stand in
// for a pool layer: `--pool weighted_pool` (and a study's --pools) turns every non-global pool
// layer into one, its geometry kept. Each is a registered op; tests/test_pool_methods.cpp
// builds each in place of a pool layer.
struct WindowPoolingOp {
  std::string name;        // its layer type
  std::string params;      // its own parameters, for `convpool pool-methods`
  std::string definition;
};
const std::vector<WindowPoolingOp>& window_pooling_ops();
const WindowPoolingOp* find_window_pooling_op(const std::string& name);
// The pooling ops with windows of their own (no size, stride or pad): `convpool pool-methods`
// lists them and `convpool bench pool --method intermap_pool:groups=2` times them.
const std::vector<WindowPoolingOp>& other_pooling_ops();
const WindowPoolingOp* find_other_pooling_op(const std::string& name);
// The global encoders: ops that turn each image's C x H x W maps into one feature vector
// (C x 1 x 1, or a multiple of C), which `--global-pool` puts in place of a model's last pool
// layer (apply_global_pool_override).
const std::vector<WindowPoolingOp>& global_encoder_ops();
const WindowPoolingOp* find_global_encoder_op(const std::string& name);

// Every method, in enum order.
const std::vector<PoolMethodSpec>& pool_methods();
const PoolMethodSpec& pool_method(PoolMethod id);
const PoolMethodSpec* find_pool_method(const std::string& name);
// The table as JSON, for `convpool pool-methods --json` and the scripts that read it.
nlohmann::json pool_methods_json();
// The default method list of `convpool study`: every row's study runs, in table order.
std::string default_study_pools();

}  // namespace convpool
