// The CPU convolution engines (im2col + OpenBLAS, oneDNN direct, oneDNN's own choice with
// Winograd) against naive double-precision loops in all three directions, on shapes that reach
// each kernel family: 3x3 stride 1 at 16+ channels (Winograd), stride 2, 1x1, 5x5, the 3-channel
// first layer, uneven sizes, a fused ReLU; and oneDNN's bf16 primitives (--precision bf16) within
// bf16's rounding. Outputs are poisoned with NaN before every call.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <vector>

#include "convpool/conv_engine.h"
#include "convpool/precision.h"
#include "cpu/conv.h"
#include "cpu/conv_engine.h"
#include "cpu/conv_onednn.h"
#include "layer_harness.h"

using namespace convpool;
using namespace convpool::cpu;

namespace {

struct EngineCase {
  const char* name;
  int C, H, W, OC, K, S, P;
  bool bias, relu;
};

void PrintTo(const EngineCase& c, std::ostream* os) { *os << c.name; }

ConvGeom geometry(const EngineCase& c) {
  ConvGeom g{c.C, c.H, c.W, c.OC, c.K, c.K, c.S, c.S, c.P, c.P, 0, 0};
  g.OH = (c.H + 2 * c.P - c.K) / c.S + 1;
  g.OW = (c.W + 2 * c.P - c.K) / c.S + 1;
  return g;
}

// Products summed in double, with the sum of their magnitudes for the tolerance.
struct Reference {
  std::vector<double> y, y_mag, dx, dx_mag, dw, dw_mag, db;
};

// g_eff: the gradient after the fused ReLU's mask. The mask is the engine's own (its y > 0, y
// being checked separately): an output within rounding of 0 may fall on either side in float.
// With a mask of the reference's own, Winograd's rounding failed the 16 x 64 x 16 x 16 case
// below in 13 of 60 runs (one flipped element moves dx, dw and db past any fair tolerance).
Reference reference(const ConvGeom& g, int n, const std::vector<float>& x,
                    const std::vector<float>& w, const std::vector<float>& b,
                    const std::vector<float>& dy, const std::vector<float>* relu_y) {
  Reference r;
  const size_t ysz = size_t(n) * g.OC * g.P();
  r.y.assign(ysz, 0), r.y_mag.assign(ysz, 0);
  r.dx.assign(x.size(), 0), r.dx_mag.assign(x.size(), 0);
  r.dw.assign(w.size(), 0), r.dw_mag.assign(w.size(), 0);
  r.db.assign(g.OC, 0);
  auto each = [&](auto&& f) {
    for (int i = 0; i < n; ++i)
      for (int oc = 0; oc < g.OC; ++oc)
        for (int oh = 0; oh < g.OH; ++oh)
          for (int ow = 0; ow < g.OW; ++ow) {
            const size_t yi = ((size_t(i) * g.OC + oc) * g.OH + oh) * g.OW + ow;
            for (int c = 0; c < g.C; ++c)
              for (int kh = 0; kh < g.KH; ++kh)
                for (int kw = 0; kw < g.KW; ++kw) {
                  const int h = oh * g.SH - g.PH + kh, ww = ow * g.SW - g.PW + kw;
                  if (h < 0 || h >= g.H || ww < 0 || ww >= g.W) continue;
                  f(yi, ((size_t(i) * g.C + c) * g.H + h) * g.W + ww,
                    ((size_t(oc) * g.C + c) * g.KH + kh) * g.KW + kw);
                }
          }
  };
  each([&](size_t yi, size_t xi, size_t wi) {
    r.y[yi] += double(x[xi]) * w[wi];
    r.y_mag[yi] += std::abs(double(x[xi]) * w[wi]);
  });
  std::vector<double> g_eff(ysz);
  for (size_t yi = 0; yi < ysz; ++yi) {
    const int oc = int(yi / g.P() % g.OC);
    if (!b.empty()) r.y[yi] += b[oc], r.y_mag[yi] += std::abs(b[oc]);
    g_eff[yi] = relu_y && !((*relu_y)[yi] > 0) ? 0.0 : dy[yi];
    if (relu_y) r.y[yi] = std::max(r.y[yi], 0.0);
    r.db[oc] += g_eff[yi];
  }
  each([&](size_t yi, size_t xi, size_t wi) {
    r.dx[xi] += g_eff[yi] * w[wi];
    r.dx_mag[xi] += std::abs(g_eff[yi] * w[wi]);
    r.dw[wi] += g_eff[yi] * x[xi];
    r.dw_mag[wi] += std::abs(g_eff[yi] * x[xi]);
  });
  return r;
}

// |got - want| within rel of the magnitude of the summed terms (Winograd's transforms round
// more than a direct sum, hence the engine's own tolerance).
void expect_close(const char* what, const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<double>& mag, double rel) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i)
    if (!(std::abs(got[i] - want[i]) <= rel * mag[i] + 1e-6)) {
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", want " << want[i]
                    << " (terms' magnitude " << mag[i] << ")";
      ++bad;
    }
}

