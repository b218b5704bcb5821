// The CPU pooling paths on every window geometry of the pooling benchmark matrix (2x2/2,
// 3x3/2 pad 1, 3x3/3, 5x5/2 pad 2, global) and the shapes between them (overlapping, strided,
// non-square, padded, planes smaller than a window, rows not a multiple of the vector width):
// - the path a call takes is a fast one (a benchmark cannot measure the generic loop unawares);
// - forward and backward against a naive double-precision reference written here, with ties
//   (inputs drawn from a few values) and signed zeros, and with continuous values (whose sums
//   show their order in their bits);
// - forward and backward equal to the generic path bit for bit (within float rounding for Lp
//   p = 2, 3 and SoftPool), also with NaN and infinities in the input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cpu/pool.h"
#include "cpu/pool_fast.h"
#include "cpu/pool_window_simd.h"
#include "kernels/philox.cuh"

using namespace convpool;

namespace {

struct Geometry {
  const char* name;
  int kh, kw, sh, sw, ph, pw;
  bool global = false;
  // Larger than the 5x5 templates: max, min, avg, mixed, Lp and training-time stochastic
  // pooling take the window lists on planes up to 64 x 64; the others stay on the generic path.
  bool lists_only = false;
};

// The matrix's geometries, then the others the window templates and lists must also get right.
const Geometry kGeometries[] = {
    {"2x2/2", 2, 2, 2, 2, 0, 0},        {"3x3/2 pad 1", 3, 3, 2, 2, 1, 1},
    {"3x3/3", 3, 3, 3, 3, 0, 0},        {"5x5/2 pad 2", 5, 5, 2, 2, 2, 2},
    {"global", 0, 0, 1, 1, 0, 0, true}, {"3x3/1 pad 1", 3, 3, 1, 1, 1, 1},
    {"2x2/1", 2, 2, 1, 1, 0, 0},        {"4x4/2 pad 1", 4, 4, 2, 2, 1, 1},
    {"5x5/3", 5, 5, 3, 3, 0, 0},        {"2x3/1x2 pad 0x1", 2, 3, 1, 2, 0, 1},
    {"3x3/2 pad 0", 3, 3, 2, 2, 0, 0},  {"4x4/4", 4, 4, 4, 4, 0, 0},
    {"2x2/3", 2, 2, 3, 3, 0, 0},        {"3x3/4 pad 1", 3, 3, 4, 4, 1, 1},
    {"7x7/2 pad 3", 7, 7, 2, 2, 3, 3, false, true},
    {"6x4/3x2 pad 2x1", 6, 4, 3, 2, 2, 1, false, true},
};

// Plane sizes: over 64 x 64 (four windows of a row per vector), smaller ones (four planes per
// vector), ragged rows (not a multiple of 4 outputs), planes barely larger than a window, and
// planes smaller than a padded window.
const std::pair<int, int> kPlanes[] = {{9, 467}, {21, 37}, {13, 11}, {7, 9},
                                       {4, 4},   {5, 6},   {2, 3}};

struct Method {
  const char* name;
  PoolWindowParams p;
  bool exact;  // bit-identical to the generic path
};

std::vector<Method> methods() {
  auto make = [](PoolMethod m) {
    PoolWindowParams p;
    p.method = m;
    return p;
  };
  std::vector<Method> out;
  out.push_back({"max", make(PoolMethod::max), true});
  out.push_back({"min", make(PoolMethod::min), true});
  out.push_back({"avg", make(PoolMethod::avg), true});
  auto mixed = make(PoolMethod::mixed);
  mixed.lambda = 0.3f;
  out.push_back({"mixed", mixed, true});
  for (int k : {1, 2, 5, 9, 25}) {
    auto p = make(PoolMethod::avgtopk);
    p.k = k;
    out.push_back({"avgtopk", p, true});
  }
  auto tmax = make(PoolMethod::tmaxavg);
  tmax.k = 3;
  tmax.threshold = 0.4f;
  out.push_back({"tmaxavg", tmax, true});
  for (float pp : {1.f, 2.f, 3.f, 2.5f}) {
    auto p = make(PoolMethod::lp);
    p.p = pp;
    out.push_back({"lp", p, pp == 1.f || pp == 2.5f});
  }
  out.push_back({"softpool", make(PoolMethod::softpool), false});
  for (bool training : {false, true}) {
    auto p = make(PoolMethod::stochastic);
    p.training = training;
    out.push_back({training ? "stochastic (training)" : "stochastic (eval)", p, true});
  }
  for (float a : {0.5f, 0.2f, 1.f}) {
    auto p = make(PoolMethod::rwp);
    p.rank_a = a;
    out.push_back({"rwp", p, true});
  }
  for (bool training : {false, true}) {
    auto p = make(PoolMethod::rsp);
    p.rank_a = 0.3f;
    p.training = training;
    out.push_back({training ? "rsp (training)" : "rsp (eval)", p, true});
  }
  return out;
}

PoolGeom geometry(const Geometry& G, int C, int H, int W, bool include_pad, bool relu) {
  if (G.global) return make_pool_geom(C, H, W, H, W, 1, 1, 0, 0, include_pad, relu);
  return make_pool_geom(C, H, W, G.kh, G.kw, G.sh, G.sw, G.ph, G.pw, include_pad, relu);
}

// Whether the geometry has at least one output and every window an element.
bool usable(const PoolGeom& g) { return g.OH >= 1 && g.OW >= 1 && g.PH < g.KH && g.PW < g.KW; }

// Inputs drawn from a few values, so that windows hold ties (and -0 beside +0). Sums of
// those are exact in any order, so `rounding` makes most values continuous, for which the
// order of a sum shows in its bits.
std::vector<float> tied_input(size_t n, std::mt19937_64& rng, bool specials,
                              bool rounding = false) {
  const float pool[] = {-1.f, -0.5f, -0.f, 0.f, 0.25f, 0.5f, 1.f, 2.f};
  std::uniform_int_distribution<int> pick(0, 7), rare(0, 40);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> x(n);
  for (float& v : x) {
    v = rounding && rare(rng) > 4 ? normal(rng) : pool[pick(rng)];
    if (specials) {
      const int r = rare(rng);
      if (r == 0) v = std::numeric_limits<float>::quiet_NaN();
      if (r == 1) v = std::numeric_limits<float>::infinity();
      if (r == 2) v = -std::numeric_limits<float>::infinity();
    }
  }
  return x;
}

// ---- the naive reference: windows gathered here, the methods' definitions in double ----

struct RefWindow {
  std::vector<double> v;
  std::vector<int> at;  // plane offsets
};

RefWindow ref_window(const PoolGeom& g, const float* plane, int oh, int ow) {
  RefWindow w;
  for (int i = 0; i < g.KH; ++i)
    for (int j = 0; j < g.KW; ++j) {
      const int h = oh * g.SH - g.PH + i, c = ow * g.SW - g.PW + j;
      if (h < 0 || h >= g.H || c < 0 || c >= g.W) continue;
      const double x = plane[h * g.W + c];
      w.v.push_back(g.relu_in ? std::max(x, 0.0) : x);
      w.at.push_back(h * g.W + c);
    }
  return w;
}

// Window positions in descending order, ties to the lower position (a stable sort).
std::vector<int> ranking(const std::vector<double>& v) {
  std::vector<int> r(v.size());
  std::iota(r.begin(), r.end(), 0);
  std::stable_sort(r.begin(), r.end(), [&](int a, int b) { return v[a] > v[b]; });
  return r;
}

// Forward value and d(value)/d(element) of one window.
double ref_forward_backward(const PoolWindowParams& P, const std::vector<double>& v, int divisor,
                            std::vector<double>& grad) {
  const int n = int(v.size());
  grad.assign(n, 0.0);
  const std::vector<int> r = ranking(v);
  const double sum = std::accumulate(v.begin(), v.end(), 0.0);
  auto topk = [&](int k) {
    k = std::min(k, n);
    double s = 0;
    for (int i = 0; i < k; ++i) s += v[r[i]], grad[r[i]] = 1.0 / k;
    return s / k;
  };
  switch (P.method) {
    case PoolMethod::max:
      grad[r[0]] = 1;
      return v[r[0]];
    case PoolMethod::min: {
      const int m = int(std::min_element(v.begin(), v.end()) - v.begin());  // the first minimum
      grad[m] = 1;
      return v[m];
    }
    case PoolMethod::avg:
      for (double& x : grad) x = 1.0 / divisor;
      return sum / divisor;
    case PoolMethod::mixed:
      for (double& x : grad) x = (1 - P.lambda) / divisor;
      grad[r[0]] += P.lambda;
      return P.lambda * v[r[0]] + (1 - P.lambda) * sum / divisor;
    case PoolMethod::avgtopk:
      return topk(P.k);
    case PoolMethod::tmaxavg:
      if (v[r[0]] >= P.threshold) {
        grad[r[0]] = 1;
        return v[r[0]];
      }
      return topk(P.k);
    case PoolMethod::lp: {
      double s = 0;
      for (double x : v) s += std::pow(std::abs(x), P.p);
      const double y = std::pow(s, 1.0 / P.p);
      if (y > 0)
        for (int i = 0; i < n; ++i)
          if (v[i] != 0) grad[i] = (v[i] > 0 ? 1 : -1) * std::pow(std::abs(v[i]) / y, P.p - 1);
      return y;
    }
    case PoolMethod::softpool: {
      double den = 0, num = 0;
      for (double x : v) den += std::exp(x), num += std::exp(x) * x;
      const double y = num / den;
      for (int i = 0; i < n; ++i) grad[i] = std::exp(v[i]) / den * (1 + v[i] - y);
      return y;
    }
    case PoolMethod::rwp:
    case PoolMethod::rsp: {  // rsp in evaluation: rank weights a (1 - a)^r, normalised
      double den = 0, num = 0, w = P.rank_a;
      for (int i = 0; i < n; ++i, w *= 1 - P.rank_a) den += w, num += w * v[r[i]];
      w = P.rank_a;
      for (int i = 0; i < n; ++i, w *= 1 - P.rank_a) grad[r[i]] = w / den;
      return num / den;
    }
    case PoolMethod::stochastic: {  // evaluation: sum w^2 / sum w over w = max(v, 0)
      double s = 0, q = 0;
      for (double x : v) s += std::max(x, 0.0), q += std::max(x, 0.0) * std::max(x, 0.0);
      if (!(s > 0)) return 0;
      for (int i = 0; i < n; ++i)
        if (v[i] > 0) grad[i] = (2 * v[i] * s - q) / (s * s);
      return q / s;
    }
  }
  ADD_FAILURE() << "no reference";
  return 0;
}

bool same_bits(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return std::memcmp(&a, &b, sizeof a) == 0;
}

bool close(double got, double want) {
  if (std::isnan(want)) return std::isnan(got);
  return std::abs(got - want) <= 2e-6 + 2e-5 * std::abs(want);
}

// The fast and the generic path's outputs and gradients (both backwards from the generic y),
// every output poisoned first.
struct BothPaths {
  std::vector<float> y_fast, y_gen, dx_fast, dx_gen;
};

BothPaths run_both(const PoolGeom& g, const PoolWindowParams& P, const PoolRng& draws, int n,
                   const std::vector<float>& x, const std::vector<float>& dy) {
  const float poison = std::numeric_limits<float>::quiet_NaN();
  BothPaths r{std::vector<float>(dy.size(), poison), std::vector<float>(dy.size(), poison),
              std::vector<float>(x.size(), poison), std::vector<float>(x.size(), poison)};
  cpu::pool_forward_fast(g, P, draws, n, x.data(), r.y_fast.data());
  cpu::pool_forward_generic(g, P, draws, n, x.data(), r.y_gen.data());
  cpu::pool_backward_fast(g, P, draws, n, x.data(), r.y_gen.data(), dy.data(), r.dx_fast.data());
  cpu::pool_backward_generic(g, P, draws, n, x.data(), r.y_gen.data(), dy.data(),
                             r.dx_gen.data());
  return r;
}

// The two paths agree: bit for bit, or within float rounding (an infinite output exactly).
void expect_agree(const BothPaths& r, bool exact, const std::string& what) {
  for (size_t i = 0; i < r.y_gen.size(); ++i) {
    const float a = r.y_fast[i], b = r.y_gen[i];
    ASSERT_TRUE(exact ? same_bits(a, b) : close(a, b) || (std::isinf(b) && a == b))
        << what << ": output " << i << " fast " << a << " generic " << b;
  }
  for (size_t i = 0; i < r.dx_gen.size(); ++i) {
    const float a = r.dx_fast[i], b = r.dx_gen[i];
    ASSERT_TRUE(exact ? same_bits(a, b) : close(a, b))
        << what << ": dx " << i << " fast " << a << " generic " << b;
  }
}

struct Case {
  const Geometry* G;
  int H, W;
  Method m;
  bool include_pad, relu, specials, rounding;
  std::string what() const {
    return std::string(m.name) + " k=" + std::to_string(m.p.k) + " p=" + std::to_string(m.p.p) +
           " a=" + std::to_string(m.p.rank_a) +
           " " + G->name + " on " + std::to_string(H) + "x" + std::to_string(W) +
           (include_pad ? "" : " include_pad=0") + (relu ? " relu_in" : "") +
           (specials ? " with NaN/inf" : "") + (rounding ? " continuous" : "");
  }
};

// Runs one case: the fast path against the generic path and (finite inputs) the reference.
void check(const Case& c, std::mt19937_64& rng) {
  const int n = 2, C = 3;
  const PoolGeom g = geometry(*c.G, C, c.H, c.W, c.include_pad, c.relu);
  if (!usable(g)) return;
  const PoolWindowParams& P = c.m.p;
  // Global stochastic pooling of planes over 5x5 is left to the generic path but where the
  // window lists take it (training, planes up to 64 x 64), as are windows beyond the templates
  // but for the methods of the window lists on planes they take.
  const bool stochastic_training = P.method == PoolMethod::stochastic && P.training;
  const bool listed = P.method == PoolMethod::max || P.method == PoolMethod::min ||
                      P.method == PoolMethod::avg || P.method == PoolMethod::mixed ||
                      P.method == PoolMethod::lp || stochastic_training;
  const bool on_lists = listed && c.H * c.W <= 64 * 64;
  // Rank-weighted pooling: windows of at most kPoolMaxRanked elements (the layer refuses
  // larger), on the window templates (up to 5x5).
  const bool rank_weighted = P.method == PoolMethod::rwp || P.method == PoolMethod::rsp;
  if (rank_weighted && g.KH * g.KW > kPoolMaxRanked) return;
  const bool generic =
      (c.G->global && P.method == PoolMethod::stochastic && c.H * c.W > 25 && !on_lists) ||
      (c.G->global && rank_weighted && std::max(c.H, c.W) > 5) ||
      (c.G->lists_only && !on_lists);
  ASSERT_EQ(cpu::pool_fast_covers(g, P, false), !generic) << c.what() << ": the path";
  if (generic) return;
  const size_t in = size_t(n) * C * c.H * c.W, out = size_t(n) * C * g.OH * g.OW;
  const std::vector<float> x = tied_input(in, rng, c.specials, c.rounding);
  std::vector<float> dy = tied_input(out, rng, false, c.rounding);
  const PoolRng draws{7, 2, 5, 1000};
  const BothPaths r = run_both(g, P, draws, n, x, dy);
  expect_agree(r, c.m.exact, c.what());
  if (::testing::Test::HasFatalFailure()) return;
  const std::vector<float>& y_fast = r.y_fast;
  const std::vector<float>& dx_fast = r.dx_fast;
  // Max, min and (where it records) training-time stochastic pooling as the training layer
  // runs them: recording the selection, backward a scatter.
  if (P.method == PoolMethod::max || P.method == PoolMethod::min ||
      (stochastic_training && cpu::pool_fast_records_selection(g, P))) {
    std::vector<int32_t> selection(out, -1);
    const float poison = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> y_rec(out, poison), dx_rec(in, poison);
    cpu::pool_forward(g, P, draws, n, x.data(), y_rec.data(), selection.data());
    cpu::pool_backward(g, P, draws, n, x.data(), y_rec.data(), dy.data(), dx_rec.data(), nullptr,
                       selection.data());
    for (size_t i = 0; i < out; ++i)
      ASSERT_TRUE(same_bits(y_rec[i], r.y_gen[i])) << c.what() << ": recorded output " << i;
    for (size_t i = 0; i < in; ++i)
      ASSERT_TRUE(same_bits(dx_rec[i], r.dx_gen[i])) << c.what() << ": scattered dx " << i;
  }
  // Training-time stochastic pooling draws: it is compared with the generic path only (its
  // sampling distribution is test_pool.cpp's).
  if (c.specials || (pool_draws_per_window(P.method) && P.training)) return;
  // The reference (finite inputs): outputs, and dx accumulated window by window in double.
  std::vector<double> dx_ref(in, 0.0), grad;
  for (int pl = 0; pl < n * C; ++pl) {
    const float* plane = x.data() + size_t(pl) * c.H * c.W;
    for (int oh = 0; oh < g.OH; ++oh)
      for (int ow = 0; ow < g.OW; ++ow) {
        const RefWindow w = ref_window(g, plane, oh, ow);
        const int divisor = g.include_pad ? g.KH * g.KW : int(w.v.size());
        const size_t o = (size_t(pl) * g.OH + oh) * g.OW + ow;
        const double want = ref_forward_backward(P, w.v, divisor, grad);
        ASSERT_TRUE(close(y_fast[o], want))
            << c.what() << ": output " << o << " is " << y_fast[o] << ", reference " << want;
        for (size_t i = 0; i < w.at.size(); ++i)
          dx_ref[size_t(pl) * c.H * c.W + w.at[i]] += grad[i] * dy[o];
      }
  }
  for (size_t i = 0; i < in; ++i) {
    const double want = c.relu && !(x[i] > 0.f) ? 0.0 : dx_ref[i];
    ASSERT_TRUE(close(dx_fast[i], want))
        << c.what() << ": dx " << i << " is " << dx_fast[i] << ", reference " << want;
  }
}

TEST(PoolGeometry, EveryGeometryTakesAFastPathAndMatchesReferenceAndGenericPath) {
  std::mt19937_64 rng(2026);
  int ran = 0;
  for (const Geometry& G : kGeometries)
    for (auto [H, W] : kPlanes)
      for (const Method& m : methods())
        for (int kind = 0; kind < 3; ++kind) {
          const bool specials = kind == 1, rounding = kind == 2;
          const bool include_pad = (H + W) % 2 == 0, relu = (H * W + int(m.p.method)) % 3 == 0;
          Case c{&G, H, W, m, include_pad, relu, specials, rounding};
          // Softpool's exp of large values is compared on the generic path only.
          if (specials && m.p.method == PoolMethod::softpool) continue;
          check(c, rng);
          if (::testing::Test::HasFatalFailure()) return;
          ++ran;
        }
  EXPECT_GT(ran, 1000);
}

// The paths the benchmark matrix measures are the ones named here, so a benchmark that
// silently fell back to the generic loop would fail this first.
TEST(PoolGeometry, TheBenchmarkGeometriesNameTheirPath) {
  const PoolGeom g = make_pool_geom(64, 32, 32, 3, 3, 2, 2, 1, 1, true, false);
  PoolWindowParams p;
  p.method = PoolMethod::avgtopk;
  p.k = 5;
  EXPECT_STREQ(cpu::pool_path(g, p, false, false), "window 3x3, four planes per vector");
  const PoolGeom wide = make_pool_geom(64, 96, 96, 3, 3, 2, 2, 1, 1, true, false);
  EXPECT_STREQ(cpu::pool_path(wide, p, false, false), "window 3x3, masked edges");
  p.method = PoolMethod::max;
  EXPECT_STREQ(cpu::pool_path(g, p, true, false), "max, recording (window lists)");
  EXPECT_STREQ(cpu::pool_path(wide, p, true, false), "max, recording (window template)");
  for (PoolMethod m :
       {PoolMethod::max, PoolMethod::min, PoolMethod::avg, PoolMethod::mixed, PoolMethod::lp}) {
    p.method = m;
    EXPECT_STREQ(cpu::pool_path(g, p, false, false), "window lists, four planes per vector");
  }
  const PoolGeom seven = make_pool_geom(64, 32, 32, 7, 7, 2, 2, 3, 3, true, false);
  EXPECT_STREQ(cpu::pool_path(seven, p, false, false), "window lists, four planes per vector");
  p.method = PoolMethod::stochastic;
  EXPECT_STREQ(cpu::pool_path(g, p, false, false), "window 3x3, four planes per vector");
  p.training = true;  // in training it draws on the window lists and records its draw
  EXPECT_STREQ(cpu::pool_path(g, p, false, false), "window lists, four planes per vector");
  EXPECT_STREQ(cpu::pool_path(g, p, true, false), "stochastic, recording (window lists)");
  EXPECT_STREQ(cpu::pool_path(wide, p, true, false), "window 3x3, masked edges");
  p.training = false;
  const PoolGeom global = make_pool_geom(64, 32, 32, 32, 32, 1, 1, 0, 0, true, false);
  EXPECT_STREQ(cpu::pool_path(global, p, false, false), "generic (each window gathered)");
  const PoolGeom two = make_pool_geom(64, 32, 32, 2, 2, 2, 2, 0, 0, true, false);
  p.method = PoolMethod::avgtopk;
  EXPECT_STREQ(cpu::pool_path(two, p, false, false), "window 2x2");
  // Rows of fewer than four whole 2x2 windows leave the vector's lanes to four planes.
  const PoolGeom small = make_pool_geom(64, 4, 4, 2, 2, 2, 2, 0, 0, true, false);
  EXPECT_STREQ(cpu::pool_path(small, p, false, false), "window 2x2, four planes per vector");
  p.method = PoolMethod::avg;
  EXPECT_STREQ(cpu::pool_path(small, p, false, false), "window lists, four planes per vector");
}

// Global avg and mixed on planes of 64 elements or more sum sixteen planes at a time: whole
// sets of sixteen and a partial one (39 planes), each plane's sum still in window order, with
// continuous values (whose sums show their order) and a NaN in one plane.
TEST(PoolGeometry, GlobalSumsOverSetsOfSixteenPlanesMatchTheGenericPath) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0.f, 1.f);
  const int n = 3, C = 13;
  for (auto [H, W] : {std::pair{9, 9}, std::pair{16, 16}})
    for (bool relu : {false, true})
      for (PoolMethod m : {PoolMethod::avg, PoolMethod::mixed}) {
        PoolWindowParams P;
        P.method = m;
        P.lambda = 0.3f;
        const PoolGeom g = make_pool_geom(C, H, W, H, W, 1, 1, 0, 0, true, relu);
        std::vector<float> x(size_t(n) * C * H * W), dy(size_t(n) * C);
        for (float& v : x) v = normal(rng);
        for (float& v : dy) v = normal(rng);
        x[size_t(20) * H * W + 7] = std::numeric_limits<float>::quiet_NaN();
        const std::string what = std::string(m == PoolMethod::avg ? "avg" : "mixed") +
                                 " global " + std::to_string(H) + "x" + std::to_string(W) +
                                 (relu ? " relu_in" : "");
        expect_agree(run_both(g, P, PoolRng{}, n, x, dy), true, what);
        if (::testing::Test::HasFatalFailure()) return;
      }
}

