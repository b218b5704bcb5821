// GPU time of named intervals on a stream, measured with pairs of CUDA events; used by
// convpool/profile.h's RegionTotals for Device::cuda regions. Events come from a pool that
// grows on first use only, so steady-state steps create none.
#pragma once
#include <memory>
#include <utility>
#include <vector>

namespace convpool::cuda {

class IntervalRecorder {
 public:
  IntervalRecorder();
  ~IntervalRecorder();
  void begin(int key, void* stream);
  void end(int key, void* stream);
  // Waits for the recorded events; returns (key, milliseconds) per interval and forgets them.
  std::vector<std::pair<int, double>> collect();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convpool::cuda