class ConvEngineTest : public ::testing::TestWithParam<EngineCase> {};

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Buffers of a call kept alive by the caller, so that the next call's land elsewhere: an
// engine that kept pointers from an earlier call would then read stale memory and fail.
using Held = std::vector<std::vector<float>>;

// One engine through all three directions at batch n, against the reference.
void check_engine(OnednnConv* onednn, const ConvGeom& g, const EngineCase& c, int n, uint64_t seed,
                  double rel, Held* held = nullptr, double rel_db = 1e-6) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(size_t(n) * g.C * g.H * g.W), w(size_t(g.OC) * g.K()),
      b(c.bias ? g.OC : 0), dy(size_t(n) * g.OC * g.P());
  for (auto& v : x) v = u(rng);
  for (auto& v : w) v = u(rng) * 0.3f;
  for (auto& v : b) v = u(rng) * 0.1f;
  for (auto& v : dy) v = u(rng);
  x[0] = x[1];  // a tie, for good measure
  std::vector<float> y(dy.size(), kNaN), dx(x.size(), kNaN), dw(w.size(), kNaN),
      db(c.bias ? g.OC : 0, kNaN);
  if (onednn) {
    std::vector<float> ws(onednn->workspace_floats(), kNaN);
    onednn->forward(n, x.data(), w.data(), c.bias ? b.data() : nullptr, y.data(), ws.data());
    onednn->backward_filter(n, x.data(), dy.data(), dw.data(), c.bias ? db.data() : nullptr,
                            ws.data(), c.relu ? y.data() : nullptr);
    onednn->backward_data(n, w.data(), dx.data(), ws.data());
  } else {
    std::vector<float> col(conv_col_floats(g, n), kNaN), tmp(conv_tmp_floats(g, n), kNaN);
    conv_forward(g, n, x.data(), w.data(), c.bias ? b.data() : nullptr, y.data(), col.data(),
                 tmp.data(), c.relu);
    conv_backward_filter(g, n, dy.data(), col.data(), dw.data(), c.bias ? db.data() : nullptr,
                         tmp.data(), c.relu ? y.data() : nullptr);
    conv_backward_data(g, n, w.data(), dx.data(), tmp.data());
  }
  const Reference r = reference(g, n, x, w, b, dy, c.relu ? &y : nullptr);
  expect_close("y", y, r.y, r.y_mag, rel);
  expect_close("dx", dx, r.dx, r.dx_mag, rel);
  expect_close("dw", dw, r.dw, r.dw_mag, rel);
  if (c.bias) {
    std::vector<double> mag(g.OC, double(n) * g.P());
    expect_close("db", db, r.db, mag, rel_db);
  }
  if (held)
    for (auto* v : {&x, &w, &b, &dy, &y, &dx, &dw, &db}) held->push_back(std::move(*v));
}

TEST_P(ConvEngineTest, Im2colMatchesNaiveLoops) {
  const EngineCase& c = GetParam();
  const ConvGeom g = geometry(c);
  check_engine(nullptr, g, c, 3, test::fresh_seed(), 1e-5);
}

