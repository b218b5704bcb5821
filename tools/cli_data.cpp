#include "cli_data.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "convpool/error.h"

namespace convpool::cli {

std::string data_title(DatasetKind kind, const std::string& dir) {
  return kind == DatasetKind::folder     ? "the image folder " + dir
         : kind == DatasetKind::cifar100 ? "CIFAR-100"
                                         : "CIFAR-10";
}
std::string data_title(const DataChoice& d) { return data_title(d.kind, d.dir); }

DatasetKind detect_dataset_kind(const std::string& data_flag, DatasetKind given) {
  return is_image_folder(data_flag) ? DatasetKind::folder : given;
}

namespace {
// The memory this process may use: the machine's, or less under a cgroup limit (a container,
// a batch job), whose share a "50%" budget must be of. cgroup v2: the smallest memory.max from
// the process's own cgroup up to the root; v1: the memory controller's limit.
size_t usable_memory_bytes() {
  size_t bytes = size_t(::sysconf(_SC_PHYS_PAGES)) * size_t(::sysconf(_SC_PAGESIZE));
  const auto take_limit = [&](const std::string& file) {
    std::FILE* f = std::fopen(file.c_str(), "r");
    if (!f) return;
    unsigned long long limit = 0;  // "max" (no limit) reads no number
    if (std::fscanf(f, "%llu", &limit) == 1 && limit > 0 && limit < bytes) bytes = size_t(limit);
    std::fclose(f);
  };
  // The process's cgroups: v2's "0::/path" and v1's memory controller "N:memory:/path".
  std::string v2, v1;
  if (std::FILE* f = std::fopen("/proc/self/cgroup", "r")) {
    char line[4096];
    while (std::fgets(line, sizeof line, f)) {
      std::string l = line;
      while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
      if (l.rfind("0::", 0) == 0) v2 = l.substr(3);
      const size_t at = l.find(":memory:");
      if (at != std::string::npos) v1 = l.substr(at + 8);
    }
    std::fclose(f);
  }
  // From the cgroup up to the root: a parent's limit binds its children.
  const auto walk = [&](std::string dir, const std::string& base, const std::string& file) {
    if (dir.empty() || dir[0] != '/') return;
    while (true) {
      take_limit(base + (dir == "/" ? std::string() : dir) + "/" + file);
      if (dir == "/") break;
      const size_t slash = dir.rfind('/');
      dir = slash == 0 ? "/" : dir.substr(0, slash);
    }
  };
  walk(v2, "/sys/fs/cgroup", "memory.max");
  walk(v1, "/sys/fs/cgroup/memory", "memory.limit_in_bytes");
  return bytes;
}
}  // namespace

size_t parse_memory_budget(const std::string& text) {
  const auto bad = [&] {
    CP_USER_ERROR(
        "--memory-budget must be a share of memory (50%) or a size (8G, 512M, 64K, "
        "bytes; 0: no limit), got '"
        << text << "'");
  };
  if (text.empty()) bad();
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    bad();
  }
  const std::string unit = text.substr(used);
  if (!(v >= 0) || !std::isfinite(v)) bad();
  if (unit == "%") {
    if (v > 100) bad();
    const double physical = double(usable_memory_bytes());
    return size_t(std::max(1.0, physical * v / 100));
  }
  double scale = 1;
  if (unit == "K" || unit == "k")
    scale = 1024.0;
  else if (unit == "M" || unit == "m")
    scale = 1024.0 * 1024;
  else if (unit == "G" || unit == "g")
    scale = 1024.0 * 1024 * 1024;
  else if (!unit.empty())
    bad();
  if (v * scale > 1e18) bad();
  return size_t(v * scale);
}

