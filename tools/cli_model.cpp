// convpool model: builds a model file and prints its summary (layers, shapes, parameter and
// buffer counts, activation memory) without data or training; --json for scripts
// (tests/param-count-check compares the counts with PyTorch's).
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "convpool/graph.h"
#include "convpool/optim.h"
#include "convpool/pooling.h"

namespace convpool::cli {

namespace {

struct ModelOptions {
  std::string model, pool, global_pool;
  int batch = 128;
  bool json = false;
};

int run(const ModelOptions& o) {
  ModelSpec spec = load_model_file(o.model);
  if (!o.global_pool.empty()) apply_global_pool_override(spec, o.global_pool);
  if (!o.pool.empty()) apply_pool_override(spec, o.pool);
  GraphOptions gopts{Device::cpu, o.batch, 0};
  const auto graph = Graph::build(spec, gopts);
  if (!o.json) {
    std::printf("%s\n", graph->summary().c_str());
    return 0;
  }
  size_t trainable = 0, frozen = 0, buffers = 0;
  nlohmann::json tensors = nlohmann::json::array();
  for (const ParamInfo& p : graph->param_infos()) {
    (p.kind == ParamKind::trainable ? trainable : p.kind == ParamKind::frozen ? frozen : buffers) +=
        p.shape.numel();
    std::vector<int> dims = {p.shape.n, p.shape.c, p.shape.h, p.shape.w};
    dims.resize(size_t(p.rank));
    tensors.push_back({{"name", p.name}, {"shape", dims}, {"kind", param_kind_name(p.kind)}});
  }
  const ActivationMemory& m = graph->activation_memory();
  const nlohmann::json j = {
      {"model", o.model},
      {"layers", graph->num_layers()},
      {"parameters", trainable + frozen},
      {"trainable", trainable},
      {"frozen", frozen},
      {"buffers", buffers},
      {"tensors", tensors},
      {"batch", o.batch},
      {"activation_bytes",
       {{"planned", m.planned}, {"peak", m.peak}, {"naive", m.naive}, {"kept_state", m.kept}}}};
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

}  // namespace

Runner add_model_command(CLI::App& app) {
  auto o = std::make_shared<ModelOptions>();
  CLI::App* cmd = app.add_subcommand(
      "model", "build a model file and print its layers, parameters and activation memory");
  cmd->add_option("model", o->model, "model file")->required();
  cmd->add_option("--pool", o->pool, "replace the method of every pool layer (as train does)");
  cmd->add_option("--global-pool", o->global_pool,
                  "a global encoder in place of the last pool layer (as train does)");
  cmd->add_option("--batch", o->batch, "batch size the activation memory is planned for")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  cmd->add_flag("--json", o->json, "machine-readable output");
  cmd->footer("Example:\n  convpool model models/resnet20.cfg --batch 128");
  return [o] { return run(*o); };
}

}  // namespace convpool::cli
