// convpool bench checkpoint: save and load time of checkpoints with many tensors, to show that
// both scale linearly (a 45,000-layer model once took two minutes per save: quadratic inserts
// into an ordered JSON map). Times the production path: encode, atomic write with fsync,
// safe read, decode with checksums, and one lookup per tensor as restore_graph does.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "cli_common.h"
#include "convpool/error.h"
#include "convpool/safetensors.h"

namespace convpool::cli {

namespace {

struct CheckpointTiming {
  int tensors = 0;
  double save_ms = 0, load_ms = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

CheckpointTiming time_checkpoint(int count, int reps, const std::string& path) {
  std::vector<NamedTensor> tensors;
  for (int i = 0; i < count; ++i)
    tensors.push_back({"layer" + std::to_string(i) + ".weight", {4, 4}, std::vector<float>(16, 0.5f)});
  const std::map<std::string, std::string> meta = {{"model", std::string(size_t(count) * 24, 'x')}};
  std::vector<double> save, load;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    write_file_atomic(path, encode_safetensors(tensors, meta));
    auto t1 = std::chrono::steady_clock::now();
    const SafetensorsFile f =
        decode_safetensors(read_regular_file(path, kMaxCheckpointBytes, "checkpoint"), path);
    for (const NamedTensor& t : tensors)
      if (!f.find(t.name)) CP_FAIL("tensor " << t.name << " lost in the round trip");
    auto t2 = std::chrono::steady_clock::now();
    save.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    load.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  return {count, median(save), median(load)};
}

}  // namespace

int bench_checkpoint(const std::vector<int>& counts, int reps, bool json) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("convpool-bench-" + std::to_string(::getpid()) + ".safetensors"))
                               .string();
  std::vector<CheckpointTiming> rows;
  for (int n : counts) rows.push_back(time_checkpoint(n, reps, path));
  std::filesystem::remove(path);
  if (json) {
    nlohmann::ordered_json j = nlohmann::json::array();
    for (auto& r : rows) j.push_back({{"tensors", r.tensors}, {"save_ms", r.save_ms}, {"load_ms", r.load_ms}});
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%9s %10s %10s %14s %14s\n", "tensors", "save ms", "load ms", "save vs first",
              "load vs first");
  for (auto& r : rows)
    std::printf("%9d %10.2f %10.2f %13.2fx %13.2fx\n", r.tensors, r.save_ms, r.load_ms,
                r.save_ms / rows[0].save_ms, r.load_ms / rows[0].load_ms);
  std::printf("(median of %d; linear scaling is %.0fx for the last row)\n", reps,
              double(rows.back().tensors) / rows[0].tensors);
  return 0;
}

}  // namespace convpool::cli
