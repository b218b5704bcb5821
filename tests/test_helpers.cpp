#include "test_helpers.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "convpool/data.h"
#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/image_file.h"
#include "convpool/model.h"
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

std::vector<std::string> write_image_folder(const std::string& root, int classes, int train,
                                            int val, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> names;
  for (int c = 0; c < classes; ++c)
    names.push_back((c == classes - 1 ? "zz-c" : "c") + std::to_string(c));
  const int sizes[][2] = {{48, 48}, {64, 40}, {30, 50}, {100, 80}, {17, 17}};
  for (const char* split : {"train", "val"}) {
    const int per_class = std::string(split) == "train" ? train : val;
    for (int c = 0; c < classes; ++c) {
      const std::string dir = root + "/" + split + "/" + names[size_t(c)];
      std::filesystem::create_directories(dir);
      // The class's colour: a hue spread round the channels.
      const int base[3] = {40 + 170 * (c % 3 == 0), 40 + 170 * (c % 3 == 1),
                           40 + 170 * (c % 3 == 2) - 60 * (c / 3 % 2)};
      for (int i = 0; i < per_class; ++i) {
        const int* wh = sizes[(i + c) % 5];
        RgbImage im;
        im.width = wh[0], im.height = wh[1];
        im.rgb.resize(size_t(im.width) * size_t(im.height) * 3);
        for (size_t p = 0; p < im.rgb.size(); ++p)
          im.rgb[p] = uint8_t(std::clamp(base[p % 3] + int(rng() % 81) - 40, 0, 255));
        const std::string stem = dir + "/img" + std::to_string(i);
        switch (i % 4) {
          case 0:
            write_png(stem + ".png", im);
            break;
          case 1:
            write_jpeg(stem + ".jpg", im, 92);
            break;
          case 2: {  // grey pixels: the mean of the channels
            RgbImage grey = im;
            for (size_t p = 0; p + 2 < grey.rgb.size(); p += 3) {
              const uint8_t g = uint8_t((grey.rgb[p] + grey.rgb[p + 1] + grey.rgb[p + 2]) / 3);
              grey.rgb[p] = grey.rgb[p + 1] = grey.rgb[p + 2] = g;
            }
            write_png(stem + ".grey.png", grey);
            break;
          }
          default:
            write_jpeg(stem + ".JPEG", im, 80);
            break;
        }
      }
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

void bump_mtime(const std::string& path, int seconds) {
  const auto t = std::filesystem::last_write_time(path);
  std::filesystem::last_write_time(path, t + std::chrono::seconds(seconds));
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

int spawn_convpool(const std::string& args) {
  std::vector<std::string> words{CONVPOOL_BINARY};
  std::istringstream in(args);
  for (std::string w; in >> w;) words.push_back(w);
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int wait_exit(int pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_layer_refusals(const std::string& input_line,
                           const std::vector<std::string>& layer_lines) {
  for (const std::string& line : layer_lines) {
    const std::string what = error_of([&] {
      Graph::build(parse_model_text(input_line + "\n" + line + "\n", "m"),
                   GraphOptions{Device::cpu, 1, 0});
    });
    EXPECT_FALSE(what.empty()) << line << ": built";
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_NE(what.find("m:2"), std::string::npos) << line << ": " << what;
  }
}

}  // namespace convpool::test
