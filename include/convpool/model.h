// Model specifications: what a model file (or C++ code) says a network is, before shapes
// are inferred. See models/keras_cifar10.cfg for the text format.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "convpool/tensor.h"

namespace convpool {

// One layer line: `TYPE [positional...] [key=value...]`, e.g. `pool avgtopk k=2 size=2`.
// The keys every layer takes (name, in, lr_mult, wd_mult, frozen) are read into fields here;
// `args` holds the op's own.
struct LayerSpec {
  std::string type;
  std::string name;  // from `name=`, else assigned in file order (conv1, pool2, ...)
  // From `in=a` or `in=a,b`: the nodes whose outputs this layer reads ("input": the model's
  // input). Empty: the layer before it in the file (the input, for the first).
  std::vector<std::string> inputs;
  float lr_mult = 1.f, wd_mult = 1.f;  // multiply every parameter's own multipliers
  bool frozen = false;                  // the optimizer leaves this layer's parameters alone
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> args;
  std::string where;  // "file:line" (or "layer N" for specs built in code), prefixed to errors
};

struct ModelSpec {
  Shape input{1, 3, 32, 32};  // per-sample shape; n is ignored
  std::vector<LayerSpec> layers;
  std::string text;  // the model file text, kept for checkpoints and run directories
};

// Assigns TYPE<ordinal> names (conv1, pool2, ...) to layers without one, counting per type in
// file order. The parser does this; specs built in code get it from Graph::build.
void assign_default_names(std::vector<LayerSpec>& layers);

// Parses model text; errors are thrown as "ORIGIN:LINE: message". Besides layer lines, a block
//   repeat N
//     ...layer lines...
//   end
// stands for N copies of its lines, in which `$i` is the copy's number (1..N) and `$in` the
// name of the layer before that copy (the block's input): see models/resnet20.cfg.
ModelSpec parse_model_text(const std::string& text, const std::string& origin);
// Reads and parses a model file; a missing file is a one-line error.
ModelSpec load_model_file(const std::string& path);

// Typed, checked access to a LayerSpec's key=value arguments. Every argument must be read:
// finish() rejects unknown keys and suggests the nearest valid one.
class LayerArgs {
 public:
  explicit LayerArgs(const LayerSpec& spec) : spec_(spec), used_(spec.args.size(), false) {}
  int get_int(const std::string& key, int def, int min_value, int max_value);
  double get_double(const std::string& key, double def, double min_value, double max_value);
  std::string get_choice(const std::string& key, const std::string& def,
                         const std::vector<std::string>& choices);
  std::string get_string(const std::string& key, const std::string& def);
  bool has(const std::string& key) const;
  void finish();  // throws on unread keys
  [[noreturn]] void fail(const std::string& msg) const;

 private:
  const std::string* find(const std::string& key);
  const LayerSpec& spec_;
  std::vector<bool> used_;
  std::vector<std::string> known_;
};

// The nearest string to `word` among `options` by edit distance, or "" if none is close.
std::string nearest_word(const std::string& word, const std::vector<std::string>& options);

}  // namespace convpool
