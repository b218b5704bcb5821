// libFuzzer target: the safetensors/checkpoint parser must reject any bytes with an Error,
// never crash, hang or read out of bounds. Each input is decoded twice: as a user's file
// would be (checksums verified), and with checksums skipped, so that mutated headers reach
// the metadata parsers behind them (the number conversions a fuzzer once broke).
#include <cstddef>
#include <cstdint>
#include <string>

#include "convpool/checkpoint.h"
#include "convpool/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  for (auto policy : {convpool::ChecksumPolicy::verify, convpool::ChecksumPolicy::skip}) {
    try {
      convpool::decode_checkpoint(bytes, "fuzz", policy);
    } catch (const convpool::Error&) {
    }
  }
  return 0;
}
