// Tensors: NCHW float32 views over memory owned elsewhere (an Arena or a Buffer).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace convpool {

enum class Device { cpu, cuda };
const char* device_name(Device d);

// Shape of an NCHW tensor. Dense activations use h = w = 1.
struct Shape {
  int n = 0, c = 0, h = 0, w = 0;
  size_t numel() const { return size_t(n) * c * h * w; }
  size_t per_sample() const { return size_t(c) * h * w; }
  Shape with_batch(int batch) const { return {batch, c, h, w}; }
  bool operator==(const Shape&) const = default;
  std::string str() const;  // "32x3x32x32"
};

// A non-owning view: data pointer, shape and the device the memory lives on.
struct Tensor {
  float* data = nullptr;
  Shape shape;
  Device device = Device::cpu;
  size_t numel() const { return shape.numel(); }
  Tensor with_batch(int batch) const { return {data, shape.with_batch(batch), device}; }
};

}  // namespace convpool
