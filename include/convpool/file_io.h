// Reading and writing whole files, the one way every reader and writer of convpool does it.
// Readers accept only regular files (a FIFO would block forever, /dev/zero would never end)
// and check the size before reading a byte, with a limit chosen per kind of file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace convpool {

// Size limits per kind of input file.
constexpr size_t kMaxModelFileBytes = size_t(1) << 20;       // model files, configs
constexpr size_t kMaxCheckpointBytes = size_t(1) << 32;      // safetensors checkpoints
constexpr size_t kMaxSmallTextBytes = size_t(1) << 20;       // batches.meta.txt, metrics.csv

// The whole of a regular file at `path`, at most `max_bytes` long. `what` names the kind of
// file in errors ("model file", "checkpoint", ...). Every failure is a one-line Error.
std::string read_regular_file(const std::string& path, size_t max_bytes, const char* what);

// Whether `path` names an existing regular file (not a directory, FIFO or device).
bool is_regular_file(const std::string& path);

// Atomic replace: writes PATH.tmp-PID in the same directory, fsyncs it, renames it over
// PATH and fsyncs the directory. On any failure the temporary is removed and PATH is
// untouched.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Removes PATH.tmp-PID files in `dir` left by writers that died (their PID no longer runs).
// Returns how many it removed.
int remove_stale_temporaries(const std::string& dir);

}  // namespace convpool