// Made for batch `max`, run at max, then at 2 (a last partial batch: its own primitives), then
// at max again (the cached ones, with other inputs in other buffers).
// bf16: the primitives in bf16 (--precision bf16), whose inputs round to 8 significant bits.
void check_onednn(OnednnAlgo algo, const EngineCase& c, double rel, int max = 5,
                  bool bf16 = false) {
  if (!have_onednn()) GTEST_SKIP() << "this build has no oneDNN";
  const ConvGeom g = geometry(c);
  auto conv = OnednnConv::create(g, max, c.bias, c.relu, algo, bf16);
  ASSERT_TRUE(conv) << "oneDNN has no JIT kernel for " << c.name << " on this CPU";
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) + ", " + conv->implementation(max));
  Held held;
  int call = 0;
  for (int n : {max, 2, max}) {
    SCOPED_TRACE("batch " + std::to_string(n) + ", call " + std::to_string(call));
    check_engine(conv.get(), g, c, n, seed + uint64_t(++call), rel, &held, bf16 ? rel : 1e-6);
  }
}

TEST_P(ConvEngineTest, OnednnDirectMatchesNaiveLoops) {
  check_onednn(OnednnAlgo::direct, GetParam(), 1e-5);
}

TEST_P(ConvEngineTest, OnednnAutoMatchesNaiveLoops) {
  check_onednn(OnednnAlgo::automatic, GetParam(), 1e-4);
}

// Each product's two factors round to bf16 (a relative 2^-9 each), the sums stay fp32: within
// 2^-7 of the terms' magnitude, where fp32 holds 1e-5.
TEST_P(ConvEngineTest, OnednnBf16MatchesNaiveLoopsWithinBf16Rounding) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "this CPU has no bf16 arithmetic (AVX512-BF16, AMX)";
  check_onednn(OnednnAlgo::direct, GetParam(), 1.0 / 128, 5, true);
}

// The tolerance above is not loose enough to pass an fp32 engine's error of bf16's size.
TEST(ConvEngineBf16, IsNotFp32) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "this CPU has no bf16 arithmetic (AVX512-BF16, AMX)";
  const EngineCase c{"3x3_s1_c16", 16, 8, 8, 16, 3, 1, 1, false, false};
  const ConvGeom g = geometry(c);
  std::vector<float> x(size_t(2) * 16 * 64, 1.f + 1.f / 512), w(size_t(16) * g.K(), 1.f),
      y(size_t(2) * 16 * 64, kNaN);
  for (const bool bf16 : {false, true}) {
    auto conv = OnednnConv::create(g, 2, false, false, OnednnAlgo::direct, bf16);
    ASSERT_TRUE(conv);
    EXPECT_EQ(conv->implementation(2).rfind("bf16: ", 0) == 0, bf16);
    std::vector<float> ws(conv->workspace_floats(), kNaN);
    conv->forward(2, x.data(), w.data(), nullptr, y.data(), ws.data());
    // A centre output sums 144 terms of 1 + 2^-9, which bf16 rounds to 1 (a tie, to even).
    const float centre = y[size_t(3) * 8 + 3];
    EXPECT_EQ(centre, bf16 ? 144.f : 144.f * (1.f + 1.f / 512)) << (bf16 ? "bf16" : "fp32");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvEngineTest,
    ::testing::Values(
        EngineCase{"3x3_s1_c16_winograd", 16, 12, 12, 16, 3, 1, 1, false, false},
        EngineCase{"3x3_s1_c32_bias_relu", 32, 8, 8, 48, 3, 1, 1, true, true},
        EngineCase{"3x3_s1_c16_uneven_valid", 16, 11, 7, 24, 3, 1, 0, true, false},
        EngineCase{"3x3_s2_pad1", 16, 9, 10, 32, 3, 2, 1, false, false},
        EngineCase{"1x1_s2", 16, 8, 8, 32, 1, 2, 0, false, false},
        EngineCase{"5x5_pad2_c3_bias_relu", 3, 10, 10, 8, 5, 1, 2, true, true},
        EngineCase{"3x3_c3_first_layer", 3, 16, 16, 16, 3, 1, 1, true, false},
        EngineCase{"3x3_s1_c64_4x4", 64, 4, 4, 64, 3, 1, 1, false, true}),
    [](const ::testing::TestParamInfo<EngineCase>& info) { return std::string(info.param.name); });

