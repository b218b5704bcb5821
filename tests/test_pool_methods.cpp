// The pooling-method table (kernels/pool_methods.cuh) walked row by row: each row is well
// formed, reaches the parser, `pool-methods`, the study's default list and the ONNX planner,
// and has a CPU path. (Its CUDA path: EveryMethodSmall/Warp in tests/kernel_parity_pool.cpp; its
// ONNX form: tests/onnx-runtime-test runs every exportable row; its PyTorch module:
// TestMethodTable in python/tests/test_convpool_torch.py.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/layer.h"
#include "convpool/model.h"
#include "convpool/onnx_plan.h"
#include "convpool/pooling.h"
#include "cpu/pool.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

TEST(PoolMethodTable, RowsAreWellFormed) {
  std::set<std::string> names, classes;
  ASSERT_EQ(int(pool_methods().size()), kPoolMethodCount);
  for (size_t i = 0; i < pool_methods().size(); ++i) {
    const PoolMethodSpec& m = pool_methods()[i];
    EXPECT_EQ(int(m.id), int(i)) << m.name << ": rows are in enum order";
    EXPECT_EQ(&pool_method(m.id), &m);
    EXPECT_EQ(find_pool_method(m.name), &m);
    EXPECT_TRUE(names.insert(m.name).second) << m.name << " twice";
    EXPECT_TRUE(classes.insert(m.python_class).second) << m.python_class << " twice";
    EXPECT_FALSE(m.definition.empty()) << m.name;
    std::set<std::string> keys;
    for (const PoolParamSpec& p : m.params) {
      EXPECT_TRUE(keys.insert(p.key).second) << m.name << ": " << p.key << " twice";
      EXPECT_LE(p.lo, p.def) << m.name << " " << p.key;
      EXPECT_LE(p.def, p.hi) << m.name << " " << p.key;
      if (p.kind != PoolParamKind::real) {
        EXPECT_EQ(p.def, std::floor(p.def)) << m.name;
      }
    }
    // Each of the study's runs is this method, with parameters of its own.
    for (const std::string& run : m.study) {
      EXPECT_EQ(run.substr(0, run.find(':')), m.name) << run;
      ModelSpec spec = parse_model_text("input channels=1 height=4 width=4\npool max size=2\n", "t");
      EXPECT_NO_THROW(apply_pool_override(spec, run)) << run;
      EXPECT_NO_THROW(make_layer(spec.layers.at(0))) << run;
    }
  }
  EXPECT_EQ(find_pool_method("no-such-method"), nullptr);
}

