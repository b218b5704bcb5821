// libFuzzer target: model text is parsed and, when it parses, built into a graph (with a
// small memory cap); any failure must be an Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto spec =
        convpool::parse_model_text(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    convpool::GraphOptions opts;
    opts.batch = 2;
    opts.max_arena_bytes = 64u << 20;
    convpool::Graph::build(spec, opts);
  } catch (const convpool::Error&) {
  }
  return 0;
}
