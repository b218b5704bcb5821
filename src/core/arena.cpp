#include "convpool/arena.h"

#include "convpool/error.h"

namespace convpool {

int Arena::reserve(size_t floats, std::string what) {
  CP_CHECK(!buffer_.get(), "reserve after allocate: " << what);
  constexpr size_t kAlign = 256;  // keeps every region aligned for vector loads and cuDNN
  regions_.push_back({total_bytes_, floats, std::move(what)});
  total_bytes_ += (floats * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  return int(regions_.size()) - 1;
}

void Arena::allocate(Device device) {
  CP_CHECK(!buffer_.get(), "arena allocated twice");
  buffer_ = Buffer(device, total_bytes_);
}

float* Arena::region(int id) const {
  CP_CHECK(id >= 0 && size_t(id) < regions_.size(), "bad region id " << id);
  if (regions_[id].floats == 0) return nullptr;
  return reinterpret_cast<float*>(buffer_.as<char>() + regions_[id].offset_bytes);
}

}  // namespace convpool
