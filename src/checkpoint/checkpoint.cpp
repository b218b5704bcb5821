#include "convpool/checkpoint.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "convpool/error.h"

namespace convpool {

namespace {

std::vector<int64_t> dims_of(const ParamInfo& p) {
  const int64_t all[4] = {p.shape.n, p.shape.c, p.shape.h, p.shape.w};
  return std::vector<int64_t>(all, all + p.rank);
}

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

std::vector<std::string> state_prefixes(const OptimizerConfig& opt) {
  if (opt.kind == "adam") return {"optim.m.", "optim.v."};
  if (optimizer_state_slots(opt) == 1) return {"optim.velocity."};
  return {};
}

nlohmann::json optimizer_json(const OptimizerConfig& o) {
  return {{"kind", o.kind},         {"lr", o.lr},
          {"beta1", o.beta1},       {"beta2", o.beta2},
          {"eps", o.eps},           {"momentum", o.momentum},
          {"nesterov", o.nesterov}, {"weight_decay", o.weight_decay}};
}

nlohmann::json input_json(const InputTransform& t) {
  return {{"crop_pad", t.crop_pad},
          {"flip", t.flip},
          {"mean", std::vector<float>(t.mean, t.mean + kCifarChannels)},
          {"std", std::vector<float>(t.std, t.std + kCifarChannels)}};
}

}  // namespace

void save_checkpoint(const std::string& path, const Graph& graph, const std::string& model_text,
                     const std::string& pool_override, const TrainState& st) {
  std::vector<NamedTensor> tensors;
  auto add = [&](const std::string& name, const ParamInfo& p, const float* base) {
    NamedTensor t{name, dims_of(p), std::vector<float>(p.shape.numel())};
    copy_bytes(t.data.data(), Device::cpu, base + p.offset, graph.device(),
               t.data.size() * sizeof(float));
    tensors.push_back(std::move(t));
  };
  for (auto& p : graph.param_infos()) add(p.name, p, graph.params());
  const auto prefixes = state_prefixes(st.optimizer);
  for (size_t s = 0; s < prefixes.size(); ++s)
    for (auto& p : graph.param_infos()) add(prefixes[s] + p.name, p, graph.optimizer_state(int(s)));

  nlohmann::json state = {{"epoch", st.epoch},
                          {"step", st.step},
                          {"epoch_batches", st.epoch_batches},
                          {"epoch_loss_sum", st.epoch_loss_sum},
                          {"epoch_correct", st.epoch_correct},
                          {"best_accuracy", st.best_accuracy},
                          {"seed", st.seed},
                          {"batch", st.batch}};
  std::map<std::string, std::string> meta = {
      {"format", "convpool"},
      {"format_version", std::to_string(kCheckpointVersion)},
      {"model", model_text},
      {"pool", pool_override},
      {"training_state", state.dump()},
      {"optimizer", optimizer_json(st.optimizer).dump()},
      {"input", input_json(st.input).dump()},
      {"rng", "philox4x32-10, key = seed, counters = (purpose, epoch|step, layer, element)"},
  };
  write_file_atomic(path, encode_safetensors(tensors, meta));
}

Checkpoint load_checkpoint(const std::string& path) {
  return decode_checkpoint(read_file_bytes(path), path);
}

Checkpoint decode_checkpoint(const std::string& bytes, const std::string& path) {
  Checkpoint c;
  c.file = decode_safetensors(bytes, path);
  const auto& m = c.file.metadata;
  auto need = [&](const std::string& key) -> const std::string& {
    auto it = m.find(key);
    if (it == m.end())
      CP_USER_ERROR(path << ": not a convpool checkpoint (no '" << key << "' metadata)");
    return it->second;
  };
  if (need("format") != "convpool") CP_USER_ERROR(path << ": not a convpool checkpoint");
  if (need("format_version") != std::to_string(kCheckpointVersion))
    CP_USER_ERROR(path << ": checkpoint format version " << need("format_version")
                       << " is not supported (this build reads version " << kCheckpointVersion
                       << ")");
  if (m.find("data_crc32") == m.end()) CP_USER_ERROR(path << ": checkpoint has no data checksum");
  c.model_text = need("model");
  c.pool_override = need("pool");
  try {
    const auto s = nlohmann::json::parse(need("training_state"));
    c.state.epoch = s.at("epoch").get<int>();
    c.state.step = s.at("step").get<uint64_t>();
    c.state.epoch_batches = s.at("epoch_batches").get<uint64_t>();
    c.state.epoch_loss_sum = s.at("epoch_loss_sum").get<double>();
    c.state.epoch_correct = s.at("epoch_correct").get<uint64_t>();
    c.state.best_accuracy = s.at("best_accuracy").get<double>();
    c.state.seed = s.at("seed").get<uint64_t>();
    c.state.batch = s.at("batch").get<int>();
    const auto o = nlohmann::json::parse(need("optimizer"));
    c.state.optimizer.kind = o.at("kind").get<std::string>();
    c.state.optimizer.lr = o.at("lr").get<float>();
    c.state.optimizer.beta1 = o.at("beta1").get<float>();
    c.state.optimizer.beta2 = o.at("beta2").get<float>();
    c.state.optimizer.eps = o.at("eps").get<float>();
    c.state.optimizer.momentum = o.at("momentum").get<float>();
    c.state.optimizer.nesterov = o.at("nesterov").get<bool>();
    c.state.optimizer.weight_decay = o.at("weight_decay").get<float>();
    // Checkpoints written before the input options existed used the defaults.
    if (auto it = m.find("input"); it != m.end()) {
      const auto in = nlohmann::json::parse(it->second);
      c.state.input.crop_pad = in.at("crop_pad").get<int>();
      c.state.input.flip = in.at("flip").get<bool>();
      const auto mean = in.at("mean").get<std::vector<float>>();
      const auto sd = in.at("std").get<std::vector<float>>();
      if (mean.size() != kCifarChannels || sd.size() != kCifarChannels)
        CP_USER_ERROR(path << ": bad input metadata in checkpoint (mean/std need 3 values)");
      for (int k = 0; k < kCifarChannels; ++k) {
        c.state.input.mean[k] = mean[k];
        c.state.input.std[k] = sd[k];
      }
      try {
        validate(c.state.input);
      } catch (const Error& e) {
        CP_USER_ERROR(path << ": bad input metadata in checkpoint (" << e.what() << ")");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    CP_USER_ERROR(path << ": bad training state in checkpoint metadata (" << e.what() << ")");
  }
  if (c.state.batch < 1 || c.state.epoch < 0)
    CP_USER_ERROR(path << ": bad training state in checkpoint metadata");
  return c;
}

void restore_graph(const Checkpoint& ckpt, const std::string& origin, Graph& graph,
                   bool with_optimizer_state) {
  std::vector<std::string> expected;
  auto load = [&](const std::string& name, const ParamInfo& p, float* base) {
    expected.push_back(name);
    const NamedTensor* t = ckpt.file.find(name);
    if (!t) CP_USER_ERROR(origin << ": does not match the model: no tensor '" << name << "'");
    if (t->shape != dims_of(p))
      CP_USER_ERROR(origin << ": does not match the model: '" << name << "' has shape "
                           << dims_str(t->shape) << " in the checkpoint, " << dims_str(dims_of(p))
                           << " in the model");
    copy_bytes(base + p.offset, graph.device(), t->data.data(), Device::cpu,
               t->data.size() * sizeof(float));
  };
  for (auto& p : graph.param_infos()) load(p.name, p, graph.params());
  if (with_optimizer_state) {
    const auto prefixes = state_prefixes(ckpt.state.optimizer);
    for (size_t s = 0; s < prefixes.size(); ++s)
      for (auto& p : graph.param_infos())
        load(prefixes[s] + p.name, p, graph.optimizer_state(int(s)));
  }
  for (auto& t : ckpt.file.tensors) {
    const bool optimizer = t.name.rfind("optim.", 0) == 0;
    if (optimizer && !with_optimizer_state) continue;
    if (std::find(expected.begin(), expected.end(), t.name) == expected.end())
      CP_USER_ERROR(origin << ": does not match the model: unexpected tensor '" << t.name << "'");
  }
}

}  // namespace convpool
