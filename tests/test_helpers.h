// Small helpers shared by tests: temporary directories, synthetic CIFAR files, running the CLI.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace convpool::test {

// A fresh directory under the system temp dir, removed when the object dies.
struct TempDir {
  std::filesystem::path path;
  TempDir();
  ~TempDir();
  std::string str(const std::string& name = "") const;
};

// Writes `records` synthetic CIFAR-10 records (random pixels, labels 0..9) to `path`.
// Labels follow a pattern learnable from the pixels when `learnable` is set.
void write_cifar_file(const std::string& path, int records, uint64_t seed);
// A complete synthetic data directory: 5 train batches and a test batch.
void write_cifar_dir(const std::string& dir, int per_batch, uint64_t seed);

// An image folder at `root`: train/<class>/ and val/<class>/ for `classes` classes named
// "c0".. (with a "zz-" prefix on the last, so that names sort unlike indices), `train` and
// `val` images per class. Each class has its own colour plus noise, so that a small network
// learns it; sizes vary (square, wide, tall, smaller and larger than 48) and files alternate
// between PNG, JPEG, PNG of grey pixels and JPEG named .JPEG. Returns the class names in
// sorted (label) order.
std::vector<std::string> write_image_folder(const std::string& root, int classes, int train,
                                            int val, uint64_t seed);

// Sets a file's modification time `seconds` after its current one.
void bump_mtime(const std::string& path, int seconds);

// The real CIFAR-10 directory from $CIFAR10_DIR, or "" (tests then skip with the reason).
std::string real_cifar_dir();

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};
CommandResult run_command(const std::string& cmd);
// The whole file, byte for byte; "" when it cannot be opened (e.g. a /proc entry that is gone).
std::string read_file(const std::string& path);
// Runs the convpool binary built with the tests.
CommandResult run_convpool(const std::string& args);

// Starts the convpool binary with `args` (split on spaces) in the background, output
// discarded; wait_exit reaps it: its exit code, or 128 + the signal that ended it.
int spawn_convpool(const std::string& args);
int wait_exit(int pid);

// The message of the convpool::Error that f throws, or "" if it throws none.
std::string error_of(const std::function<void()>& f);

// Builds a model of `input_line` and then each of `layer_lines` on the CPU: each must be
// refused (a convpool::Error) with one line that names the layer's line ("m:2").
void expect_layer_refusals(const std::string& input_line,
                           const std::vector<std::string>& layer_lines);

}  // namespace convpool::test
