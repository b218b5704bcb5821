// The model text format: one layer per line, `TYPE [positional...] [key=value...]`,
// '#' starts a comment. An optional `input channels=C height=H width=W` line sets the input.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
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

}  // namespace

void assign_default_names(std::vector<LayerSpec>& layers) {
  std::map<std::string, int> type_count;
  for (auto& ls : layers) {
    const int ordinal = ++type_count[ls.type];
    if (ls.name.empty()) ls.name = ls.type + std::to_string(ordinal);
  }
}

namespace {

// A non-empty line with its comment removed, where it came from, and (inside a repeat block)
// which copy it is.
struct SourceLine {
  std::vector<std::string> tokens;
  std::string where;
};

// Tensor names are "<layer>.weight", optimizer state "optim.m.<layer>.weight": a dot in a
// layer name could make two tensors share a name in the checkpoint.
void check_layer_name(const std::string& value, const std::string& where) {
  if (value.empty() || value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
                                               "XYZ0123456789_-") != std::string::npos)
    CP_USER_ERROR(where << ": layer name '" << value
                        << "' may hold only letters, digits, '_' and '-'");
}

float parse_multiplier(const std::string& key, const std::string& value, const std::string& where) {
  double out = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || p != value.data() + value.size() || !std::isfinite(out) || out < 0 ||
      out > 1e3)
    CP_USER_ERROR(where << ": " << key << "=" << value << " is not a number in [0, 1000]");
  return float(out);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// Marks `$in` until names are known: "\x01<index of the layer before the copy>".
constexpr char kBlockInputMark = '\x01';

LayerSpec parse_layer_line(const SourceLine& line) {
  LayerSpec spec;
  spec.where = line.where;
  spec.type = line.tokens[0];
  if (const size_t eq = spec.type.find('='); eq != std::string::npos)
    CP_USER_ERROR(line.where << ": '" << spec.type << "' on a line of its own: a line starts with "
                             << "a layer type (conv, pool, ...), and " << spec.type.substr(0, eq)
                             << "= belongs on its layer's line");
  for (size_t i = 1; i < line.tokens.size(); ++i) {
    const std::string& t = line.tokens[i];
    auto eq = t.find('=');
    if (eq == std::string::npos) {
      spec.positional.push_back(t);
      continue;
    }
    if (eq == 0 || eq + 1 == t.size())
      CP_USER_ERROR(line.where << ": malformed argument '" << t << "' (expected key=value)");
    std::string key = t.substr(0, eq), value = t.substr(eq + 1);
    for (size_t j = 1; j < i; ++j)
      if (line.tokens[j].rfind(key + "=", 0) == 0)
        CP_USER_ERROR(line.where << ": argument '" << key << "' given twice");
    if (key != "in" && value.find(kBlockInputMark) != std::string::npos)
      CP_USER_ERROR(line.where << ": $in may only be used in in=");
    if (key == "name") {
      check_layer_name(value, line.where);
      spec.name = value;
    } else if (key == "in") {
      std::istringstream is(value);
      for (std::string name; std::getline(is, name, ',');) {
        if (name.empty()) CP_USER_ERROR(line.where << ": in=" << value << " has an empty name");
        spec.inputs.push_back(name);
      }
      // getline drops a last empty name: "in=a,b," would read as "in=a,b".
      if (value.empty() || value.back() == ',')
        CP_USER_ERROR(line.where << ": in=" << value << " has an empty name");
    } else if (key == "lr_mult" || key == "wd_mult") {
      (key == "lr_mult" ? spec.lr_mult : spec.wd_mult) = parse_multiplier(key, value, line.where);
    } else if (key == "frozen") {
      if (value != "0" && value != "1")
        CP_USER_ERROR(line.where << ": frozen=" << value << " is not 0 or 1");
      spec.frozen = value == "1";
    } else {
      spec.args.emplace_back(key, value);
    }
  }
  return spec;
}

}  // namespace

