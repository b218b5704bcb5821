// Arena: plans every region a network needs at build time, then allocates them all as one
// Buffer. Nothing is allocated afterwards, so the training step never touches an allocator.
#pragma once
#include <string>
#include <vector>

#include "convpool/buffer.h"

namespace convpool {

class Arena {
 public:
  // Phase 1: reserve `floats` floats, aligned to 256 bytes; returns a region id.
  int reserve(size_t floats, std::string what);
  // Phase 2: allocate one block on `device` holding every region.
  void allocate(Device device);
  float* region(int id) const;
  size_t region_floats(int id) const { return regions_.at(id).floats; }
  size_t bytes() const { return total_bytes_; }
  Device device() const { return buffer_.device(); }
  bool allocated() const { return buffer_.get() != nullptr || total_bytes_ == 0; }

 private:
  struct Region {
    size_t offset_bytes, floats;
    std::string what;
  };
  std::vector<Region> regions_;
  size_t total_bytes_ = 0;
  Buffer buffer_;
};

}  // namespace convpool
