// One op is one name: for every op in the registry, a search of the tree for its name finds
// its layer, its CPU kernel, its CUDA kernel and launcher, and its tests. A new op that lands
// without one of them, or under another name, fails here.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "convpool/layer.h"
#include "convpool/model.h"

using namespace convpool;
namespace fs = std::filesystem;

namespace {

// Files below `dir` (relative to the source tree) named `stem` + one of `exts`, or
// `stem` + "_" + anything + one of `exts` (pool_small.cu, conv_cudnn.cpp): the op's own stem, so
// relu does not count leaky_relu's files, nor a file that merely starts with "relu".
std::vector<std::string> files_named(const std::string& dir, const std::string& stem,
                                     const std::vector<std::string>& exts) {
  std::vector<std::string> found;
  const fs::path root = fs::path(CONVPOOL_SOURCE_DIR) / dir;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file()) continue;
    for (const auto& ext : exts) {
      const bool exact = name == stem + ext;
      const bool family = name.rfind(stem + "_", 0) == 0 && name.size() > stem.size() + ext.size() &&
                          name.compare(name.size() - ext.size(), ext.size(), ext) == 0;
      if (exact || family) found.push_back(fs::relative(e.path(), CONVPOOL_SOURCE_DIR).string());
    }
  }
  return found;
}

// A view (flatten) computes nothing: its output is its input's memory, so it has no kernel on
// either backend. Decided by the layer itself, not by a list kept here.
bool is_view(const OpInfo& op) {
  const OpExample& e = op.examples.at(0);
  const std::string text = "input channels=" + std::to_string(e.inputs[0].c) +
                           " height=" + std::to_string(e.inputs[0].h) +
                           " width=" + std::to_string(e.inputs[0].w) + "\n" + e.line + "\n";
  const ModelSpec spec = parse_model_text(text, "example");
  return make_layer(spec.layers.at(0))->aliases_input();
}

TEST(OpLayout, EveryOpHasItsFilesUnderItsOwnName) {
  for (const OpInfo& op : op_registry()) {
    const std::string& n = op.name;
    EXPECT_TRUE(fs::exists(fs::path(CONVPOOL_SOURCE_DIR) / "src/layers" / (n + ".cpp")))
        << n << ": no layer file src/layers/" << n << ".cpp";
    EXPECT_FALSE(files_named("tests", "test_" + n, {".cpp"}).empty() &&
                 files_named("tests", "kernel_parity_" + n, {".cpp"}).empty())
        << n << ": no tests/test_" << n << "*.cpp or tests/kernel_parity_" << n << "*.cpp";
    if (is_view(op)) continue;
    EXPECT_FALSE(files_named("src/cpu", n, {".cpp"}).empty())
        << n << ": no CPU kernel src/cpu/" << n << "*.cpp";
    EXPECT_FALSE(files_named("kernels", n, {".cu"}).empty() &&
                 files_named("src/cuda", n, {".cpp", ".cu"}).empty())
        << n << ": no CUDA kernel kernels/" << n << "*.cu (or src/cuda/" << n << "*.cpp)";
    EXPECT_FALSE(files_named("kernels", n, {".cuh"}).empty() &&
                 files_named("src/cuda", n, {".h"}).empty())
        << n << ": no launcher header kernels/" << n << "*.cuh (or src/cuda/" << n << "*.h)";
  }
}

TEST(OpLayout, OnlyFlattenIsAView) {
  // The view exemption above must not swallow an op that computes something.
  for (const OpInfo& op : op_registry()) EXPECT_EQ(is_view(op), op.name == "flatten") << op.name;
}

}  // namespace
