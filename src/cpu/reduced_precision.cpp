// Float arrays to bf16 or fp16 and back: the shared conversions, element by element (bit
// operations and selects, which the compiler vectorises), in parallel over chunks.
#include "reduced_precision.h"

namespace convpool::cpu {

namespace {
template <typename Fn>
void each(size_t n, Fn fn) {
#pragma omp parallel for simd schedule(static) if (n > (size_t(1) << 16))
  for (size_t i = 0; i < n; ++i) fn(i);
}
}  // namespace

void floats_to_bf16(const float* x, uint16_t* y, size_t n) {
  each(n, [=](size_t i) { y[i] = float_to_bf16(x[i]); });
}
void bf16_to_floats(const uint16_t* x, float* y, size_t n) {
  each(n, [=](size_t i) { y[i] = bf16_to_float(x[i]); });
}
void floats_to_half(const float* x, uint16_t* y, size_t n) {
  each(n, [=](size_t i) { y[i] = float_to_half(x[i]); });
}
void half_to_floats(const uint16_t* x, float* y, size_t n) {
  each(n, [=](size_t i) { y[i] = half_to_float(x[i]); });
}

}  // namespace convpool::cpu