// oneDNN's Winograd kernels (F(4x4, 3x3)), which it picks for 64 channels at 16x16 from batch
// 16 on this team's CPU: the tests above, at batches of 5, get direct kernels only.
TEST(ConvEngines, OnednnWinogradMatchesNaiveLoops) {
  if (!have_onednn()) GTEST_SKIP() << "this build has no oneDNN";
  const EngineCase c{"winograd_64x16x16", 64, 16, 16, 64, 3, 1, 1, true, true};
  auto conv = OnednnConv::create(geometry(c), 16, c.bias, c.relu, OnednnAlgo::automatic);
  ASSERT_TRUE(conv);
  // Which kernels oneDNN picks depends on the CPU and on the threads per core (its Winograd
  // heuristic drops Winograd on some), so the test says which ran rather than demanding one.
  const std::string kernels = conv->implementation(16);
  RecordProperty("kernels", kernels);
  if (kernels.find("wino") == std::string::npos)
    std::cout << "note: oneDNN picked no Winograd kernel on this CPU: " << kernels << "\n";
  check_onednn(OnednnAlgo::automatic, c, 1e-4, 16);
}

// Every batch below the largest gets primitives that fit the planned workspace (Winograd's
// scratch at some smaller batches exceeds the largest batch's: those keep oneDNN's own), and
// such a batch computes what im2col does.
TEST(ConvEngines, EveryBatchSizeFitsTheWorkspace) {
  if (!have_onednn()) GTEST_SKIP() << "this build has no oneDNN";
  const EngineCase c{"vgg_64_to_128_at_8x8", 64, 8, 8, 128, 3, 1, 1, false, false};
  const ConvGeom g = geometry(c);
  const int max = 128;
  auto conv = OnednnConv::create(g, max, false, false, OnednnAlgo::automatic);
  ASSERT_TRUE(conv);
  for (int n = 1; n <= max; ++n) EXPECT_NO_THROW(conv->implementation(n)) << "batch " << n;
  std::mt19937_64 rng(test::fresh_seed());
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int n : {100, 117, 90}) {
    SCOPED_TRACE("batch " + std::to_string(n));
    std::vector<float> x(size_t(n) * g.C * g.P()), w(size_t(g.OC) * g.K()), dy(size_t(n) * g.OC * g.P());
    for (auto* v : {&x, &w, &dy})
      for (float& e : *v) e = u(rng);
    std::vector<float> ws(conv->workspace_floats(), kNaN), y(dy.size(), kNaN), dx(x.size(), kNaN),
        dw(w.size(), kNaN);
    conv->forward(n, x.data(), w.data(), nullptr, y.data(), ws.data());
    conv->backward_filter(n, x.data(), dy.data(), dw.data(), nullptr, ws.data(), nullptr);
    conv->backward_data(n, w.data(), dx.data(), ws.data());
    // im2col's results, and the magnitudes of the summed terms (the same sums over |x|, |w|,
    // |dy|) for a tolerance relative to them, as in expect_close.
    auto im2col = [&](const std::vector<float>& xs, const std::vector<float>& ws_,
                      const std::vector<float>& dys, std::vector<float>& yo,
                      std::vector<float>& dxo, std::vector<float>& dwo) {
      std::vector<float> col(conv_col_floats(g, n)), tmp(conv_tmp_floats(g, n));
      yo.assign(y.size(), 0.f), dxo.assign(x.size(), 0.f), dwo.assign(w.size(), 0.f);
      conv_forward(g, n, xs.data(), ws_.data(), nullptr, yo.data(), col.data(), tmp.data());
      conv_backward_filter(g, n, dys.data(), col.data(), dwo.data(), nullptr, tmp.data());
      conv_backward_data(g, n, ws_.data(), dxo.data(), tmp.data());
    };
    auto abs_of = [](std::vector<float> v) {
      for (float& e : v) e = std::abs(e);
      return v;
    };
    std::vector<float> y2, dx2, dw2, y_mag, dx_mag, dw_mag;
    im2col(x, w, dy, y2, dx2, dw2);
    im2col(abs_of(x), abs_of(w), abs_of(dy), y_mag, dx_mag, dw_mag);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], y2[i], 1e-4 * y_mag[i] + 1e-6) << i;
    for (size_t i = 0; i < dx.size(); ++i)
      ASSERT_NEAR(dx[i], dx2[i], 1e-4 * dx_mag[i] + 1e-6) << i;
    for (size_t i = 0; i < dw.size(); ++i)
      ASSERT_NEAR(dw[i], dw2[i], 1e-4 * dw_mag[i] + 1e-6) << i;
  }
}

