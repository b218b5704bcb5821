// The device placement of the data: CIFAR's uint8 images and labels uploaded to GPU
// memory once, and each epoch's order made there by the Thrust sort that tests run on the CPU
// (src/data/epoch_order_thrust.h), so that a training step gathers its batch on the device
// (kernels/input.cu) and needs no host work.
#pragma once
#include <cstddef>
#include <cstdint>

#include "convpool/buffer.h"
#include "convpool/data.h"

namespace convpool::cuda {

// A data set held in device memory, uploaded once per Dataset object.
class ResidentDataset {
 public:
  // Uploads `ds` on `stream` (and waits for it) unless this already holds it (the same
  // pixel buffer, the same size). Returns true when its device buffers moved: graphs that
  // captured the old pointers must be captured again.
  bool hold(const Dataset& ds, void* stream);
  const uint8_t* images() const { return images_.as<uint8_t>(); }
  const uint8_t* labels() const { return labels_.as<uint8_t>(); }

 private:
  const uint8_t* source_ = nullptr;  // the host pixels last uploaded
  size_t size_ = 0;
  Buffer images_, labels_;
};

// One epoch's order in device memory: epoch_order()'s permutation, made on the GPU.
class DeviceEpochOrder {
 public:
  // order[0..n) for (seed, epoch), computed on `stream` (Thrust's CUDA system; it waits for
  // the sort to finish, once per epoch). Returns true when its buffer moved (as hold()).
  bool make(size_t n, uint64_t seed, uint64_t epoch, void* stream);
  const uint32_t* get() const { return order_.as<uint32_t>(); }
  // The first position where it differs from `host` (n when none): a self-check of the first
  // epoch against the CPU's epoch_order.
  size_t first_difference(const uint32_t* host, size_t n) const;

 private:
  size_t capacity_ = 0;
  Buffer order_, keys_;
};

// Whether `bytes` fit in `fraction` of the device's free memory now (--data-placement auto).
bool fits_in_free_memory(size_t bytes, double fraction);

}  // namespace convpool::cuda
