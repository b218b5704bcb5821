// convpool: the command-line interface. Each subcommand lives in its own tools/cli_*.cpp.
#include <omp.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <new>
#include <sstream>

#include "cli_common.h"
#include "cli_paths.h"
#include "convpool/conv_engine.h"
#include "convpool/device.h"
#include "convpool/distributed.h"
#include "convpool/error.h"
#include "convpool/model.h"
#include "convpool/pooling.h"
#include "convpool/precision.h"
#include "convpool/trainer.h"
#include "cpu/gemm.h"

namespace convpool::cli {

std::string default_model_path() {
  const std::string local = "models/keras_cifar10.cfg";
  if (std::filesystem::exists(local)) return local;
  const std::string installed = find_data_file(local);
  return installed.empty() ? local : installed;
}

std::string timestamp() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  return buf;
}

void set_threads(int threads) {
  cpu::blas_single_threaded();  // convpool parallelises around BLAS calls itself
  if (threads > 0) omp_set_num_threads(threads);
}

Device pick_device(const std::string& name) {
  int index = 0;
  const std::string kind = parse_device_option(name, &index);
  if (kind == "cpu") return Device::cpu;
  // Data-parallel ranks each take their node's next GPU unless cuda:N chose one.
  if (world().distributed() && name.rfind("cuda:", 0) != 0)
    if (const int count = cuda_device_count(); count > 0)
      index = device_for_local_rank(launcher_local_rank(world().rank()), count);
  set_cuda_device_index(index);  // before any CUDA call: the context is created on it
  if (kind == "cuda") {
    require_cuda_device();  // throws a one-line reason, the same for cuda and cuda:0
    return Device::cuda;
  }
  return cuda_device_available() ? Device::cuda : Device::cpu;
}

const CLI::Validator kWholeNumber(
    [](std::string& text) -> std::string {
      uint64_t value = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size())
        return "'" + text + "' is not a whole number from 0 to 18446744073709551615";
      return "";
    },
    "UINT");

CLI::Validator number_in(double lo, double hi, bool lo_included, bool hi_included) {
  std::ostringstream range;
  range << (lo_included ? "[" : "(") << lo << ", " << hi << (hi_included ? "]" : ")");
  return CLI::Validator(
      [=, text = range.str()](std::string& value) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || !std::isfinite(v)) return "'" + value + "' is not a finite number";
        if ((lo_included ? v < lo : v <= lo) || (hi_included ? v > hi : v >= hi))
          return "'" + value + "' is not in " + text;
        return "";
      },
      "NUMBER");
}

const CLI::Validator kNonEmpty(
    [](std::string& value) -> std::string {
      return value.empty() ? std::string("the value is empty: name a path, or leave the option out")
                           : "";
    },
    "TEXT");

const CLI::Validator kFiniteNumber(
    [](std::string& text) -> std::string {
      char* end = nullptr;
      const double value = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(value))
        return "'" + text + "' is not a finite number";
      return "";
    },
    "NUMBER");

void add_device_options(CLI::App* cmd, std::string& device, int& threads) {
  cmd->add_option("--device", device, "auto, cpu, cuda or cuda:N (device N; cuda is cuda:0)")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            int index = 0;
            try {
              parse_device_option(text, &index);
            } catch (const Error& e) {
              return e.what();
            }
            return "";
          },
          "DEVICE"));
  cmd->add_option("--threads", threads, "CPU threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option_function<std::string>(
         "--conv-engine",
         [](const std::string& name) { set_cpu_conv_engine(parse_cpu_conv_engine(name)); },
         "CPU convolutions: auto (by shape), im2col, onednn-direct, onednn-auto")
      ->check(CLI::IsMember({"auto", "im2col", "onednn-direct", "onednn-auto"}));
  cmd->add_option_function<std::string>(
         "--precision", [](const std::string& name) { set_precision(parse_precision(name)); },
         "arithmetic: fp32, or bf16 (the CPU's convolutions in bf16 through oneDNN, where the "
         "CPU has AVX512-BF16 or AMX; docs/training.md)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
}

std::string suggest_flag(const CLI::App& app, int argc, char** argv) {
  if (argc > 1 && argv[1][0] != '-' && app.get_subcommands().empty()) {  // a misspelled command
    std::vector<std::string> commands;
    for (const CLI::App* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
    const std::string near = nearest_word(argv[1], commands);
    if (!near.empty()) return "; did you mean '" + near + "'?";
  }
  const CLI::App* cmd = &app;
  for (auto* sub : app.get_subcommands()) cmd = sub;  // the subcommand that was given
  std::vector<std::string> names;
  for (const CLI::Option* opt : cmd->get_options())
    for (auto& name : opt->get_lnames()) names.push_back("--" + name);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) continue;
    const std::string flag = arg.substr(0, arg.find('='));
    if (std::find(names.begin(), names.end(), flag) != names.end()) continue;
    const std::string near = nearest_word(flag, names);
    if (!near.empty()) return "; did you mean " + near + "?";
  }
  return "";
}