// A value written as the model file would have it.
std::string value_text(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

std::unique_ptr<Layer> pool_layer(const std::string& method, const std::string& params) {
  return make_layer(
      parse_model_text("input channels=1 height=4 width=4\npool " + method + " size=2" + params + "\n",
                       "t")
          .layers.at(0));
}

TEST(PoolMethodTable, TheParserTakesEachParameterInItsRangeOnly) {
  for (const PoolMethodSpec& m : pool_methods()) {
    for (const PoolParamSpec& p : m.params) {
      const std::string what = m.name + " " + p.key;
      auto with = [&](double v) { return pool_layer(m.name, " " + p.key + "=" + value_text(v)); };
      EXPECT_NO_THROW(with(p.def)) << what;
      EXPECT_NO_THROW(with(p.lo)) << what;
      EXPECT_NO_THROW(with(p.hi)) << what;
      // Just outside the range: half the bound's size beyond it (or 1 beyond 0).
      auto beyond = [](double bound, double sign) {
        return bound + sign * (bound != 0 ? std::abs(bound) / 2 : 1.0);
      };
      EXPECT_THROW(with(beyond(p.hi, +1)), Error) << what;
      EXPECT_THROW(with(beyond(p.lo, -1)), Error) << what;
      if (p.kind != PoolParamKind::real) {
        EXPECT_THROW(with(p.lo + 0.5), Error) << what << ": a fraction for a whole number";
      }
    }
    // Another method's parameter is refused.
    for (const PoolMethodSpec& other : pool_methods())
      for (const PoolParamSpec& p : other.params) {
        if (m.has(p.slot)) continue;
        EXPECT_THROW(pool_layer(m.name, " " + p.key + "=1"), Error) << m.name << " took " << p.key;
      }
  }
}

// Every method runs forward and backward on the CPU, over outputs poisoned first: finite
// values in, finite values out, and some gradient reaches the input.
TEST(PoolMethodTable, EveryMethodHasACpuPath) {
  std::mt19937_64 rng(7);
  const int n = 2, C = 3, H = 6, W = 6;
  for (const PoolMethodSpec& m : pool_methods()) {
    for (const bool training : {false, true}) {
      PoolWindowParams p;
      p.method = m.id;
      p.training = training;
      for (const PoolParamSpec& param : m.params) {  // the table's defaults, as the layer sets
        if (param.slot == PoolParamSlot::k) p.k = int(param.def);
        if (param.slot == PoolParamSlot::p) p.p = float(param.def);
        if (param.slot == PoolParamSlot::t) p.threshold = float(param.def);
        if (param.slot == PoolParamSlot::a) p.rank_a = float(param.def);
      }
      const PoolGeom g = make_pool_geom(C, H, W, 3, 3, 2, 2, 1, 1, true, false);
      std::uniform_real_distribution<float> u(m.inputs == PoolInputs::nonneg ? 0.1f : -1.f, 1.f);
      std::vector<float> x(size_t(n) * C * H * W), y(size_t(n) * C * g.OH * g.OW,
                                                       std::numeric_limits<float>::quiet_NaN());
      for (float& v : x) v = u(rng);
      std::vector<int32_t> argmax(y.size());
      const PoolRng r{1, 0, 1, 0};
      cpu::pool_forward(g, p, r, n, x.data(), y.data(), argmax.data());
      for (float v : y) ASSERT_TRUE(std::isfinite(v)) << m.name << (training ? " train" : " eval");
      std::vector<float> dy(y.size(), 1.f), dx(x.size(), std::numeric_limits<float>::quiet_NaN());
      float dlambda = 0;
      cpu::pool_backward(g, p, r, n, x.data(), y.data(), dy.data(), dx.data(), &dlambda,
                         argmax.data());
      double total = 0;
      for (float v : dx) {
        ASSERT_TRUE(std::isfinite(v)) << m.name;
        total += std::abs(v);
      }
      EXPECT_GT(total, 0) << m.name << ": no gradient reached the input";
    }
  }
}

// A method's other name builds the method itself, with its parameter renamed; the alias is
// listed, and its paper's key only is taken.
TEST(PoolMethodTable, AnAliasIsItsMethod) {
  ASSERT_FALSE(pool_method_aliases().empty());
  for (const PoolMethodAlias& a : pool_method_aliases()) {
    const PoolMethodSpec& m = pool_method(a.method);
    EXPECT_EQ(find_pool_method(a.name), nullptr) << a.name << " is a method and an alias";
    EXPECT_TRUE(m.has([&] {
      for (const PoolParamSpec& p : m.params)
        if (p.key == a.method_key) return p.slot;
      ADD_FAILURE() << a.name << ": " << m.name << " has no parameter " << a.method_key;
      return PoolParamSlot::k;
    }()));
    const auto aliased = pool_layer(a.name, " " + a.key + "=3");
    const auto direct = pool_layer(m.name, " " + a.method_key + "=3");
    EXPECT_EQ(aliased->describe(), direct->describe());
    EXPECT_THROW(pool_layer(a.name, " " + a.method_key + "=3"), Error) << a.name;
    ModelSpec spec = parse_model_text("input channels=1 height=4 width=4\npool max size=2\n", "t");
    apply_pool_override(spec, a.name + ":" + a.key + "=3");
    EXPECT_EQ(make_layer(spec.layers.at(0))->describe(), direct->describe());
    ModelSpec bad = parse_model_text("input channels=1 height=4 width=4\npool max size=2\n", "t");
    EXPECT_THROW(apply_pool_override(bad, a.name + ":" + a.method_key + "=3"), Error);
  }
  const CommandResult listed = run_convpool("pool-methods");
  EXPECT_NE(listed.output.find("\nrap "), std::string::npos) << listed.output;
}

// A window pooling op stands in for every non-global pool layer under --pool: a registered op,
// built with the layer's geometry, listed by pool-methods; a global layer is refused with a
// line naming it, as are unknown keys, and a misspelt name gets a suggestion.
TEST(PoolMethodTable, AWindowPoolingOpReplacesPoolLayersKeepingTheirGeometry) {
  ASSERT_FALSE(window_pooling_ops().empty());
  const std::vector<std::string> types = layer_type_names();
  const CommandResult listed = run_convpool("pool-methods");
  for (const WindowPoolingOp& op : window_pooling_ops()) {
    EXPECT_NE(std::find(types.begin(), types.end(), op.name), types.end())
        << op.name << " is not a registered op";
    EXPECT_EQ(find_pool_method(op.name), nullptr) << op.name << " is also a method";
    EXPECT_NE(listed.output.find("\n" + op.name + " "), std::string::npos) << listed.output;
    ModelSpec spec = parse_model_text(
        "input channels=2 height=9 width=9\npool max size=3 stride=2 pad=1 name=p\n", "t");
    apply_pool_override(spec, op.name);
    EXPECT_EQ(spec.layers.at(0).type, op.name);
    const auto g = Graph::build(spec, GraphOptions{Device::cpu, 1, 0});
    EXPECT_EQ(g->layer_output_shape(0).str(), "1x2x5x5");  // (9 + 2 - 3) / 2 + 1
    ModelSpec global = parse_model_text(
        "input channels=2 height=4 width=4\npool max size=2\npool avg global name=gap\n", "t");
    try {
      apply_pool_override(global, op.name);
      ADD_FAILURE() << op.name << " replaced a global pool layer";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'gap' is global"), std::string::npos) << e.what();
    }
    const std::string one_pool = "input channels=1 height=4 width=4\npool max size=2\n";
    ModelSpec unknown = parse_model_text(one_pool, "t");
    apply_pool_override(unknown, op.name + ":k=2");
    EXPECT_THROW(Graph::build(unknown, GraphOptions{Device::cpu, 1, 0}), Error);
    ModelSpec typo = parse_model_text(one_pool, "t");
    try {
      apply_pool_override(typo, op.name.substr(0, op.name.size() - 1) + "x");
      ADD_FAILURE() << "a misspelt op was taken";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("did you mean '" + op.name + "'"), std::string::npos)
          << e.what();
    }
  }
}

