// The model text format: one layer per line, `TYPE [positional...] [key=value...]`,
// '#' starts a comment. An optional `input channels=C height=H width=W` line sets the input.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include "convpool/error.h"
#include "convpool/file_io.h"
#include "convpool/model.h"

namespace convpool {

namespace {

std::vector<std::string> split_ws(const std::string& line) {
  std::istringstream is(line);
  std::vector<std::string> out;
  for (std::string tok; is >> tok;) out.push_back(tok);
  return out;
}

void parse_input_line(LayerSpec& spec, ModelSpec& model) {
  LayerArgs args(spec);
  model.input.c = args.get_int("channels", 3, 1, 4096);
  model.input.h = args.get_int("height", 32, 1, 4096);
  model.input.w = args.get_int("width", 32, 1, 4096);
  model.input.n = 1;
  if (!spec.positional.empty()) args.fail("unexpected word '" + spec.positional[0] + "'");
  args.finish();
}

}  // namespace

ModelSpec parse_model_text(const std::string& text, const std::string& origin) {
  // The same rules for a model file and for the model text a checkpoint carries.
  if (text.size() > kMaxModelFileBytes)
    CP_USER_ERROR(origin << ": model text is larger than " << (kMaxModelFileBytes >> 20) << " MiB");
  if (text.find('\0') != std::string::npos)
    CP_USER_ERROR(origin << ": not a text model file (contains NUL bytes)");
  ModelSpec model;
  model.text = text;
  std::istringstream is(text);
  std::string line;
  int lineno = 0;
  bool seen_layer = false;
  while (std::getline(is, line)) {
    ++lineno;
    const std::string where = origin + ":" + std::to_string(lineno);
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    auto tokens = split_ws(line);
    if (tokens.empty()) continue;
    LayerSpec spec;
    spec.where = where;
    spec.type = tokens[0];
    for (size_t i = 1; i < tokens.size(); ++i) {
      const std::string& t = tokens[i];
      auto eq = t.find('=');
      if (eq == std::string::npos) {
        spec.positional.push_back(t);
        continue;
      }
      if (eq == 0 || eq + 1 == t.size())
        CP_USER_ERROR(where << ": malformed argument '" << t << "' (expected key=value)");
      std::string key = t.substr(0, eq), value = t.substr(eq + 1);
      for (auto& [k, v] : spec.args)
        if (k == key) CP_USER_ERROR(where << ": argument '" << key << "' given twice");
      if (key == "name") {
        // Tensor names are "<layer>.weight", optimizer state "optim.m.<layer>.weight": a dot
        // in a layer name could make two tensors share a name in the checkpoint.
        if (value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789_-") != std::string::npos)
          CP_USER_ERROR(where << ": layer name '" << value
                              << "' may hold only letters, digits, '_' and '-'");
        spec.name = value;
        continue;
      }
      spec.args.emplace_back(key, value);
    }
    if (spec.type == "input") {
      if (seen_layer) CP_USER_ERROR(where << ": 'input' must come before the first layer");
      parse_input_line(spec, model);
      continue;
    }
    seen_layer = true;
    model.layers.push_back(std::move(spec));
  }
  if (model.layers.empty()) CP_USER_ERROR(origin << ": the model defines no layers");
  return model;
}

ModelSpec load_model_file(const std::string& path) {
  return parse_model_text(read_regular_file(path, kMaxModelFileBytes, "model file"), path);
}

// ---- LayerArgs ----

void LayerArgs::fail(const std::string& msg) const {
  std::string who = spec_.name.empty() ? spec_.type : spec_.type + " '" + spec_.name + "'";
  CP_USER_ERROR(spec_.where << ": " << who << ": " << msg);
}

bool LayerArgs::has(const std::string& key) const {
  for (auto& kv : spec_.args)
    if (kv.first == key) return true;
  return false;
}

const std::string* LayerArgs::find(const std::string& key) {
  known_.push_back(key);
  for (size_t i = 0; i < spec_.args.size(); ++i)
    if (spec_.args[i].first == key) {
      used_[i] = true;
      return &spec_.args[i].second;
    }
  return nullptr;
}

int LayerArgs::get_int(const std::string& key, int def, int min_value, int max_value) {
  const std::string* v = find(key);
  if (!v) return def;
  int out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size()) fail(key + "=" + *v + " is not an integer");
  if (out < min_value || out > max_value)
    fail(key + "=" + *v + " is out of range [" + std::to_string(min_value) + ", " +
         std::to_string(max_value) + "]");
  return out;
}

double LayerArgs::get_double(const std::string& key, double def, double min_value,
                             double max_value) {
  const std::string* v = find(key);
  if (!v) return def;
  double out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size() || !std::isfinite(out))
    fail(key + "=" + *v + " is not a finite number");
  if (out < min_value || out > max_value) {
    std::ostringstream os;
    os << key << "=" << *v << " is out of range [" << min_value << ", " << max_value << "]";
    fail(os.str());
  }
  return out;
}

std::string LayerArgs::get_string(const std::string& key, const std::string& def) {
  const std::string* v = find(key);
  return v ? *v : def;
}

std::string LayerArgs::get_choice(const std::string& key, const std::string& def,
                                  const std::vector<std::string>& choices) {
  const std::string* v = find(key);
  if (!v) return def;
  if (std::find(choices.begin(), choices.end(), *v) != choices.end()) return *v;
  std::string msg = key + "=" + *v + " is not one of:";
  for (auto& c : choices) msg += " " + c;
  std::string near = nearest_word(*v, choices);
  if (!near.empty()) msg += " (did you mean '" + near + "'?)";
  fail(msg);
}

void LayerArgs::finish() {
  for (size_t i = 0; i < spec_.args.size(); ++i) {
    if (used_[i]) continue;
    const std::string& key = spec_.args[i].first;
    std::string msg = "unknown argument '" + key + "'";
    std::string near = nearest_word(key, known_);
    if (!near.empty()) msg += " (did you mean '" + near + "'?)";
    fail(msg);
  }
}

std::string nearest_word(const std::string& word, const std::vector<std::string>& options) {
  // Edit distance counting a swap of neighbours as one edit ("trian" -> "train").
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i)
      for (size_t j = 1; j <= b.size(); ++j) {
        d[i][j] =
            std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
          d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    return d[a.size()][b.size()];
  };
  std::string best;
  size_t best_d = SIZE_MAX;
  for (auto& o : options) {
    size_t d = distance(word, o);
    if (d < best_d) best_d = d, best = o;
  }
  // Close enough to be a typo: at most a third of the word (and at least one edit) differs.
  return best_d <= std::max<size_t>(1, word.size() / 3) ? best : std::string();
}

}  // namespace convpool
