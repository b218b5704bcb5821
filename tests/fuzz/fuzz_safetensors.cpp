// libFuzzer target: the safetensors/checkpoint parser must reject any bytes with an Error,
// never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "convpool/checkpoint.h"
#include "convpool/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    convpool::decode_checkpoint(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const convpool::Error&) {
  }
  return 0;
}
