#include "convpool/checkpoint.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>
#include <unordered_set>

#include "convpool/error.h"
#include "convpool/model.h"
#include "convpool/pooling.h"

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

constexpr const char* kEmaPrefix = kCheckpointEmaPrefix;

std::vector<std::string> state_prefixes(const OptimizerConfig& opt) {
  if (uses_adam_moments(opt.kind)) return {"optim.m.", "optim.v."};
  if (optimizer_state_slots(opt) == 1) return {"optim.velocity."};
  return {};
}

// The schedule as resolved by the trainer (milestones in steps, total_steps fixed), so that a
// resumed run continues the same curve whatever its --epochs.
nlohmann::json schedule_json(const LrSchedule& s) {
  return {{"kind", lr_schedule_name(s.kind)},
          {"warmup", s.warmup},
          {"final_ratio", s.final_ratio},
          {"start_div", s.start_div},
          {"final_div", s.final_div},
          {"gamma", s.gamma},
          {"milestones", std::vector<uint64_t>(s.milestones, s.milestones + s.milestone_count)},
          {"total_steps", s.total_steps}};
}

nlohmann::json optimizer_json(const OptimizerConfig& o) {
  return {{"kind", optimizer_name(o.kind)},
          {"lr", o.lr},
          {"beta1", o.beta1},
          {"beta2", o.beta2},
          {"eps", o.eps},
          {"momentum", o.momentum},
          {"nesterov", o.nesterov},
          {"weight_decay", o.weight_decay},
          {"schedule", schedule_json(o.schedule)},
          {"clip_grad_norm", o.clip_grad_norm}};
}

nlohmann::json input_json(const InputTransform& t) {
  return {{"side", t.side},
          {"crop_pad", t.crop_pad},
          {"reflect", t.reflect},
          {"flip", t.flip},
          {"cutout", t.cutout},
          {"mean", std::vector<float>(t.mean, t.mean + kCifarChannels)},
          {"std", std::vector<float>(t.std, t.std + kCifarChannels)}};
}

// Rows as arrays in metrics.csv's column order (skipped_batches is not a column there).
nlohmann::json history_json(const std::vector<EpochMetrics>& rows) {
  nlohmann::json j = nlohmann::json::array();
  for (const EpochMetrics& m : rows)
    j.push_back({m.epoch, m.loss, m.accuracy, m.test_loss, m.test_accuracy, m.seconds,
                 m.images_per_second, m.data_wait_seconds, m.lr});
  return j;
}

// Metadata numbers are range-checked before any conversion: nlohmann's get<T>() is a plain
// static_cast, undefined for a negative double into an unsigned or a huge one into a float.
struct MetadataRangeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
constexpr int kMaxEpochs = 1 << 24;
constexpr int kMaxBatch = 1 << 20;
constexpr uint64_t kMaxCount = uint64_t(1) << 53;  // exact in a double: any real count fits

std::string key_name(const std::string& key) { return "'" + key + "'"; }
std::string key_name(size_t index) { return "element " + std::to_string(index); }

// An integer in [lo, hi]; a fraction, a string or an out-of-range value is refused.
template <class T, class Key>
T json_integer(const nlohmann::json& j, Key key, T lo, T hi) {
  static_assert(std::is_integral_v<T>);
  const nlohmann::json& v = j.at(key);
  // nlohmann stores non-negative integers as unsigned, negative ones as signed.
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u <= uint64_t(hi) && (lo <= 0 || u >= uint64_t(lo))) return T(u);
  } else if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i >= int64_t(lo) && (i < 0 || uint64_t(i) <= uint64_t(hi))) return T(i);
  }
  throw MetadataRangeError(key_name(key) + " is " + v.dump().substr(0, 40) +
                           ", expected a whole number from " + std::to_string(lo) + " to " +
                           std::to_string(hi));
}

// A finite number that fits T.
template <class T, class Key>
T json_real(const nlohmann::json& j, Key key) {
  const nlohmann::json& v = j.at(key);
  if (!v.is_number() || !std::isfinite(v.get<double>()) ||
      std::fabs(v.get<double>()) > double(std::numeric_limits<T>::max()))
    throw MetadataRangeError(key_name(key) + " is " + v.dump().substr(0, 40) +
                             ", expected a finite number");
  return T(v.get<double>());
}

