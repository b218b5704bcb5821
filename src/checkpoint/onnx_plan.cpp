// The ONNX export plan (convpool/onnx_plan.h). Attributes are read from each layer's
// model-file spec with the same defaults the layers use, and checked against the shapes the
// built graph inferred, so a disagreement is refused instead of exported wrongly.
#include "convpool/onnx_plan.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "convpool/error.h"
#include "convpool/model.h"
#include "convpool/pooling.h"
#include "kernels/compact_bilinear_math.cuh"
#include "kernels/spectral_pool_math.cuh"

namespace convpool {

namespace {

nlohmann::json dims(const Shape& s) { return {s.c, s.h, s.w}; }

struct NodeContext {
  const Layer& layer;
  std::vector<Shape> in;
  Shape out;
  [[noreturn]] void refuse(const std::string& why) const {
    const LayerSpec& s = layer.spec();
    CP_USER_ERROR("cannot export to ONNX: " << s.where << ": " << s.type << " '" << s.name
                                            << "': " << why);
  }
};

// Pads [top, left, bottom, right] that reproduce the graph's output size from the CPU
// backend's top/left padding: "same" may pad one more at the bottom/right (TensorFlow's rule).
nlohmann::json conv_pads(const NodeContext& c, const std::string& padding, int kh, int kw,
                         int sh, int sw) {
  const Shape& in = c.in[0];
  int pt = 0, pl = 0, pb = 0, pr = 0;
  if (padding == "same") {
    const int th = std::max(0, (c.out.h - 1) * sh + kh - in.h);
    const int tw = std::max(0, (c.out.w - 1) * sw + kw - in.w);
    pt = th / 2, pb = th - pt, pl = tw / 2, pr = tw - pl;
  } else if (padding != "valid") {
    pt = pb = pl = pr = std::atoi(padding.c_str());
  }
  const int oh = (in.h + pt + pb - kh) / sh + 1, ow = (in.w + pl + pr - kw) / sw + 1;
  if (oh != c.out.h || ow != c.out.w)
    c.refuse("padding=" + padding + " gives " + std::to_string(oh) + "x" + std::to_string(ow) +
             " in ONNX but " + std::to_string(c.out.h) + "x" + std::to_string(c.out.w) +
             " in convpool");
  return {pt, pl, pb, pr};
}

// The pool layer's own parsed parameters (never the model file read again), with the ONNX
// form the method table gives it.
nlohmann::json pool_attrs(const NodeContext& c) {
  const PoolLayerConfig* cfg = pool_layer_config(c.layer);
  if (!cfg) c.refuse("is not a pool layer");
  const PoolMethodSpec& m = *cfg->method;
  if (m.onnx == PoolOnnxForm::refused) c.refuse("pooling method '" + m.name + "' has no ONNX form");
  nlohmann::json j = {{"method", m.name}, {"global", cfg->global}};
  const Shape& in = c.in[0];
  int k = 0, st = 0;
  if (cfg->global) {
    j["kernel"] = {in.h, in.w}, j["stride"] = {in.h, in.w}, j["pad"] = {0, 0};
  } else {
    k = cfg->kh, st = cfg->sh;
    j["kernel"] = {k, k}, j["stride"] = {st, st}, j["pad"] = {cfg->ph, cfg->ph};
  }
  j["k"] = int(cfg->param(PoolParamSlot::k));
  j["p"] = cfg->param(PoolParamSlot::p);
  j["t"] = cfg->param(PoolParamSlot::t);
  j["include_pad"] = cfg->param(PoolParamSlot::include_pad) == 1;
  j["learned"] = cfg->param(PoolParamSlot::learned) == 1;
  j["a"] = cfg->param(PoolParamSlot::a);
  // Methods computed from explicit patches: one Slice per window offset when windows overlap.
  const bool overlap = !cfg->global && st < k && (c.out.h > 1 || c.out.w > 1);
  if (m.onnx == PoolOnnxForm::patches && overlap && k * k > kOnnxMaxWindowOffsets)
    c.refuse("overlapping " + m.name + " windows of " + std::to_string(k) + "x" +
             std::to_string(k) + " would need " + std::to_string(k * k) +
             " Slice nodes; the exporter takes at most " + std::to_string(kOnnxMaxWindowOffsets) +
             " window offsets (use stride >= size)");
  return j;
}

nlohmann::json node_attrs(const NodeContext& c) {
  const LayerSpec& s = c.layer.spec();
  LayerArgs a(s);
  const std::string& t = s.type;
  if (t == "conv") {
    const int kh0 = a.get_int("size", 3, 1, 64);
    const int kh = a.get_int("size_h", kh0, 1, 64), kw = a.get_int("size_w", kh0, 1, 64);
    const int st = a.get_int("stride", 1, 1, 64);
    const std::string padding = a.get_string("padding", "valid");
    return {{"kernel", {kh, kw}}, {"stride", {st, st}},
            {"pads", conv_pads(c, padding, kh, kw, st, st)}, {"filters", c.out.c}};
  }
  if (t == "dense") return {{"units", c.out.c}};
  if (t == "pool") return pool_attrs(c);
  if (t == "batchnorm") return {{"eps", a.get_double("eps", 1e-5, 1e-12, 1.0)}};
  if (t == "leaky_relu") return {{"slope", a.get_double("slope", 0.01, 0.0, 1.0)}};
  if (t == "scale") return {{"factor", a.get_double("factor", 1.0, -1e6, 1e6)}};
  if (t == "dropout") return {{"p", a.get_double("p", 0.5, 0.0, 0.99)}};
  if (t == "pyramid_pool") return {{"sizes", a.get_string("sizes", "")}};
  if (t == "intermap_pool")
    return {{"groups", a.get_int("groups", 2, 1, 4096)},
            {"mode", a.get_choice("mode", "max", {"max", "mean"})}};
  if (t == "lip_pool") {
    const int k = a.get_int("size", 2, 1, 8);
    return {{"size", k},
            {"stride", a.get_int("stride", k, 1, 1024)},
            {"pad", a.get_int("pad", 0, 0, 4)}};
  }
  if (t == "gem_pool")
    return {{"eps", a.get_double("eps", 1e-6, 1e-30, 1.0)},
            {"shared", a.get_int("shared", 1, 0, 1) == 1}};
  if (t == "attention_pool") return {{"heads", a.get_int("heads", 1, 1, 64)}};
  if (t == "spp_pool") {
    nlohmann::json levels = nlohmann::json::array();
    std::istringstream is(a.get_string("levels", "1,2,4"));
    for (std::string item; std::getline(is, item, ',');) levels.push_back(std::stoi(item));
    const std::string mode = a.get_choice("mode", "max", {"max", "avg", "vlad"});
    return {{"levels", levels},
            {"mode", mode},
            {"clusters", mode == "vlad" ? a.get_int("clusters", 8, 1, 64) : 0}};
  }
  if (t == "spectral_pool") {
    // The two matrices, rows: A_h (h x H) and A_w (w x W).
    const Shape& in = c.in[0];
    nlohmann::json rows = nlohmann::json::array(), cols = nlohmann::json::array();
    for (int m = 0; m < c.out.h; ++m)
      for (int r = 0; r < in.h; ++r) rows.push_back(spectral_pool_weight(c.out.h, in.h, m, r));
    for (int q = 0; q < c.out.w; ++q)
      for (int n = 0; n < in.w; ++n) cols.push_back(spectral_pool_weight(c.out.w, in.w, q, n));
    return {{"rows", rows}, {"cols", cols}};
  }
  if (t == "compact_bilinear") {
    // The hashes as tables: each channel's bin and sign in both sketches.
    const int d = a.get_int("d", 8192, 2, 1 << 20);
    const double eps = a.get_double("eps", 1e-6, 1e-30, 1.0);
    const CompactBilinearSketch sk =
        compact_bilinear_sketch(uint64_t(a.get_int("seed", 1, 0, 2147483647)), d, float(eps));
    nlohmann::json j = {{"d", d}, {"eps", eps}};
    for (const auto& [key, h] : {std::pair{"1", &sk.h1}, std::pair{"2", &sk.h2}}) {
      nlohmann::json bins = nlohmann::json::array(), signs = nlohmann::json::array();
      for (int i = 0; i < c.in[0].c; ++i) {
        bins.push_back(sketch_bin(*h, uint32_t(i)));
        signs.push_back(int(sketch_sign(*h, uint32_t(i))));
      }
      j[std::string("bin") + key] = bins;
      j[std::string("sign") + key] = signs;
    }
    return j;
  }
  if (t == "weighted_pool") {
    const int k = a.get_int("size", 2, 1, 8);
    return {{"size", k},
            {"stride", a.get_int("stride", k, 1, 1024)},
            {"pad", a.get_int("pad", 0, 0, 4)},
            {"shared", a.get_int("shared", 0, 0, 1) == 1}};
  }
  return nlohmann::json::object();  // relu, flatten, add, concat, gelu
}

// The pool layer's geometry keys and every method parameter of the table.
std::vector<std::string> pool_arg_keys() {
  std::vector<std::string> keys = {"method", "size", "stride", "pad"};
  for (const PoolMethodSpec& m : pool_methods())
    for (const PoolParamSpec& p : m.params)
      if (std::find(keys.begin(), keys.end(), p.key) == keys.end()) keys.push_back(p.key);
  return keys;
}

}  // namespace

const OnnxOpTable& onnx_op_table() {
  static const OnnxOpTable table = {
      {"conv", {"filters", "size", "size_h", "size_w", "stride", "padding", "bias", "init"}},
      {"dense", {"units", "bias"}},
      {"pool", pool_arg_keys()},
      {"relu", {}},
      {"flatten", {}},
      {"batchnorm", {"momentum", "eps"}},
      {"add", {}},
      {"concat", {}},
      {"dropout", {"p"}},
      {"gelu", {}},
      {"leaky_relu", {"slope"}},
      {"scale", {"factor"}},
      {"intermap_pool", {"groups", "mode"}},
      {"pyramid_pool", {"sizes"}},
      {"weighted_pool", {"size", "stride", "pad", "shared"}},
      {"lip_pool", {"size", "stride", "pad"}},
      {"gem_pool", {"p", "shared", "eps"}},
      {"attention_pool", {"heads"}},
      {"compact_bilinear", {"d", "seed", "eps", "algo"}},  // algo: the same function
      {"spectral_pool", {"factor", "height", "width"}},
      {"spp_pool", {"levels", "mode", "clusters"}},
  };
  return table;
}

nlohmann::json onnx_export_plan(const Graph& graph, const Checkpoint& ckpt,
                                const OnnxOpTable& table, bool ema) {
  auto value_name = [&](int v) { return v == 0 ? std::string("input") : graph.layer(size_t(v - 1)).name(); };
  nlohmann::json nodes = nlohmann::json::array();
  for (size_t i = 0; i < graph.num_layers(); ++i) {
    const Layer& L = graph.layer(i);
    NodeContext c{L, {}, graph.layer_output_shape(i)};
    nlohmann::json inputs = nlohmann::json::array(), in_shapes = nlohmann::json::array();
    for (int v : graph.node_inputs(i)) {
      const Shape s = v == 0 ? graph.input_shape(1) : graph.layer_output_shape(size_t(v - 1));
      c.in.push_back(s);
      inputs.push_back(value_name(v));
      in_shapes.push_back(dims(s));
    }
    const auto row = table.find(L.type());
    if (row == table.end()) c.refuse("layer type '" + L.type() + "' has no ONNX mapping");
    for (auto& [key, value] : L.spec().args)
      if (std::find(row->second.begin(), row->second.end(), key) == row->second.end())
        c.refuse("option " + key + "=" + value + " is not supported by the ONNX exporter");
    if (L.type() != "pool")
      for (auto& w : L.spec().positional) c.refuse("unexpected word '" + w + "'");
    nlohmann::json params = nlohmann::json::object();
    for (const ParamInfo& p : graph.param_infos())
      if (p.layer == int(i))
        params[p.name.substr(L.name().size() + 1)] = (ema ? kCheckpointEmaPrefix : "") + p.name;
    nodes.push_back({{"name", L.name()},
                     {"type", L.type()},
                     {"where", L.spec().where},
                     {"inputs", inputs},
                     {"in_shapes", in_shapes},
                     {"shape", dims(c.out)},
                     {"attrs", node_attrs(c)},
                     {"params", params}});
  }
  const InputTransform& t = ckpt.state.input;
  const bool identity =
      std::all_of(t.mean, t.mean + kCifarChannels, [](float m) { return m == 0.f; }) &&
      std::all_of(t.std, t.std + kCifarChannels, [](float s) { return s == 1.f; });
  nlohmann::json normalize = nullptr;
  if (!identity) {
    if (graph.input_shape(1).c != kCifarChannels)
      CP_USER_ERROR("cannot export to ONNX: the checkpoint normalises "
                    << kCifarChannels << " channels but the model takes "
                    << graph.input_shape(1).c);
    normalize = {{"mean", std::vector<float>(t.mean, t.mean + kCifarChannels)},
                 {"std", std::vector<float>(t.std, t.std + kCifarChannels)}};
  }
  return {{"format", "convpool-onnx-plan"},
          {"version", 1},
          {"opset", kOnnxOpset},
          {"input", dims(graph.input_shape(1))},
          {"normalize", normalize},
          {"output", graph.num_layers() ? graph.layer(graph.num_layers() - 1).name() : "input"},
          {"output_shape", dims(graph.output_shape(1))},
          {"weights", ema ? "ema" : "raw"},
          {"nodes", nodes}};
}

}  // namespace convpool
