// libFuzzer target: `convpool eval` of an arbitrary file, short of reading CIFAR-10: the
// checkpoint is decoded (checksums skipped, so mutated headers get through), its model text
// parsed and built on the CPU under a small memory cap, its weights restored, and two
// synthetic images evaluated. Any failure must be a convpool::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "convpool/checkpoint.h"
#include "convpool/error.h"
#include "convpool/trainer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const convpool::Dataset images = convpool::synthetic_cifar(2, 1);
  try {
    const convpool::Checkpoint ckpt =
        convpool::decode_checkpoint(std::string(reinterpret_cast<const char*>(data), size),
                                    "fuzz", convpool::ChecksumPolicy::skip);
    convpool::GraphOptions opts{convpool::Device::cpu, 2, 0};
    opts.max_arena_bytes = 64u << 20;
    auto graph = convpool::build_from_checkpoint(ckpt, "fuzz", opts);
    convpool::require_model_fits_data(*graph, "fuzz");
    convpool::TrainConfig cfg;
    cfg.batch = 2;
    cfg.seed = ckpt.state.seed;
    cfg.input = ckpt.state.input;
    convpool::Trainer(*graph, cfg, ckpt.state).evaluate(images);
  } catch (const convpool::Error&) {
  }
  return 0;
}
