// The ONNX export plan (convpool/onnx_plan.h) and `convpool export`'s refusals. The export
// itself is checked in ONNX Runtime by tests/onnx-runtime-test (the ctest test onnx_runtime).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "convpool/checkpoint.h"
#include "convpool/onnx_plan.h"
#include "convpool/pooling.h"
#include "test_helpers.h"

namespace convpool {
namespace {

using test::CommandResult;
using test::error_of;
using test::run_convpool;
using test::TempDir;

std::unique_ptr<Graph> build(const std::string& text, const std::string& pool = "") {
  ModelSpec spec = parse_model_text(text, "m.cfg");
  if (!pool.empty()) apply_pool_override(spec, pool);
  return Graph::build(spec, GraphOptions{Device::cpu, 1, 0});
}

const nlohmann::json& node(const nlohmann::json& plan, const std::string& name) {
  for (auto& n : plan["nodes"])
    if (n["name"] == name) return n;
  throw std::runtime_error("no node " + name);
}

bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == std::string::npos; }

const char* kZoo =
    "input channels=3 height=9 width=9\n"
    "conv name=c1 filters=4 size=3 stride=2 padding=same\n"
    "gelu name=g\n"
    "pool softpool size=3 stride=2 pad=1 name=p1\n"
    "pool avgtopk global k=3 name=gp\n"
    "dense name=fc units=10\n";

TEST(OnnxPlan, ResolvesAttributesShapesAndTensors) {
  const auto g = build(kZoo);
  Checkpoint ckpt;
  const nlohmann::json plan = onnx_export_plan(*g, ckpt);
  EXPECT_EQ(plan["opset"], 17);
  EXPECT_TRUE(plan["normalize"].is_null());
  EXPECT_EQ(plan["output"], "fc");
  // 9 -> 5 at stride 2: 4 rows of padding in all, TensorFlow puts the odd one at the end.
  const auto& c1 = node(plan, "c1");
  EXPECT_EQ(c1["attrs"]["pads"], nlohmann::json({1, 1, 1, 1}));
  EXPECT_EQ(c1["shape"], nlohmann::json({4, 5, 5}));
  EXPECT_EQ(c1["params"]["weight"], "c1.weight");
  const auto& p1 = node(plan, "p1");
  EXPECT_EQ(p1["attrs"]["method"], "softpool");
  EXPECT_EQ(p1["attrs"]["pad"], nlohmann::json({1, 1}));
  EXPECT_EQ(p1["inputs"], nlohmann::json({"g"}));
  const auto& gp = node(plan, "gp");
  EXPECT_EQ(gp["attrs"]["global"], true);
  EXPECT_EQ(gp["attrs"]["kernel"], nlohmann::json({3, 3}));
  EXPECT_EQ(gp["attrs"]["k"], 3);
}

TEST(OnnxPlan, AsymmetricSamePadding) {
  // 32 -> 16 at stride 2 with a 3x3 kernel: one row of padding, at the bottom (and right).
  const auto g = build("input channels=3 height=32 width=32\nconv name=c filters=2 size=3 "
                       "stride=2 padding=same\nflatten\ndense units=10\n");
  EXPECT_EQ(node(onnx_export_plan(*g, Checkpoint{}), "c")["attrs"]["pads"],
            nlohmann::json({0, 0, 1, 1}));
}

TEST(OnnxPlan, PoolOverrideAndLearnedMixing) {
  const auto g = build(kZoo, "mixed:learned=1");
  const nlohmann::json plan = onnx_export_plan(*g, Checkpoint{});
  EXPECT_EQ(node(plan, "p1")["attrs"]["method"], "mixed");
  EXPECT_EQ(node(plan, "p1")["attrs"]["learned"], true);
  EXPECT_EQ(node(plan, "p1")["params"]["alpha"], "p1.alpha");
  EXPECT_EQ(node(plan, "gp")["attrs"]["global"], true);
}

TEST(OnnxPlan, FoldsTheInputNormalisation) {
  const auto g = build(kZoo);
  Checkpoint ckpt;
  ckpt.state.input.mean[1] = 0.5f;
  ckpt.state.input.std[2] = 0.25f;
  const nlohmann::json plan = onnx_export_plan(*g, ckpt);
  ASSERT_FALSE(plan["normalize"].is_null());
  EXPECT_EQ(plan["normalize"]["mean"][1], 0.5);
  EXPECT_EQ(plan["normalize"]["std"][2], 0.25);
}

TEST(OnnxPlan, RefusesAnUnmappedLayerTypeNamingIt) {
  const auto g = build(kZoo);
  OnnxOpTable table = onnx_op_table();
  table.erase("gelu");
  const std::string e = error_of([&] { onnx_export_plan(*g, Checkpoint{}, table); });
  EXPECT_TRUE(one_line(e)) << e;
  EXPECT_NE(e.find("cannot export to ONNX: m.cfg:3: gelu 'g': layer type 'gelu' has no ONNX "
                   "mapping"),
            std::string::npos)
      << e;
}

TEST(OnnxPlan, RefusesAnUnknownOptionNamingIt) {
  const auto g = build(kZoo);
  OnnxOpTable table = onnx_op_table();
  auto& conv = table["conv"];
  conv.erase(std::find(conv.begin(), conv.end(), "stride"));
  const std::string e = error_of([&] { onnx_export_plan(*g, Checkpoint{}, table); });
  EXPECT_TRUE(one_line(e)) << e;
  EXPECT_NE(e.find("conv 'c1': option stride=2 is not supported by the ONNX exporter"),
            std::string::npos)
      << e;
}

TEST(OnnxPlan, RefusesOverlappingPatchWindowsBeyondTheSliceLimit) {
  const std::string model =
      "input channels=1 height=12 width=12\npool avgtopk size=9 stride=STRIDE k=2\n"
      "flatten\ndense units=2\n";
  auto with = [&](const std::string& stride) {
    std::string m = model;
    m.replace(m.find("STRIDE"), 6, stride);
    return build(m);
  };
  const std::string e = error_of([&] { onnx_export_plan(*with("1"), Checkpoint{}); });
  EXPECT_TRUE(one_line(e)) << e;
  EXPECT_NE(e.find("pool 'pool1': overlapping avgtopk windows of 9x9 would need 81 Slice nodes"),
            std::string::npos)
      << e;
  EXPECT_EQ(error_of([&] { onnx_export_plan(*with("9"), Checkpoint{}); }), "");
  // Methods with an ONNX pooling operator need no patches: any window is fine.
  const std::string max_model =
      "input channels=1 height=12 width=12\npool max size=9 stride=1\nflatten\ndense units=2\n";
  EXPECT_EQ(error_of([&] { onnx_export_plan(*build(max_model), Checkpoint{}); }), "");
}

TEST(OnnxExportCli, BadInputIsOneLineAndNonZero) {
  TempDir d;
  const CommandResult missing =
      run_convpool("export --checkpoint " + d.str("none.safetensors") + " --onnx " + d.str("m.onnx"));
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_TRUE(one_line(missing.output.substr(0, missing.output.size() - 1))) << missing.output;
  EXPECT_NE(missing.output.find("none.safetensors"), std::string::npos) << missing.output;

  const CommandResult no_dir = run_convpool("export --checkpoint " + d.str("none.safetensors") +
                                            " --onnx " + d.str("no/such/dir/m.onnx"));
  EXPECT_EQ(no_dir.exit_code, 1) << no_dir.output;
  EXPECT_NE(no_dir.output.find("does not exist"), std::string::npos) << no_dir.output;

  const CommandResult nothing = run_convpool("export --checkpoint " + d.str("none.safetensors"));
  EXPECT_EQ(nothing.exit_code, 1) << nothing.output;
  EXPECT_NE(nothing.output.find("--onnx"), std::string::npos) << nothing.output;
}

// export uses the weights eval uses: a checkpoint trained with --ema exports its EMA weights
// (the plan names the ema.* tensors and says so), unless --weights raw; a non-finite value in
// the exported set is refused even when the other set is clean.
TEST(OnnxExportCli, ExportsTheWeightsEvalUses) {
  TempDir d;
  test::write_cifar_dir(d.str("data"), 20, 11);
  ASSERT_EQ(run_convpool("train --device cpu --threads 1 --epochs 1 --quiet --ema 0.9 --data " +
                         d.str("data") + " --out " + d.str("run"))
                .exit_code,
            0);
  const std::string path = d.str("run/last.safetensors");
  Checkpoint ckpt = load_checkpoint(path);
  ASSERT_TRUE(uses_ema_weights(ckpt, "auto"));
  EXPECT_FALSE(uses_ema_weights(ckpt, "raw"));
  auto g = build_from_checkpoint(ckpt, path, GraphOptions{Device::cpu, 1, 0}, true);
  const nlohmann::json ema_plan = onnx_export_plan(*g, ckpt, onnx_op_table(), true);
  EXPECT_EQ(ema_plan["weights"], "ema");
  EXPECT_EQ(node(ema_plan, "conv1")["params"]["weight"], "ema.conv1.weight");
  const nlohmann::json raw_plan = onnx_export_plan(*g, ckpt);
  EXPECT_EQ(raw_plan["weights"], "raw");
  EXPECT_EQ(node(raw_plan, "conv1")["params"]["weight"], "conv1.weight");
  // The CLI's plan follows --weights.
  ASSERT_EQ(run_convpool("export --checkpoint " + path + " --plan " + d.str("auto.json")).exit_code, 0);
  EXPECT_NE(test::read_file(d.str("auto.json")).find("\"ema.conv1.weight\""), std::string::npos);
  ASSERT_EQ(run_convpool("export --weights raw --checkpoint " + path + " --plan " + d.str("raw.json"))
                .exit_code,
            0);
  EXPECT_EQ(test::read_file(d.str("raw.json")).find("\"ema.conv1.weight\""), std::string::npos);
  // NaN only among the EMA's tensors: the export of the EMA weights is refused.
  for (auto& t : ckpt.file.tensors)
    if (t.name == "ema.fc1.weight") t.data[3] = std::nanf("");
  EXPECT_NE(error_of([&] { build_from_checkpoint(ckpt, path, GraphOptions{Device::cpu, 1, 0}, true); })
                .find("non-finite"),
            std::string::npos);
  EXPECT_NO_THROW(build_from_checkpoint(ckpt, path, GraphOptions{Device::cpu, 1, 0}, false));
}

// Outputs never replace the checkpoint, each other, or a file that is not an earlier export
// (a run's config, its other checkpoint) unless --overwrite; an earlier export is replaced.
TEST(OnnxExportCli, OutputsNeverReplaceInputsOrOtherFiles) {
  TempDir d;
  test::write_cifar_dir(d.str("data"), 20, 9);
  ASSERT_EQ(run_convpool("train --device cpu --threads 1 --epochs 1 --quiet --data " + d.str("data") +
                         " --out " + d.str("run"))
                .exit_code,
            0);
  const std::string ckpt = d.str("run/last.safetensors");
  const std::string before_ckpt = test::read_file(ckpt),
                    before_config = test::read_file(d.str("run/config.toml")),
                    before_best = test::read_file(d.str("run/best.safetensors"));
  const std::string base = "export --checkpoint " + ckpt;
  struct Refusal {
    std::string args, want;
  };
  for (const Refusal& r : std::vector<Refusal>{
           {" --onnx " + ckpt, "is the checkpoint being exported"},
           {" --plan " + d.str("run/../run/last.safetensors"), "is the checkpoint being exported"},
           {" --plan " + d.str("run/config.toml"), "exists and is not an earlier export"},
           {" --logits " + d.str("run/best.safetensors"), "exists and is not an earlier export"},
           {" --plan " + d.str("p.json") + " --logits " + d.str("p.json"), "name the same file"}}) {
    const CommandResult res = run_convpool(base + r.args);
    EXPECT_EQ(res.exit_code, 1) << r.args << "\n" << res.output;
    EXPECT_NE(res.output.find(r.want), std::string::npos) << r.args << "\n" << res.output;
    EXPECT_TRUE(one_line(res.output.substr(0, res.output.size() - 1))) << res.output;
  }
  EXPECT_EQ(test::read_file(ckpt), before_ckpt);
  EXPECT_EQ(test::read_file(d.str("run/config.toml")), before_config);
  EXPECT_EQ(test::read_file(d.str("run/best.safetensors")), before_best);
  // An earlier export is replaced; --overwrite replaces anything but the checkpoint.
  ASSERT_EQ(run_convpool(base + " --plan " + d.str("p.json")).exit_code, 0);
  const CommandResult again = run_convpool(base + " --plan " + d.str("p.json"));
  EXPECT_EQ(again.exit_code, 0) << again.output;
  const CommandResult forced = run_convpool(base + " --overwrite --plan " + d.str("run/config.toml"));
  EXPECT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_NE(test::read_file(d.str("run/config.toml")).find("convpool-onnx-plan"), std::string::npos);
  const CommandResult never = run_convpool(base + " --overwrite --onnx " + ckpt);
  EXPECT_EQ(never.exit_code, 1) << never.output;
  EXPECT_EQ(test::read_file(ckpt), before_ckpt);
}

}  // namespace
}  // namespace convpool
