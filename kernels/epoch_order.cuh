// The epoch order's random keys. An epoch visits the images sorted by a 64-bit Philox key of
// (seed, epoch, image), ties by index: a sort, not a serial shuffle, so that the CPU
// (epoch_order in src/data/cifar.cpp, std::sort) and the GPU (a Thrust radix sort,
// src/data/epoch_order_thrust.h) make the same order, and runs compare across data placements.
#pragma once
#include <cstdint>

#include "hd.cuh"
#include "philox.cuh"

namespace convpool {

struct EpochOrderKey {
  uint64_t seed, epoch;
  CP_HD uint64_t operator()(uint64_t image) const {
    const Philox4 r = philox4x32_10(
        Philox4{{kRngShuffle, uint32_t(epoch), uint32_t(epoch >> 32) ^ uint32_t(image >> 32),
                 uint32_t(image)}},
        seed);
    return (uint64_t(r.v[0]) << 32) | r.v[1];
  }
};

}  // namespace convpool