// The same call twice gives the same bits: resumed runs depend on it.
TEST(ConvEngines, OnednnIsDeterministic) {
  if (!have_onednn()) GTEST_SKIP() << "this build has no oneDNN";
  const EngineCase c{"det", 32, 8, 8, 32, 3, 1, 1, true, false};
  const ConvGeom g = geometry(c);
  for (OnednnAlgo algo : {OnednnAlgo::direct, OnednnAlgo::automatic}) {
    auto conv = OnednnConv::create(g, 8, true, false, algo);
    ASSERT_TRUE(conv);
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<float> x(8 * 32 * 64), w(32 * 32 * 9), b(32), dy(8 * 32 * 64);
    for (auto* v : {&x, &w, &b, &dy})
      for (float& e : *v) e = u(rng);
    std::vector<float> ws(conv->workspace_floats());
    std::vector<float> out[2];
    for (auto& o : out) {
      std::vector<float> y(dy.size()), dx(x.size()), dw(w.size()), db(32);
      conv->forward(8, x.data(), w.data(), b.data(), y.data(), ws.data());
      conv->backward_filter(8, x.data(), dy.data(), dw.data(), db.data(), ws.data(), nullptr);
      conv->backward_data(8, w.data(), dx.data(), ws.data());
      for (auto* v : {&y, &dx, &dw, &db}) o.insert(o.end(), v->begin(), v->end());
    }
    EXPECT_EQ(0, std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(float)));
  }
}

// The layer follows the process's policy, and auto follows the per-shape rule.
TEST(ConvEngines, LayerFollowsPolicyAndRule) {
  struct Restore {
    CpuConvEngine saved = cpu_conv_engine();
    ~Restore() { set_cpu_conv_engine(saved); }
  } restore;
  auto detail = [](const char* line, Shape in) {
    test::LayerHarness h(line, in, 2, 1);
    return h.layer->backend_detail(2);
  };
  set_cpu_conv_engine(CpuConvEngine::im2col);
  EXPECT_EQ(detail("conv filters=16 size=3 padding=1", {1, 16, 8, 8}), "im2col + OpenBLAS sgemm");
  if (!have_onednn()) return;
  set_cpu_conv_engine(CpuConvEngine::automatic);
  EXPECT_EQ(detail("conv filters=16 size=1", {1, 16, 8, 8}), "im2col + OpenBLAS sgemm");
  EXPECT_NE(detail("conv filters=16 size=3 padding=1", {1, 16, 8, 8}).find("oneDNN"),
            std::string::npos);
  set_cpu_conv_engine(CpuConvEngine::onednn_direct);
  EXPECT_EQ(detail("conv filters=16 size=3 padding=1", {1, 16, 8, 8}).find("wino"),
            std::string::npos);
  EXPECT_THROW(parse_cpu_conv_engine("winograd"), Error);
}

}  // namespace
