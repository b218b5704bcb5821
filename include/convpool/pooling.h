// Pooling methods: the catalogue users choose from (`pool METHOD ...` in a model file, or
// `--pool METHOD[:key=value,...]` to override every pooling layer).
#pragma once
#include <string>
#include <vector>

#include "convpool/model.h"

namespace convpool {

struct PoolMethodInfo {
  std::string name;        // "avgtopk"
  std::string params;      // "k=2 (1..64)"
  std::string definition;  // one line
};
const std::vector<PoolMethodInfo>& pool_methods();

// Replaces the method (and method parameters) of every `pool` layer by `override`, e.g.
// "avgtopk:k=3" or "lp:p=3"; window size, stride and padding are kept.
void apply_pool_override(ModelSpec& spec, const std::string& override_text);

}  // namespace convpool