// SoftPool on four planes per vector takes each element's exp once, shifted by its plane's
// max; a window whose max lies far below that (here 100 below a spike) takes the window math,
// as do planes holding NaN or inf (the test above). With spikes 30 and 100 in some planes,
// next to planes without one in the same vector, every output and gradient agrees with the
// generic path.
TEST(PoolGeometry, SoftPoolSharedWeightsAndTheirFallbackMatchTheGenericPath) {
  PoolWindowParams P;
  P.method = PoolMethod::softpool;
  std::mt19937_64 rng(99);
  std::normal_distribution<float> normal(0.f, 1.f);
  const int n = 2, C = 3, H = 16, W = 16;
  struct G {
    int k, s, pad;
  };
  for (const G& w : {G{3, 2, 1}, G{5, 2, 2}, G{2, 2, 0}, G{3, 3, 0}})
    for (const float spike : {30.f, 100.f}) {
      const PoolGeom g = make_pool_geom(C, H, W, w.k, w.k, w.s, w.s, w.pad, w.pad, true, false);
      const std::string what = "window " + std::to_string(w.k) + " stride " +
                               std::to_string(w.s) + ", spike " + std::to_string(spike);
      const std::string planes_path = "window " + std::to_string(w.k) + "x" +
                                      std::to_string(w.k) + ", four planes per vector";
      if (w.k != 2) {
        EXPECT_STREQ(cpu::pool_path(g, P, false, false), planes_path.c_str());
      }
      const size_t in = size_t(n) * C * H * W, out = size_t(n) * C * g.OH * g.OW;
      std::vector<float> x(in), dy(out);
      for (float& v : x) v = normal(rng);
      for (float& v : dy) v = normal(rng);
      for (int pl : {0, 3, 4}) x[size_t(pl) * H * W + (pl * 37) % (H * W)] = spike;
      expect_agree(run_both(g, P, PoolRng{7, 2, 5, 0}, n, x, dy), false, what);
      if (::testing::Test::HasFatalFailure()) return;
    }
}

// The fast paths' four-lane draws are the generic path's scalar draws, bit for bit, for
// indices that share a Philox block, straddle two, or use the counter's high words.
TEST(PoolGeometry, FourLaneDrawsAreTheScalarDraws) {
  std::mt19937_64 rng(20261206);
  for (int t = 0; t < 2000; ++t) {
    const uint64_t seed = rng(), base = t < 1000 ? rng() % 4096 : rng();
    const uint64_t stride = t % 3 == 0 ? 1 : rng() % 5000;
    const uint32_t layer = uint32_t(rng() % 7), step = uint32_t(rng());
    uint64_t index[cpu::simd::kLanes];
    for (int l = 0; l < cpu::simd::kLanes; ++l) index[l] = base + l * stride;
    const cpu::simd::vf u =
        cpu::pool_window::philox_uniform_lanes(seed, kRngPoolSample, layer, step, index);
    for (int l = 0; l < cpu::simd::kLanes; ++l) {
      const float got = u[l], want = philox_uniform(seed, kRngPoolSample, layer, step, index[l]);
      ASSERT_EQ(std::memcmp(&got, &want, sizeof want), 0)
          << "index " << index[l] << " lane " << l << ": " << got << " vs " << want;
    }
  }
}

}  // namespace