namespace {
int run_pool_methods(bool json) {
  if (json) {
    std::printf("%s\n", pool_methods_json().dump(2).c_str());
    return 0;
  }
  std::printf("%-11s %-22s %s\n", "method", "parameters", "definition");
  for (auto& m : pool_methods()) {
    const std::string params = m.params_text();
    std::printf("%-11s %-22s %s\n", m.name.c_str(), params.empty() ? "-" : params.c_str(),
                m.definition.c_str());
  }
  for (auto& a : pool_method_aliases())
    std::printf("%-11s %-22s %s\n", a.name.c_str(), (a.key + " (its " + a.method_key + ")").c_str(),
                ("the same as " + pool_method(a.method).name + " (" + a.key + " is its " +
                 a.method_key + "): " + a.source)
                    .c_str());
  std::printf(
      "\nEvery method takes size=N stride=N pad=N, or the word 'global' for the whole "
      "plane.\nExamples: `pool avgtopk k=3 size=2` in a model file; "
      "`convpool train --pool avgtopk:k=3`.\n");
  std::printf("\nPooling ops with pool's windows (size, stride, pad; no global form), which "
              "--pool and a study's --pools also take in place of a method "
              "(`--pool weighted_pool:shared=1`):\n");
  for (auto& op : window_pooling_ops())
    std::printf("%-13s %-20s %s\n", op.name.c_str(), op.params.c_str(), op.definition.c_str());
  std::printf("\nOther pooling ops, model-file layers of their own (docs/model-format.md):\n");
  for (auto& op : other_pooling_ops())
    std::printf("%-13s %-29s %s\n", op.name.c_str(), op.params.c_str(), op.definition.c_str());
  std::printf(
      "\nGlobal encoders, model-file layers of their own, which --global-pool puts in "
      "place of a model's last pool layer (`--global-pool gem_pool:p=3`):\n");
  for (auto& op : global_encoder_ops())
    std::printf("%-16s %-29s %s\n", op.name.c_str(), op.params.c_str(), op.definition.c_str());
  return 0;
}
}  // namespace

void build_cli(CLI::App& app, Commands& commands) {
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  convpool train --epochs 10                       # the reference CNN, GPU if present\n"
      "  convpool train --pool avgtopk:k=3 --device cpu --limit-train 2000 --epochs 1\n"
      "  convpool eval --checkpoint runs/NAME/best.safetensors\n"
      "  convpool train --resume runs/NAME/last.safetensors --epochs 20\n"
      "  convpool study --pools max,avg,avgtopk:k=2 --seeds 2 --epochs 10 --out studies/first\n"
      "  convpool profile --device cpu                    # per-layer times of the training step\n"
      "  convpool bench pool --method avgtopk:k=2 --shape 256,64,32,32\n"
      "  convpool model models/resnet20.cfg               # layers, parameters, memory\n"
      "  convpool export --checkpoint runs/NAME/best.safetensors --onnx model.onnx\n"
      "  convpool pool-methods");
  commands.train = add_train_command(app);
  commands.eval = add_eval_command(app);
  commands.study = add_study_command(app);
  commands.profile = add_profile_command(app);
  commands.bench = add_bench_command(app);
  commands.model = add_model_command(app);
  commands.export_onnx = add_export_command(app);
  commands.predict = add_predict_command(app);
  commands.pool_methods = app.add_subcommand("pool-methods", "list the pooling methods");
  commands.pool_methods->add_flag("--json", commands.pool_methods_json,
                                  "the method table as JSON (names, ids, parameters with "
                                  "defaults and ranges, ONNX forms)");
}

std::string one_line(const std::string& message) {
  std::string out;
  for (const char ch : message) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += ch;
    }
  }
  return out;
}

int run_cli(int argc, char** argv) {
  CLI::App app{"convpool: train and compare pooling methods for CNNs on CIFAR-10"};
  Commands commands;
  build_cli(app, commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "convpool: error: %s%s (see --help)\n", one_line(e.what()).c_str(),
                 one_line(suggest_flag(app, argc, argv)).c_str());
    return 2;
  }
  try {
    if (*app.get_subcommand("train")) return commands.train();
    if (*app.get_subcommand("eval")) return commands.eval();
    if (*app.get_subcommand("study")) return commands.study();
    if (*app.get_subcommand("profile")) return commands.profile();
    if (*app.get_subcommand("bench")) return commands.bench();
    if (*app.get_subcommand("model")) return commands.model();
    if (*app.get_subcommand("export")) return commands.export_onnx();
    if (*app.get_subcommand("predict")) return commands.predict();
    if (*commands.pool_methods) return run_pool_methods(commands.pool_methods_json);
  } catch (const Interrupted& e) {
    // Data-parallel ranks stop at the same step; rank 0 speaks for them.
    if (world().rank() == 0) std::fprintf(stderr, "convpool: %s\n", one_line(e.what()).c_str());
    return 130;
  } catch (const Error& e) {
    // One failing rank ends every rank of a data-parallel job, naming itself, never a hang.
    if (world().distributed()) world().abort(std::string("error: ") + e.what(), 1);
    std::fprintf(stderr, "convpool: error: %s\n", one_line(e.what()).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    // A buffer of ours names its size (Buffer); this is any other allocation.
    const char* msg =
        "out of host memory: this command needs more memory than the process may use; try a "
        "smaller --batch or model";
    if (world().distributed()) world().abort(std::string("error: ") + msg, 1);
    std::fprintf(stderr, "convpool: error: %s\n", msg);
    return 1;
  } catch (const std::exception& e) {
    if (world().distributed()) world().abort(std::string("internal error: ") + e.what(), 2);
    std::fprintf(stderr, "convpool: internal error: %s\n", one_line(e.what()).c_str());
    return 2;
  }
  return 0;
}

}  // namespace convpool::cli