LrSchedule schedule_from_json(const nlohmann::json& j) {
  LrSchedule s;
  s.warmup = json_real<float>(j, "warmup");
  s.final_ratio = json_real<float>(j, "final_ratio");
  s.start_div = json_real<float>(j, "start_div");
  s.final_div = json_real<float>(j, "final_div");
  s.gamma = json_real<float>(j, "gamma");
  const auto& at = j.at("milestones");
  if (!at.is_array() || at.size() > size_t(kMaxLrMilestones))
    throw MetadataRangeError("'milestones' is not a list of at most " +
                             std::to_string(kMaxLrMilestones) + " steps");
  s.milestone_count = int(at.size());
  for (size_t i = 0; i < at.size(); ++i)
    s.milestones[i] = json_integer<uint64_t>(at, i, 0, kMaxCount);
  s.total_steps = json_integer<uint64_t>(j, "total_steps", 0, kMaxCount);
  try {
    s.kind = parse_lr_schedule_kind(j.at("kind").get<std::string>());
    validate(s);
  } catch (const Error& e) {
    throw MetadataRangeError(std::string("bad lr schedule: ") + e.what());
  }
  return s;
}

}  // namespace

void save_checkpoint(const std::string& path, const Graph& graph, const std::string& model_text,
                     const std::string& pool_override, const TrainState& st, const float* ema) {
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
    for (auto& p : graph.param_infos())  // frozen parameters and buffers have no optimizer state
      if (p.kind == ParamKind::trainable)
        add(prefixes[s] + p.name, p, graph.optimizer_state(int(s)));
  if (ema)
    for (auto& p : graph.param_infos()) add(kEmaPrefix + p.name, p, ema);

  nlohmann::json state = {{"epoch", st.epoch},
                          {"step", st.step},
                          {"epoch_batches", st.epoch_batches},
                          {"epoch_loss_sum", st.epoch_loss_sum},
                          {"epoch_correct", st.epoch_correct},
                          {"epoch_seconds", st.epoch_seconds},
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
      {"epoch_order", st.epoch_order},
      {"dataset", st.dataset},
      {"class_names", nlohmann::json(st.class_names)
                          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)},
      {"data", st.data},
      {"recipe", nlohmann::json{{"label_smoothing", st.label_smoothing},
                                {"ema_decay", ema ? st.ema_decay : 0.f},
                                {"eval_with", st.eval_ema ? "ema" : "raw"}}
                     .dump()},
      {"metrics", history_json(st.history).dump()},
      {"rng", "philox4x32-10, key = seed, counters = (purpose, epoch|step, layer, element)"},
  };
  write_file_atomic(path, encode_safetensors(tensors, meta));
}

Checkpoint load_checkpoint(const std::string& path) {
  return decode_checkpoint(read_regular_file(path, kMaxCheckpointBytes, "checkpoint"), path);
}

