#include "convpool/tensor.h"

namespace convpool {

const char* device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

std::string Shape::str() const {
  return std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" +
         std::to_string(w);
}

}  // namespace convpool
