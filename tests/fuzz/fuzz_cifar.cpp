// libFuzzer target: the CIFAR-10 record parser.
#include <cstddef>
#include <cstdint>
#include <string>

#include "convpool/data.h"
#include "convpool/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  convpool::Dataset ds;
  try {
    convpool::parse_cifar_records(std::string(reinterpret_cast<const char*>(data), size), "fuzz",
                                  ds);
  } catch (const convpool::Error&) {
  }
  return 0;
}