Checkpoint decode_checkpoint(const std::string& bytes, const std::string& path,
                             ChecksumPolicy checksums) {
  Checkpoint c;
  c.file = decode_safetensors(bytes, path, checksums);
  const auto& m = c.file.metadata;
  auto need = [&](const std::string& key) -> const std::string& {
    auto it = m.find(key);
    if (it == m.end())
      CP_USER_ERROR(path << ": not a convpool checkpoint (no '" << key << "' metadata)");
    return it->second;
  };
  if (need("format") != "convpool") CP_USER_ERROR(path << ": not a convpool checkpoint");
  const std::string& version = need("format_version");
  if (version == "1") {
    c.version = 1;  // its checksum covers the tensor data only; the metadata is taken on trust
  } else if (version == std::to_string(kCheckpointVersion)) {
    c.version = kCheckpointVersion;
    if (m.find(kHeaderCrcKey) == m.end())
      CP_USER_ERROR(path << ": checkpoint has no header checksum");
  } else {
    CP_USER_ERROR(path << ": checkpoint format version " << version
                       << " is not supported (this build reads versions 1 to " << kCheckpointVersion
                       << ")");
  }
  if (m.find("data_crc32") == m.end()) CP_USER_ERROR(path << ": checkpoint has no data checksum");
  c.model_text = need("model");
  c.pool_override = need("pool");
  try {
    const auto s = nlohmann::json::parse(need("training_state"));
    c.state.epoch = json_integer<int>(s, "epoch", 0, kMaxEpochs);
    c.state.step = json_integer<uint64_t>(s, "step", 0, kMaxCount);
    c.state.epoch_batches = json_integer<uint64_t>(s, "epoch_batches", 0, kMaxCount);
    c.state.epoch_loss_sum = json_real<double>(s, "epoch_loss_sum");
    c.state.epoch_correct = json_integer<uint64_t>(s, "epoch_correct", 0, kMaxCount);
    if (s.contains("epoch_seconds")) {  // older checkpoints did not time the unfinished epoch
      c.state.epoch_seconds = json_real<double>(s, "epoch_seconds");
      // At an epoch boundary there is no unfinished epoch to have timed.
      const double most = c.state.epoch_batches ? 1e9 : 0;
      if (!(c.state.epoch_seconds >= 0 && c.state.epoch_seconds <= most))
        throw MetadataRangeError(
            "'epoch_seconds' is " + s.at("epoch_seconds").dump().substr(0, 40) +
            (c.state.epoch_batches ? ", expected a number of seconds from 0 to 1e9"
                                   : ", expected 0 at an epoch boundary (epoch_batches 0)"));
    }
    c.state.best_accuracy = json_real<double>(s, "best_accuracy");
    if (c.state.best_accuracy < -1 || c.state.best_accuracy > 1)  // -1: no evaluation yet
      throw MetadataRangeError("'best_accuracy' is " + std::to_string(c.state.best_accuracy) +
                               ", expected -1 or an accuracy from 0 to 1");
    c.state.seed = json_integer<uint64_t>(s, "seed", 0, UINT64_MAX);
    c.state.batch = json_integer<int>(s, "batch", 1, kMaxBatch);
    const auto o = nlohmann::json::parse(need("optimizer"));
    c.state.optimizer.kind = parse_optimizer_kind(o.at("kind").get<std::string>());
    c.state.optimizer.lr = json_real<float>(o, "lr");
    c.state.optimizer.beta1 = json_real<float>(o, "beta1");
    c.state.optimizer.beta2 = json_real<float>(o, "beta2");
    c.state.optimizer.eps = json_real<float>(o, "eps");
    c.state.optimizer.momentum = json_real<float>(o, "momentum");
    c.state.optimizer.nesterov = o.at("nesterov").get<bool>();
    c.state.optimizer.weight_decay = json_real<float>(o, "weight_decay");
    // Checkpoints written before schedules existed trained at a constant lr.
    if (o.contains("schedule")) c.state.optimizer.schedule = schedule_from_json(o.at("schedule"));
    // ... and without clipping.
    if (o.contains("clip_grad_norm"))
      c.state.optimizer.clip_grad_norm = json_real<float>(o, "clip_grad_norm");
    // Version 1 files carry no history; the trainer then falls back on metrics.csv.
    if (auto it = m.find("metrics"); it != m.end()) {
      const auto rows = nlohmann::json::parse(it->second);
      if (!rows.is_array() || rows.size() > size_t(c.state.epoch))
        throw MetadataRangeError("'metrics' holds more rows than finished epochs");
      for (size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        if (!r.is_array() || (r.size() != 8 && r.size() != 9))  // 8: before the lr column
          throw MetadataRangeError("'metrics' row " + std::to_string(i + 1) + " is malformed");
        // JSON has no NaN: a non-finite metric (a diverged test loss) is written as null.
        auto metric = [](const nlohmann::json& row, size_t k) {
          return row.at(k).is_null() ? std::nan("") : json_real<double>(row, k);
        };
        EpochMetrics e;
        e.epoch = json_integer<int>(r, size_t(0), int(i + 1), int(i + 1));
        e.loss = metric(r, size_t(1));
        e.accuracy = metric(r, size_t(2));
        e.test_loss = metric(r, size_t(3));
        e.test_accuracy = metric(r, size_t(4));
        e.seconds = metric(r, size_t(5));
        e.images_per_second = metric(r, size_t(6));
        e.data_wait_seconds = metric(r, size_t(7));
        e.lr = r.size() > 8 ? metric(r, size_t(8)) : std::nan("");
        c.state.history.push_back(e);
      }
    }
    // Checkpoints written before the epoch order was a sort of Philox keys shuffled serially.
    const auto order = m.find("epoch_order");
    c.state.epoch_order = order == m.end() ? "fisher-yates" : order->second;
    // Checkpoints written before CIFAR-100 was read trained on CIFAR-10.
    const auto dataset = m.find("dataset");
    c.state.dataset = dataset == m.end() ? "cifar10" : dataset->second;
    if (c.state.dataset != "cifar10" && c.state.dataset != "cifar100" &&
        c.state.dataset != "folder")
      CP_USER_ERROR(path << ": bad checkpoint metadata: unknown dataset '" << c.state.dataset
                         << "'");
    // Checkpoints written before image folders were read name no classes (their data set's
    // built-in names apply) and no data folder.
    if (auto it = m.find("class_names"); it != m.end()) {
      const auto names = nlohmann::json::parse(it->second);
      if (!names.is_array() || names.size() > 65536)
        throw MetadataRangeError("'class_names' is not a list of names");
      for (const auto& name : names) c.state.class_names.push_back(name.get<std::string>());
    }
    if (auto it = m.find("data"); it != m.end()) c.state.data = it->second;
    if (c.state.dataset == "folder" && c.state.class_names.empty())
      throw MetadataRangeError("an image-folder run's checkpoint without its class names");
    // Checkpoints written before recipes existed trained without them.
    if (auto it = m.find("recipe"); it != m.end()) {
      const auto r = nlohmann::json::parse(it->second);
      c.state.label_smoothing = json_real<float>(r, "label_smoothing");
      if (!(c.state.label_smoothing >= 0.f && c.state.label_smoothing < 1.f))
        throw MetadataRangeError("'label_smoothing' is outside [0, 1)");
      if (r.contains("ema_decay")) c.state.ema_decay = json_real<float>(r, "ema_decay");
      if (!(c.state.ema_decay >= 0.f && c.state.ema_decay < 1.f))
        throw MetadataRangeError("'ema_decay' is outside [0, 1)");
      if (r.contains("eval_with")) c.state.eval_ema = r.at("eval_with").get<std::string>() != "raw";
    }
    // Checkpoints written before the input options existed used the defaults.
    if (auto it = m.find("input"); it != m.end()) {
      const auto in = nlohmann::json::parse(it->second);
      // Added with image folders: older checkpoints took CIFAR's 32x32 images.
      c.state.input.side =
          in.contains("side") ? json_integer<int>(in, "side", 1, kMaxInputSide) : kCifarSide;
      c.state.input.crop_pad = json_integer<int>(in, "crop_pad", 0, kMaxInputSide);
      c.state.input.flip = in.at("flip").get<bool>();
      // Added with reflect padding and cutout: older checkpoints had neither.
      c.state.input.reflect = in.contains("reflect") && in.at("reflect").get<bool>();
      c.state.input.cutout =
          in.contains("cutout") ? json_integer<int>(in, "cutout", 0, kMaxInputSide) : 0;
      const auto& mean = in.at("mean");
      const auto& sd = in.at("std");
      if (!mean.is_array() || !sd.is_array() || mean.size() != kCifarChannels ||
          sd.size() != kCifarChannels)
        CP_USER_ERROR(path << ": bad input metadata in checkpoint (mean/std need 3 values)");
      for (int k = 0; k < kCifarChannels; ++k) {
        c.state.input.mean[k] = json_real<float>(mean, size_t(k));
        c.state.input.std[k] = json_real<float>(sd, size_t(k));
      }
      try {
        validate(c.state.input);
      } catch (const Error& e) {
        CP_USER_ERROR(path << ": bad input metadata in checkpoint (" << e.what() << ")");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    CP_USER_ERROR(path << ": bad training state in checkpoint metadata (" << e.what() << ")");
  } catch (const MetadataRangeError& e) {
    CP_USER_ERROR(path << ": bad checkpoint metadata: " << e.what());
  }
  return c;
}

std::string describe_position(const TrainState& s) {
  const std::string step = ", step " + std::to_string(s.step);
  if (s.epoch_batches == 0)
    return s.epoch == 0 ? "before epoch 1" + step : "after epoch " + std::to_string(s.epoch) + step;
  return "in epoch " + std::to_string(s.epoch + 1) + " at batch " +
         std::to_string(s.epoch_batches) + step;
}

bool uses_ema_weights(const Checkpoint& ckpt, const std::string& choice) {
  return choice == "ema" || (choice == "auto" && ckpt.state.ema_decay > 0.f);
}

std::string describe_weights(const Checkpoint& ckpt, bool ema) {
  std::ostringstream os;
  if (ema)
    os << "ema (decay " << ckpt.state.ema_decay << ")";
  else
    os << "raw (as trained" << (ckpt.state.ema_decay > 0.f ? ", not the EMA" : "") << ")";
  return os.str();
}

std::unique_ptr<Graph> build_from_checkpoint(const Checkpoint& ckpt, const std::string& origin,
                                             const GraphOptions& opts, bool ema_weights) {
  ModelSpec spec = parse_model_text(ckpt.model_text, origin + " (model)");
  if (!ckpt.pool_override.empty()) apply_pool_override(spec, ckpt.pool_override);
  auto graph = Graph::build(spec, opts);
  restore_graph(ckpt, origin, *graph, false, ema_weights);
  return graph;
}

std::string format_note(const Checkpoint& ckpt, const std::string& origin) {
  if (ckpt.version >= kCheckpointVersion) return "";
  return "note: " + origin + " is a format-version-" + std::to_string(ckpt.version) +
         " checkpoint: its metadata is not covered by a checksum (saving again writes version " +
         std::to_string(kCheckpointVersion) + ")";
}

namespace {
// Copies the checkpoint's tensor `name` into base + p.offset on the graph's device.
void load_tensor(const Checkpoint& ckpt, const std::string& origin, const std::string& name,
                 const ParamInfo& p, float* base, Device device) {
  const NamedTensor* t = ckpt.file.find(name);
  if (!t) CP_USER_ERROR(origin << ": does not match the model: no tensor '" << name << "'");
  if (t->shape != dims_of(p))
    CP_USER_ERROR(origin << ": does not match the model: '" << name << "' has shape "
                         << dims_str(t->shape) << " in the checkpoint, " << dims_str(dims_of(p))
                         << " in the model");
  // A checkpoint is written only after a finite step (the trainer checks), so a NaN or an
  // infinity here was put there by something else; evaluating it would give loss nan.
  for (float v : t->data)
    if (!std::isfinite(v))
      CP_USER_ERROR(origin << ": tensor '" << name << "' holds a non-finite value (" << v
                           << "); the checkpoint is not usable");
  copy_bytes(base + p.offset, device, t->data.data(), Device::cpu, t->data.size() * sizeof(float));
}
}  // namespace

void restore_graph(const Checkpoint& ckpt, const std::string& origin, Graph& graph,
                   bool with_optimizer_state, bool ema_weights) {
  if (ema_weights && !(ckpt.state.ema_decay > 0.f))
    CP_USER_ERROR(origin << ": holds no EMA weights (it was trained without --ema)");
  std::unordered_set<std::string> expected;
  auto load = [&](const std::string& name, const ParamInfo& p, float* base) {
    expected.insert(name);
    load_tensor(ckpt, origin, name, p, base, graph.device());
  };
  for (auto& p : graph.param_infos()) {
    load((ema_weights ? kEmaPrefix : "") + p.name, p, graph.params());
    // The other set of weights is not read here (restore_ema reads the EMA's).
    expected.insert(ema_weights ? p.name : kEmaPrefix + p.name);
  }
  if (with_optimizer_state) {
    const auto prefixes = state_prefixes(ckpt.state.optimizer);
    for (size_t s = 0; s < prefixes.size(); ++s)
      for (auto& p : graph.param_infos())
        if (p.kind == ParamKind::trainable)
          load(prefixes[s] + p.name, p, graph.optimizer_state(int(s)));
  }
  for (auto& t : ckpt.file.tensors) {
    const bool optimizer = t.name.rfind("optim.", 0) == 0;
    if (optimizer && !with_optimizer_state) continue;
    if (!expected.count(t.name))
      CP_USER_ERROR(origin << ": does not match the model: unexpected tensor '" << t.name << "'");
  }
}

void restore_ema(const Checkpoint& ckpt, const std::string& origin, const Graph& graph,
                 float* ema) {
  if (!(ckpt.state.ema_decay > 0.f))
    CP_USER_ERROR(origin << ": holds no EMA weights (it was trained without --ema)");
  for (auto& p : graph.param_infos())
    load_tensor(ckpt, origin, kEmaPrefix + p.name, p, ema, graph.device());
}

}  // namespace convpool