ModelSpec parse_model_text(const std::string& text, const std::string& origin) {
  // The same rules for a model file and for the model text a checkpoint carries.
  if (text.size() > kMaxModelFileBytes)
    CP_USER_ERROR(origin << ": model text is larger than " << (kMaxModelFileBytes >> 20) << " MiB");
  if (text.find('\0') != std::string::npos)
    CP_USER_ERROR(origin << ": not a text model file (contains NUL bytes)");
  if (text.rfind("\xEF\xBB\xBF", 0) == 0)
    CP_USER_ERROR(origin << ": starts with a UTF-8 byte-order mark (bytes EF BB BF); save it as "
                            "UTF-8 without one");
  if (text.find(kBlockInputMark) != std::string::npos)
    CP_USER_ERROR(origin << ": not a text model file (contains control characters)");
  ModelSpec model;
  model.text = text;
  std::istringstream is(text);
  std::string line;
  int lineno = 0;
  bool seen_layer = false;
  // An open repeat block: its count, where it began, and its lines so far.
  int repeat_count = 0;
  std::string repeat_where;
  std::string input_where;  // where the input line is, once read
  std::vector<SourceLine> block;
  auto add_layer = [&](const SourceLine& src) {
    LayerSpec spec = parse_layer_line(src);
    if (spec.type == "input") {
      if (seen_layer) CP_USER_ERROR(src.where << ": 'input' must come before the first layer");
      if (!input_where.empty())
        CP_USER_ERROR(src.where << ": a second 'input' line (the first is at " << input_where
                                << ")");
      input_where = src.where;
      LayerArgs args(spec);
      model.input.c = args.get_int("channels", 3, 1, 4096);
      model.input.h = args.get_int("height", 32, 1, 4096);
      model.input.w = args.get_int("width", 32, 1, 4096);
      model.input.n = 1;
      if (!spec.positional.empty()) args.fail("unexpected word '" + spec.positional[0] + "'");
      args.finish();
      return;
    }
    seen_layer = true;
    model.layers.push_back(std::move(spec));
    if (model.layers.size() > 100000)
      CP_USER_ERROR(src.where << ": the model has more than 100000 layers");
  };
  while (std::getline(is, line)) {
    ++lineno;
    const std::string where = origin + ":" + std::to_string(lineno);
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    SourceLine src{split_ws(line), where};
    if (src.tokens.empty()) continue;
    if (src.tokens[0] == "repeat") {
      if (repeat_count) CP_USER_ERROR(where << ": repeat blocks do not nest");
      int count = 0;
      const std::string n = src.tokens.size() == 2 ? src.tokens[1] : "";
      auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), count);
      if (n.empty() || ec != std::errc() || p != n.data() + n.size() || count < 1 || count > 1000)
        CP_USER_ERROR(where << ": expected 'repeat N' with N in [1, 1000]");
      repeat_count = count;
      repeat_where = where;
      block.clear();
      continue;
    }
    if (src.tokens[0] == "end") {
      if (!repeat_count) CP_USER_ERROR(where << ": 'end' without 'repeat'");
      if (src.tokens.size() != 1) CP_USER_ERROR(where << ": unexpected word after 'end'");
      if (block.empty()) CP_USER_ERROR(repeat_where << ": the repeat block is empty");
      for (int copy = 1; copy <= repeat_count; ++copy) {
        const std::string before =
            std::string(1, kBlockInputMark) + std::to_string(int(model.layers.size()) - 1);
        for (const SourceLine& b : block) {
          SourceLine c;
          c.where = b.where + " (copy " + std::to_string(copy) + " of the repeat block)";
          for (auto& t : b.tokens)
            c.tokens.push_back(replace_all(replace_all(t, "$in", before), "$i", std::to_string(copy)));
          if (c.tokens[0] == "input") CP_USER_ERROR(b.where << ": 'input' inside a repeat block");
          add_layer(c);
        }
      }
      repeat_count = 0;
      continue;
    }
    if (repeat_count) {
      block.push_back(std::move(src));
      continue;
    }
    if (line.find('$') != std::string::npos)
      CP_USER_ERROR(where << ": $i and $in may only be used inside a repeat block");
    add_layer(src);
  }
  if (repeat_count) CP_USER_ERROR(repeat_where << ": repeat block without 'end'");
  if (model.layers.empty()) CP_USER_ERROR(origin << ": the model defines no layers");
  assign_default_names(model.layers);
  // Now that every layer has a name, `$in` becomes the name of the layer before its copy.
  for (auto& ls : model.layers) {
    check_layer_name(ls.name, ls.where);
    for (auto& in : ls.inputs) {
      const auto mark = in.find(kBlockInputMark);
      if (mark == std::string::npos) continue;
      if (mark != 0 || in.find(kBlockInputMark, 1) != std::string::npos)
        CP_USER_ERROR(ls.where << ": $in must be a whole input name");
      const int before = std::stoi(in.substr(1));
      in = before < 0 ? std::string("input") : model.layers[size_t(before)].name;
    }
  }
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