Dataset load_split(const DataChoice& d, const std::string& split, size_t limit, bool quiet) {
  if (d.kind != DatasetKind::folder) return load_dataset(d.kind, d.dir, split, limit);
  if (!d.folder) CP_FAIL("load_split: the image folder was not scanned");
  FolderLoadOptions o;
  o.side = d.side;
  o.cache_dir = d.cache_dir;
  o.memory_budget = d.memory_budget;
  const bool bar = !quiet && ::isatty(2);
  const std::string what = split == "train" ? "train/" : d.folder->test.name + "/";
  if (bar)
    o.progress = [&](size_t done, size_t total) {
      std::fprintf(stderr, "\rconvpool: decoding %s %s %zu/%zu", what.c_str(),
                   progress_bar(done, total, 24).c_str(), done, total);
      if (done == total) std::fprintf(stderr, "\n");
    };
  FolderLoadReport r;
  Dataset ds = load_image_folder(*d.folder, split, limit, o, &r);
  if (!quiet) {
    std::fprintf(stderr, "convpool: %s: %zu images at %dx%d (%zu decoded, %zu from the cache %s)",
                 what.c_str(), ds.size(), d.side, d.side, r.decoded, r.cached,
                 r.cache_path.c_str());
    if (r.converted) std::fprintf(stderr, "; %zu grey or alpha image(s) made RGB", r.converted);
    std::fprintf(stderr, "\n");
    if (r.streamed)
      std::fprintf(stderr,
                   "convpool: %s: %.1f MiB, over the memory budget of %.1f MiB: streamed from "
                   "the memory-mapped cache\n",
                   what.c_str(), double(ds.pixel_bytes()) / (1 << 20),
                   double(d.memory_budget) / (1 << 20));
  }
  if (!r.failures.empty()) {
    std::fprintf(stderr, "convpool: %s: left out %zu file(s) that could not be read:\n",
                 what.c_str(), r.failures.size());
    const size_t shown = std::min<size_t>(r.failures.size(), 10);
    for (size_t i = 0; i < shown; ++i) std::fprintf(stderr, "  %s\n", r.failures[i].c_str());
    if (shown < r.failures.size())
      std::fprintf(stderr, "  ... and %zu more (the cache's manifest lists them all)\n",
                   r.failures.size() - shown);
  }
  return ds;
}

std::vector<std::string> checkpoint_class_names(const TrainState& state) {
  if (!state.class_names.empty()) return state.class_names;
  return default_class_names(parse_dataset_kind(state.dataset));
}

DataChoice checkpoint_data(const TrainState& state, const std::string& data_flag,
                           const std::string& cache_dir) {
  DataChoice d;
  d.kind = parse_dataset_kind(state.dataset);
  d.side = state.input.side;
  d.classes = int(checkpoint_class_names(state).size());
  d.cache_dir = cache_dir;
  if (d.kind != DatasetKind::folder) {
    d.dir = resolve_data_dir(d.kind, data_flag);
    return d;
  }
  d.dir = data_flag.empty() ? state.data : data_flag;
  if (d.dir.empty())
    CP_USER_ERROR("the checkpoint's run trained on an image folder: pass --data DIR");
  if (!is_image_folder(d.dir))
    CP_USER_ERROR(
        "--data " << d.dir << ": not an image folder (no train/ folder there)"
                  << (data_flag.empty() ? "; the checkpoint's run read it: pass --data DIR" : ""));
  auto folder = std::make_shared<ImageFolder>(scan_image_folder(d.dir));
  if (folder->class_names != state.class_names) {
    size_t i = 0;
    while (i < folder->class_names.size() && i < state.class_names.size() &&
           folder->class_names[i] == state.class_names[i])
      ++i;
    CP_USER_ERROR(d.dir << " has " << folder->class_names.size() << " classes and the checkpoint "
                        << state.class_names.size() << "; they first differ at class " << i << " ('"
                        << (i < folder->class_names.size() ? folder->class_names[i] : "")
                        << "' vs '" << (i < state.class_names.size() ? state.class_names[i] : "")
                        << "')");
  }
  d.folder = std::move(folder);
  return d;
}

}  // namespace convpool::cli
