// exp and log written as float arithmetic and bit operations only (Cephes' expf and logf
// polynomials, about 1 ulp), shared by the CPU backend and the CUDA kernels: the CPU's loops
// vectorise them (a library call per element would not), and the emulated target computes
// the very same bits as the CPU. Branch-free: every special case is a select.
#pragma once
#include <cstdint>

#include "hd.cuh"

namespace convpool {

// e^x for every float: +inf above 89, 0 below -104, gradual underflow between, NaN kept.
CP_HD float cp_exp(float x) {
  const bool big = x > 89.f, tiny = x < -104.f, nan = x != x;
  const float xc = cp_select(big | tiny | nan, 0.f, x);
  const float magic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  const float nf = (xc * 1.44269504088896341f + magic) - magic;
  const float r = (xc - nf * 0.693359375f) - nf * -2.12194440e-4f;
  float q = 1.9875691500e-4f;
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  q = q * r * r + r + 1.f;
  // 2^n in two factors, each a normal float for n in [-150, 129].
  const int n = int(nf), h = n >> 1;
  const float res = q * cp_bits_float(uint32_t(h + 127) << 23) *
                    cp_bits_float(uint32_t(n - h + 127) << 23);
  return cp_select(nan, x, cp_select(big, cp_bits_float(0x7f800000u), cp_select(tiny, 0.f, res)));
}

// ln x: -inf at 0, NaN below 0 and for NaN, +inf at +inf; subnormals scaled first.
CP_HD float cp_log(float x) {
  const bool sub = x < 1.17549435e-38f;  // also 0 and negatives, handled at the end
  const float xs = cp_select(sub, x * 8388608.f, x);  // 2^23
  const uint32_t bits = cp_float_bits(xs);
  int e = int((bits >> 23) & 0xffu) - 126 - cp_select(sub, 23, 0);
  float m = cp_bits_float((bits & 0x807fffffu) | 0x3f000000u);  // [0.5, 1)
  const bool low = m < 0.707106781186547524f;
  e -= cp_select(low, 1, 0);
  m = cp_select(low, m + m, m) - 1.f;
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  const float fe = float(e);
  y += fe * -2.12194440e-4f;
  y += -0.5f * z;
  const float res = (m + y) + fe * 0.693359375f;
  const float inf = cp_bits_float(0x7f800000u);
  const float special = cp_select(x < 0.f, cp_bits_float(0x7fc00000u),
                                  cp_select(x == 0.f, -inf, x));  // x: +inf, or NaN kept
  return cp_select((x != x) | (x <= 0.f) | (x == inf), special, res);
}

}  // namespace convpool
