#include "test_helpers.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

#include "convpool/data.h"
#include "convpool/error.h"
#include "layer_harness.h"

namespace convpool::test {

TempDir::TempDir() {
  const auto base = std::filesystem::temp_directory_path();
  path = base / ("convpool-test-" + std::to_string(fresh_seed()));
  std::filesystem::create_directories(path);
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}
std::string TempDir::str(const std::string& name) const {
  return name.empty() ? path.string() : (path / name).string();
}

void write_cifar_file(const std::string& path, int records, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::ofstream f(path, std::ios::binary);
  std::vector<uint8_t> rec(kCifarRecordBytes);
  for (int r = 0; r < records; ++r) {
    rec[0] = uint8_t(rng() % kCifarClasses);
    for (int i = 1; i < kCifarRecordBytes; ++i) rec[i] = uint8_t(rng());
    f.write(reinterpret_cast<const char*>(rec.data()), rec.size());
  }
}

void write_cifar_dir(const std::string& dir, int per_batch, uint64_t seed) {
  std::filesystem::create_directories(dir);
  for (int b = 1; b <= 5; ++b)
    write_cifar_file(dir + "/data_batch_" + std::to_string(b) + ".bin", per_batch, seed + b);
  write_cifar_file(dir + "/test_batch.bin", per_batch, seed + 99);
  std::ofstream meta(dir + "/batches.meta.txt");
  for (const char* n :
       {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"})
    meta << n << "\n";
}

std::string real_cifar_dir() {
  const char* env = std::getenv("CIFAR10_DIR");
  if (!env || !*env) return "";
  for (std::string d : {std::string(env), std::string(env) + "/cifar-10-batches-bin"})
    if (std::filesystem::exists(d + "/data_batch_1.bin")) return d;
  return "";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

CommandResult run_command(const std::string& cmd) {
  CommandResult r{-1, ""};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t got;
  while ((got = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), got);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

CommandResult run_convpool(const std::string& args) {
  return run_command(std::string(CONVPOOL_BINARY) + " " + args);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace convpool::test