// Rank-weighted methods weigh every rank: windows above kPoolMaxRanked elements are refused.
TEST(PoolMethodTable, RankWeightedMethodsRefuseWindowsAbove64Elements) {
  for (const char* m : {"rwp", "rsp"}) {
    auto build = [&](const std::string& line) {
      const auto g = Graph::build(
          parse_model_text("input channels=1 height=9 width=9\n" + line + "\n", "t"),
          GraphOptions{Device::cpu, 1, 0});
      (void)g;
    };
    EXPECT_NO_THROW(build(std::string("pool ") + m + " size=8"));
    try {
      build(std::string("pool ") + m + " size=9");
      ADD_FAILURE() << m << ": a 9x9 window was taken";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("at most 64 elements"), std::string::npos) << e.what();
    }
  }
}

TEST(PoolMethodTable, EveryMethodIsListedAndInTheOnnxPlanOrRefused) {
  const CommandResult listed = run_convpool("pool-methods");
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  const CommandResult json = run_convpool("pool-methods --json");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  const auto table = nlohmann::json::parse(json.output);
  ASSERT_EQ(table.size(), pool_methods().size());
  for (size_t i = 0; i < pool_methods().size(); ++i) {
    const PoolMethodSpec& m = pool_methods()[i];
    EXPECT_NE(listed.output.find("\n" + m.name + " "), std::string::npos) << m.name;
    EXPECT_EQ(table[i]["name"], m.name);
    EXPECT_EQ(table[i]["params"].size(), m.params.size()) << m.name;
  }
  // The ONNX planner takes every row not marked refused, with its parsed parameters.
  for (const PoolMethodSpec& m : pool_methods()) {
    ModelSpec spec = parse_model_text(
        "input channels=2 height=4 width=4\npool max size=2 name=p\nflatten\ndense units=3\n", "t");
    // Each parameter away from its default: the plan must carry the parsed values.
    std::string override_text = m.name;
    std::vector<std::pair<std::string, double>> want;
    for (const PoolParamSpec& p : m.params) {
      const double v = p.kind == PoolParamKind::flag      ? 1 - p.def
                       : p.kind == PoolParamKind::integer ? p.def + 1
                                                          : p.def + 0.3;
      override_text += std::string(want.empty() ? ":" : ",") + p.key + "=" + value_text(v);
      want.emplace_back(p.key, v);
    }
    apply_pool_override(spec, override_text);
    const auto g = Graph::build(spec, GraphOptions{Device::cpu, 1, 0});
    Checkpoint ckpt;
    if (m.onnx == PoolOnnxForm::refused) {
      EXPECT_THROW(onnx_export_plan(*g, ckpt), Error) << m.name;
      continue;
    }
    const nlohmann::json plan = onnx_export_plan(*g, ckpt);
    bool found = false;
    for (auto& node : plan["nodes"])
      if (node["name"] == "p") {
        found = true;
        EXPECT_EQ(node["attrs"]["method"], m.name);
        for (const auto& [key, v] : want) {
          const auto& got = node["attrs"][key];
          EXPECT_EQ(got.is_boolean() ? double(got.get<bool>()) : got.get<double>(), v)
              << m.name << " " << key;
        }
      }
    EXPECT_TRUE(found) << m.name;
  }
}

}  // namespace
