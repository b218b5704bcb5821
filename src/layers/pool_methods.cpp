// The host-side view of the pooling-method table (kernels/pool_methods.cuh): names, parameters
// with ranges and defaults, ONNX forms and study lists, generated from its rows.
#include <sstream>

#include "convpool/error.h"
#include "convpool/pool_methods.h"

namespace convpool {

namespace {

std::string number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream is(s);
  for (std::string item; is >> item;) out.push_back(item);
  return out;
}

#define CONVPOOL_POOL_PARAM_ROW(key, kind, def, lo, hi) \
  PoolParamSpec{#key, PoolParamSlot::key, PoolParamKind::kind, def, lo, hi}
#define CONVPOOL_POOL_SPEC_ROW(id, cls, onnx, study, inputs, definition, ...) \
  PoolMethodSpec{PoolMethod::id, #id,  cls, PoolOnnxForm::onnx, split_words(study),    \
                 PoolInputs::inputs, definition, {__VA_ARGS__}},

// Built on first use, so a static initialiser elsewhere never sees it empty.
const std::vector<PoolMethodSpec>& table() {
  static const std::vector<PoolMethodSpec> rows = {
      CONVPOOL_POOL_METHODS(CONVPOOL_POOL_SPEC_ROW, CONVPOOL_POOL_PARAM_ROW)};
  return rows;
}

#undef CONVPOOL_POOL_SPEC_ROW
#undef CONVPOOL_POOL_PARAM_ROW

const char* kind_name(PoolParamKind k) {
  switch (k) {
    case PoolParamKind::integer: return "integer";
    case PoolParamKind::real: return "real";
    case PoolParamKind::flag: return "flag";
  }
  return "?";
}

const char* onnx_name(PoolOnnxForm f) {
  switch (f) {
    case PoolOnnxForm::native: return "native";
    case PoolOnnxForm::patches: return "patches";
    case PoolOnnxForm::refused: return "refused";
  }
  return "?";
}

}  // namespace

std::string PoolParamSpec::text() const {
  std::string s = key + "=" + number(def);
  if (kind == PoolParamKind::flag) return s + " (0|1)";
  if (lo > -1e29 && hi < 1e29) s += " (" + number(lo) + ".." + number(hi) + ")";
  return s;
}

std::string PoolMethodSpec::params_text() const {
  std::string s;
  for (auto& p : params) s += (s.empty() ? "" : ", ") + p.text();
  return s;
}

bool PoolMethodSpec::has(PoolParamSlot slot) const {
  for (auto& p : params)
    if (p.slot == slot) return true;
  return false;
}

const std::vector<PoolMethodSpec>& pool_methods() { return table(); }

const PoolMethodSpec& pool_method(PoolMethod id) {
  const int i = int(id);
  const auto& rows = table();
  CP_CHECK(i >= 0 && i < int(rows.size()) && rows[size_t(i)].id == id,
           "pooling method id " << i << " is not in the table");
  return rows[size_t(i)];
}

const std::vector<PoolMethodAlias>& pool_method_aliases() {
#define CONVPOOL_POOL_ALIAS_ROW(alias, method, key, method_key, source) \
  PoolMethodAlias{#alias, PoolMethod::method, #key, #method_key, source},
  static const std::vector<PoolMethodAlias> rows = {CONVPOOL_POOL_ALIASES(CONVPOOL_POOL_ALIAS_ROW)};
#undef CONVPOOL_POOL_ALIAS_ROW
  return rows;
}

const PoolMethodAlias* find_pool_method_alias(const std::string& name) {
  for (auto& a : pool_method_aliases())
    if (a.name == name) return &a;
  return nullptr;
}

namespace {
const WindowPoolingOp* find_op_row(const std::vector<WindowPoolingOp>& rows,
                                   const std::string& name) {
  for (auto& op : rows)
    if (op.name == name) return &op;
  return nullptr;
}
}  // namespace

const std::vector<WindowPoolingOp>& window_pooling_ops() {
  static const std::vector<WindowPoolingOp> rows = {
      {"weighted_pool", "shared (flag, 0)",
       "learned weights over the window positions, softmax over each window's valid ones; "
       "per channel, or one set (shared=1); average pooling at the start"},
      {"lip_pool", "-",
       "local importance (LIP, light form): weights exp(gamma_c x) over each window's valid "
       "positions, gamma learned per channel; average pooling at the start"},
  };
  return rows;
}

const WindowPoolingOp* find_window_pooling_op(const std::string& name) {
  return find_op_row(window_pooling_ops(), name);
}

const std::vector<WindowPoolingOp>& other_pooling_ops() {
  static const std::vector<WindowPoolingOp> rows = {
      {"pyramid_pool", "sizes=1,3,5",
       "per-pixel pyramid (4P): max pooling at each odd size, stride 1, height and width kept, "
       "concatenated along channels"},
      {"intermap_pool", "groups=G [mode=max|mean]",
       "across maps: each group of G adjacent maps reduced to one, position by position"},
      {"spectral_pool", "[factor=2] [height=H width=W]",
       "spectral: each map's 2-D spectrum cropped to its lowest frequencies, H x W to "
       "ceil(H / factor) x ceil(W / factor) (any factor >= 1) or height x width"},
  };
  return rows;
}

const WindowPoolingOp* find_other_pooling_op(const std::string& name) {
  return find_op_row(other_pooling_ops(), name);
}

const std::vector<WindowPoolingOp>& global_encoder_ops() {
  static const std::vector<WindowPoolingOp> rows = {
      {"gem_pool", "[p=3] [shared=1] [eps=1e-6]",
       "generalised mean (GeM): (mean of max(x, eps)^p)^(1/p) per map, p > 1 learned (one, or "
       "one per map with shared=0); p near 1 is the average, large p tends to the max"},
      {"attention_pool", "[heads=1]",
       "softmax attention over positions: each head scores the positions by a learned 1x1 "
       "convolution and sums the maps with the softmax of its scores; heads x C features; "
       "average pooling at the start"},
      {"compact_bilinear", "[d=8192] [seed=1] [eps=1e-6] [algo=auto|gram|fft]",
       "compact bilinear pooling (Tensor Sketch): the count sketch in d bins of the maps' "
       "bilinear matrix summed over positions, signed square root, L2 normalised; d features, "
       "nothing learned; computed from the Gram matrix or by FFT (auto: the cheaper)"},
      {"spp_pool", "[levels=1,2,4] [mode=max|avg|vlad] [clusters=8]",
       "spatial pyramid pooling: each level's L x L cells of every map pooled by max or mean, "
       "levels concatenated; C (L1^2 + L2^2 + ...) features whatever the map's size; "
       "mode=vlad (multi-scale orderless pooling): each cell encoded by NetVLAD over K learned "
       "centres, K times the features"},
  };
  return rows;
}

const WindowPoolingOp* find_global_encoder_op(const std::string& name) {
  return find_op_row(global_encoder_ops(), name);
}

const PoolMethodSpec* find_pool_method(const std::string& name) {
  for (auto& m : table())
    if (m.name == name) return &m;
  return nullptr;
}

nlohmann::json pool_methods_json() {
  nlohmann::json out = nlohmann::json::array();
  for (auto& m : table()) {
    nlohmann::json params = nlohmann::json::array();
    for (auto& p : m.params)
      params.push_back({{"key", p.key},
                        {"kind", kind_name(p.kind)},
                        {"default", p.def},
                        {"min", p.lo},
                        {"max", p.hi}});
    nlohmann::json aliases = nlohmann::json::array();
    for (auto& a : pool_method_aliases())
      if (a.method == m.id)
        aliases.push_back({{"name", a.name}, {"key", a.key}, {"method_key", a.method_key},
                           {"source", a.source}});
    out.push_back({{"name", m.name},
                   {"id", int(m.id)},
                   {"python_class", m.python_class},
                   {"onnx", onnx_name(m.onnx)},
                   {"study", m.study},
                   {"nonneg_inputs", m.inputs == PoolInputs::nonneg},
                   {"definition", m.definition},
                   {"params", params},
                   {"aliases", aliases}});
  }
  return out;
}

std::string default_study_pools() {
  std::string s;
  for (auto& m : table())
    for (auto& run : m.study) s += (s.empty() ? "" : ",") + run;
  return s;
}

}  // namespace convpool
