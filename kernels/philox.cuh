// Philox4x32-10 (Salmon et al., SC'11): a counter-based generator. The same (key, counter)
// gives the same numbers on the CPU and the GPU, which is what makes stochastic pooling,
// mixed pooling, augmentation and initialisation reproducible and parity-testable.
#pragma once
#include <cstdint>

#include "hd.cuh"

namespace convpool {

struct Philox4 {
  uint32_t v[4];
};

CP_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = uint64_t(a) * uint64_t(b);
  hi = uint32_t(p >> 32);
  lo = uint32_t(p);
}

// counter: 4 words chosen by the caller (e.g. purpose, step, layer, element); key: the seed.
CP_HD Philox4 philox4x32_10(Philox4 ctr, uint64_t seed) {
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, ctr.v[0], hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, ctr.v[2], hi1, lo1);
    ctr = Philox4{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return ctr;
}

// Uniform float in [0, 1) from 24 random bits.
CP_HD float uniform_from_bits(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }

// Purposes keep independent streams apart even when other counter words coincide.
enum RngPurpose : uint32_t {
  kRngInit = 1,
  kRngShuffle = 2,
  kRngPoolSample = 3,
  kRngPoolMix = 4,
  kRngAugment = 5,
  kRngDropout = 6,
};

// One uniform [0,1) draw for (purpose, a, b, index): four draws share one Philox call.
CP_HD float philox_uniform(uint64_t seed, uint32_t purpose, uint32_t a, uint32_t b,
                           uint64_t index) {
  Philox4 r =
      philox4x32_10(Philox4{{purpose, a, b ^ uint32_t(index >> 34), uint32_t(index >> 2)}}, seed);
  return uniform_from_bits(r.v[index & 3]);
}

}  // namespace convpool
