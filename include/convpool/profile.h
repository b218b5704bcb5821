// Named regions of the training step, for Nsight and for `convpool profile`.
//
// Every Region is an NVTX range in the "convpool" domain when the CUDA toolkit's nvtx3 headers
// were built in (nothing otherwise). While a RegionTimer is installed, each Region is also
// timed: on the host clock for Device::cpu, with CUDA events on the region's stream for
// Device::cuda. Names are stable and documented in docs/profiling.md:
//   <layer>/fwd, <layer>/bwd   every layer's forward and backward (e.g. conv1/fwd)
//   input                      uint8 -> float conversion (and augmentation) of a batch
//   loss                       fused softmax cross-entropy
//   optimizer                  the parameter update
//   data/wait                  host time waiting for a free staging slot (CUDA)
//   epoch, eval                a whole training epoch, a whole evaluation pass
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "convpool/tensor.h"

namespace convpool {

class RegionTimer {
 public:
  virtual ~RegionTimer() = default;
  virtual void begin(const std::string& name, Device device, void* stream) = 0;
  virtual void end(const std::string& name, Device device, void* stream) noexcept = 0;
};

// Times every region: host regions on the steady clock, device regions with CUDA events.
// Totals are per name; a name's count is how many times it ran.
class RegionTotals : public RegionTimer {
 public:
  RegionTotals();
  ~RegionTotals() override;
  void begin(const std::string& name, Device device, void* stream) override;
  void end(const std::string& name, Device device, void* stream) noexcept override;
  struct Entry {
    std::string name;
    double ms = 0;
    uint64_t count = 0;
  };
  // Waits for the device's events, then returns the totals in first-seen order. Throws the
  // first error a region hit (a destructor cannot).
  std::vector<Entry> totals();
  void reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The process-wide timer (not owned); null (the default) times nothing.
void install_region_timer(RegionTimer* timer);
RegionTimer* region_timer();

// True when NVTX ranges are compiled in.
bool nvtx_built();

class Region {
 public:
  // `name` must outlive the region (the graph keeps its layer names).
  Region(const std::string& name, Device device, void* stream = nullptr);
  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

 private:
  const std::string& name_;
  Device device_;
  void* stream_;
  RegionTimer* timer_;
};

// Region names used by several files.
namespace regions {
extern const std::string input, loss, optimizer, data_wait, epoch, eval;
}

}  // namespace convpool
