// convpool profile: a per-layer time table of the real training step (caffe time's idea), on
// the CPU (steady clock) or the GPU (CUDA events), with the measured steps wrapped in
// cudaProfilerStart/Stop so Nsight Systems and Nsight Compute can capture exactly them.
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "cli_measure.h"
#include "convpool/buffer.h"
#include "convpool/data.h"
#include "convpool/device.h"
#include "convpool/model.h"
#include "convpool/pooling.h"

namespace convpool::cli {

namespace {

struct ProfileOptions {
  std::string model = default_model_path(), pool, global_pool, device = "auto", data;
  int batch = 32, warmup = 5, steps = 20, threads = 0;
  bool json = false, tf32 = false;
};

struct LayerRow {
  std::string name, type, detail;
  double fwd_ms = 0, bwd_ms = 0, bytes = 0, flops = 0;
};

// Minimum bytes a layer must move per step (read inputs and parameters, write outputs; in
// backward also read dy and write dx and the parameter gradients), and its FLOPs.
LayerRow estimate(Graph& g, size_t i, int n) {
  const Layer& layer = g.layer(i);
  LayerRow r;
  r.name = layer.name();
  r.type = layer.type();
  r.detail = layer.backend_detail(n);
  if (layer.aliases_input()) return r;
  double params = 0;
  for (auto& p : g.param_infos())
    if (p.layer == int(i)) params += double(p.shape.numel());
  const double in = double(g.activation(i, n).numel()),
               out = double(g.activation(i + 1, n).numel());
  r.bytes = 4.0 * ((in + out + params) + (in + out + in + 2 * params));
  r.flops = 3.0 * n * layer.forward_flops();  // backward is about twice forward
  return r;
}

int run(const ProfileOptions& o) {
  set_threads(o.threads);
  const Device device = pick_device(o.device);
  set_cuda_tf32(o.tf32);
  ModelSpec spec = load_model_file(o.model);
  if (!o.global_pool.empty()) apply_global_pool_override(spec, o.global_pool);
  if (!o.pool.empty()) apply_pool_override(spec, o.pool);
  auto graph = Graph::build(spec, GraphOptions{device, o.batch, 2});
  graph->init_params(1);
  const size_t images = size_t(o.warmup + o.steps) * size_t(o.batch);
  Dataset data;
  std::string source = "synthetic random images";
  if (!o.data.empty()) {
    data = load_cifar10(resolve_cifar_dir(o.data), "train", images);
    if (data.size() < images)
      CP_USER_ERROR("--data holds " << data.size() << " training images; --warmup + --steps need "
                                    << images);
    source = "CIFAR-10 from " + o.data;
  } else {
    data = synthetic_for(*graph, images);
  }

  TrainConfig cfg;
  cfg.batch = o.batch;
  cfg.device = device;
  cfg.cuda_graph = false;  // per-layer events need the launches one by one
  reset_peak_memory(device);
  RegionTotals timer;
  const StepTiming eager = time_training_steps(*graph, cfg, data, o.warmup, o.steps, &timer, true);
  StepTiming replay;
  if (device == Device::cuda) {
    cfg.cuda_graph = true;
    replay = time_training_steps(*graph, cfg, data, o.warmup, o.steps);
  }
  std::map<std::string, RegionTotals::Entry> by_name;
  for (auto& e : timer.totals()) by_name[e.name] = e;
  auto per_step = [&](const std::string& name) { return by_name[name].ms / o.steps; };

  std::vector<LayerRow> rows;
  double regions_ms = 0;
  for (size_t i = 0; i < graph->num_layers(); ++i) {
    LayerRow r = estimate(*graph, i, o.batch);
    r.fwd_ms = per_step(r.name + "/fwd");
    r.bwd_ms = per_step(r.name + "/bwd");
    regions_ms += r.fwd_ms + r.bwd_ms;
    rows.push_back(r);
  }
  const std::vector<std::string> others = {regions::input, regions::loss, regions::optimizer};
  for (auto& name : others) regions_ms += per_step(name);
  const double step_ms = eager.step_ms();
  const double wait_ms = per_step(regions::data_wait);
  const MemoryStats mem = memory_stats(device);

  if (o.json) {
    nlohmann::ordered_json j;
    j["device"] = device == Device::cuda ? cuda_device_report() : "cpu";
    j["model"] = o.model;
    j["pool"] = o.pool;
    j["global_pool"] = o.global_pool;
    j["batch"] = o.batch;
    j["warmup"] = o.warmup;
    j["steps"] = o.steps;
    j["data"] = source;
    j["step_ms"] = step_ms;
    j["images_per_second"] = eager.images_per_second();
    j["data_wait_share"] = wait_ms / step_ms;
    if (device == Device::cuda) {
      j["graph_step_ms"] = replay.step_ms();
      j["graph_images_per_second"] = replay.images_per_second();
    }
    j["peak_memory_bytes"] = mem.peak;
    for (auto& r : rows)
      j["layers"].push_back({{"name", r.name},
                             {"type", r.type},
                             {"forward_ms", r.fwd_ms},
                             {"backward_ms", r.bwd_ms},
                             {"share", (r.fwd_ms + r.bwd_ms) / step_ms},
                             {"bytes", r.bytes},
                             {"gb_per_s", r.bytes / ((r.fwd_ms + r.bwd_ms) * 1e6)},
                             {"tflop_per_s", r.flops / ((r.fwd_ms + r.bwd_ms) * 1e9)},
                             {"backend", r.detail}});
    for (auto& name : others) j["other"].push_back({{"name", name}, {"ms", per_step(name)}});
    j["other"].push_back({{"name", regions::data_wait}, {"ms", wait_ms}});
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("convpool profile: %s%s on %s, batch %d, %d warm-up + %d timed steps, %s\n",
              o.model.c_str(), o.pool.empty() ? "" : (" --pool " + o.pool).c_str(),
              device == Device::cuda ? cuda_device_report().c_str() : "cpu", o.batch, o.warmup,
              o.steps, source.c_str());
  std::printf("times per step: %s\n\n", device == Device::cuda
                                            ? "CUDA events around each layer, launched eagerly"
                                            : "steady clock around each layer");
  std::printf("%-10s %-8s %9s %9s %7s %10s %9s %9s  %s\n", "layer", "type", "fwd ms", "bwd ms",
              "share", "bytes", "GB/s", "TFLOP/s", "backend");
  for (auto& r : rows) {
    const double ms = r.fwd_ms + r.bwd_ms;
    char gbs[16] = "-", tfs[16] = "-";
    if (r.bytes > 0 && ms > 0) std::snprintf(gbs, sizeof gbs, "%.1f", r.bytes / (ms * 1e6));
    if (r.flops > 0 && ms > 0) std::snprintf(tfs, sizeof tfs, "%.3f", r.flops / (ms * 1e9));
    std::printf("%-10s %-8s %9.4f %9.4f %6.1f%% %10s %9s %9s  %s\n", r.name.c_str(), r.type.c_str(),
                r.fwd_ms, r.bwd_ms, 100 * ms / step_ms,
                r.bytes > 0 ? human_bytes(r.bytes).c_str() : "-", gbs, tfs, r.detail.c_str());
  }
  for (auto& name : others)
    std::printf("%-10s %-8s %9.4f %9s %6.1f%%\n", name.c_str(), "", per_step(name), "",
                100 * per_step(name) / step_ms);
  std::printf(
      "\nstep %.3f ms (%.0f images/s); timed regions sum to %.3f ms (%.1f%%); data wait "
      "%.3f ms (%.1f%% of the step)\n",
      step_ms, eager.images_per_second(), regions_ms, 100 * regions_ms / step_ms, wait_ms,
      100 * wait_ms / step_ms);
  if (device == Device::cuda)
    std::printf("with the CUDA Graph (no per-layer events): step %.3f ms (%.0f images/s)\n",
                replay.step_ms(), replay.images_per_second());
  std::printf("peak %s memory %s (all convpool buffers)\n",
              device == Device::cuda ? "device" : "host", human_bytes(double(mem.peak)).c_str());
  return 0;
}

}  // namespace

Runner add_profile_command(CLI::App& app) {
  auto o = std::make_shared<ProfileOptions>();
  CLI::App* cmd = app.add_subcommand(
      "profile", "per-layer forward/backward times of the training step; Nsight capture range");
  cmd->add_option("--model", o->model, "model file")->capture_default_str();
  cmd->add_option("--pool", o->pool, "override every pooling layer (see pool-methods)");
  cmd->add_option("--global-pool", o->global_pool,
                  "a global encoder in place of the last pool layer (as train does)");
  cmd->add_option("--batch", o->batch, "batch size")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--warmup", o->warmup, "untimed steps first")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--steps", o->steps, "timed steps (inside cudaProfilerStart/Stop)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  add_device_options(cmd, o->device, o->threads);
  cmd->add_option("--data", o->data, "CIFAR-10 directory (default: synthetic random images)")
      ->check(kNonEmpty);
  cmd->add_flag("--tf32", o->tf32, "CUDA: TF32 tensor-core math for convolutions and dense");
  cmd->add_flag("--json", o->json, "machine-readable output");
  cmd->footer(
      "Examples:\n"
      "  convpool profile --device cpu --steps 10\n"
      "  nsys profile --capture-range=cudaProfilerApi --capture-range-end=stop -o convpool \\\n"
      "      convpool profile --device cuda --steps 50\n"
      "  ncu --nvtx --nvtx-include 'convpool@pool1/' --profile-from-start off \\\n"
      "      convpool profile --device cuda --steps 2");
  return [o] { return run(*o); };
}

}  // namespace convpool::cli
