// convpool export: a checkpoint as a standard ONNX model (eval mode, weights included).
//
// The C++ side resolves the network: it builds the checkpoint's graph (so the model and the
// weights are validated exactly as eval does), walks the nodes in execution order and writes
// an export plan (JSON: each node's type, inputs, shapes and resolved attributes, with the
// names of its tensors in the checkpoint). libexec/onnx-export, run with Debian's python3 and
// python3-onnx, turns the plan and the checkpoint's safetensors into the ONNX file. Anything
// the exporter cannot express is refused here, before Python runs, with one line naming the
// layer. docs/onnx.md says why the protobuf is written from Python and how each op maps.
//
// --logits FILE writes convpool's own logits of the first --images test images (.npy,
// float32 [n, classes]): what tests/onnx-check compares ONNX Runtime against.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "cli_data.h"
#include "cli_paths.h"
#include "convpool/checkpoint.h"
#include "convpool/data.h"
#include "convpool/error.h"
#include "convpool/file_io.h"
#include "convpool/graph.h"
#include "convpool/onnx_plan.h"
#include "convpool/trainer.h"

extern char** environ;

namespace convpool::cli {

namespace {

struct ExportOptions {
  std::string checkpoint, onnx, plan, logits, data;
  size_t images = 1000;
  int threads = 0;
  bool overwrite = false;
  std::string weights = "auto";  // as eval: the EMA's when the checkpoint has them
};

std::string exporter_script() {
  if (const char* s = std::getenv("CONVPOOL_ONNX_EXPORTER"); s && *s) return s;
  return find_helper("onnx-export");
}

std::string python_interpreter() {
  if (const char* s = std::getenv("CONVPOOL_PYTHON"); s && *s) return s;
  return "/usr/bin/python3";  // Debian's: python3-onnx is installed for it
}

// Refuses an output path that cannot be written before any work is done.
void check_writable(const std::string& path, const char* what) {
  if (path.empty()) return;
  if (std::filesystem::is_directory(path))
    CP_USER_ERROR(what << " " << path << " is a directory");
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  const std::string d = dir.empty() ? "." : dir.string();
  if (!std::filesystem::is_directory(d))
    CP_USER_ERROR(what << " " << path << ": directory " << d << " does not exist");
  if (access(d.c_str(), W_OK) != 0)
    CP_USER_ERROR(what << " " << path << ": directory " << d << " is not writable");
  if (std::filesystem::exists(path) && access(path.c_str(), W_OK) != 0)
    CP_USER_ERROR(what << " " << path << " is not writable");
}

// Whether `path` holds what an earlier export wrote there: an ONNX model with convpool's
// metadata, an export plan, or a .npy array. Anything else (a checkpoint, a config, another
// program's file) is replaced only with --overwrite.
bool is_earlier_export(const std::string& path, const char* what) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size > (size_t(1) << 30)) return false;
  std::string head;
  try {
    head = read_regular_file(path, size_t(1) << 30, "earlier export");
  } catch (const Error&) {
    return false;
  }
  const std::string kind = what;
  if (kind == "--onnx") return head.find("convpool.model") != std::string::npos;
  if (kind == "--plan") return head.find("\"convpool-onnx-plan\"") != std::string::npos;
  return head.rfind("\x93NUMPY", 0) == 0;
}

// Outputs never replace inputs, each other, or files that are not earlier exports.
void check_outputs(const ExportOptions& o) {
  namespace fs = std::filesystem;
  const std::vector<std::pair<std::string, const char*>> outputs = {
      {o.onnx, "--onnx"}, {o.plan, "--plan"}, {o.logits, "--logits"}};
  auto same = [](const std::string& a, const std::string& b) {
    std::error_code ec;
    if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
    // Absolute first: the canonical form of a relative path with no existing prefix stays
    // relative, so "m.onnx" and "./m.onnx" would differ.
    return fs::weakly_canonical(fs::absolute(a, ec), ec) ==
           fs::weakly_canonical(fs::absolute(b, ec), ec);
  };
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& [path, what] = outputs[i];
    if (path.empty()) continue;
    if (same(path, o.checkpoint))
      CP_USER_ERROR(what << " " << path << " is the checkpoint being exported; write elsewhere");
    for (size_t j = 0; j < i; ++j)
      if (!outputs[j].first.empty() && same(path, outputs[j].first))
        CP_USER_ERROR(what << " and " << outputs[j].second << " name the same file " << path);
    if (!o.overwrite && fs::exists(path) && !is_earlier_export(path, what))
      CP_USER_ERROR(what << " " << path
                         << " exists and is not an earlier export; pass --overwrite to replace it");
  }
}

// Runs the Python exporter with the plan on its standard input; no shell is involved. Its
// error (one line, or a traceback's last) becomes convpool's one error line.
void run_exporter(const std::string& plan_json, const ExportOptions& o) {
  const std::string py = python_interpreter(), script = exporter_script();
  if (!std::filesystem::exists(script))
    CP_USER_ERROR("the ONNX exporter " << script << " is missing (set CONVPOOL_ONNX_EXPORTER)");
  int in[2], err[2];
  if (pipe(in) != 0 || pipe(err) != 0)
    CP_USER_ERROR("cannot start the ONNX exporter: " << std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawn_file_actions_addclose(&actions, in[1]);
  posix_spawn_file_actions_addclose(&actions, err[0]);
  // --parent-pid: the exporter ends itself if this process dies first, so a killed export
  // never writes after it.
  std::vector<std::string> args = {py,           script,   "--plan",       "-",
                                   "--checkpoint", o.checkpoint, "--onnx", o.onnx,
                                   "--parent-pid", std::to_string(getpid())};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, py.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(err[1]);
  if (rc != 0) {
    close(in[1]);
    close(err[0]);
    CP_USER_ERROR("cannot run " << py << " for the ONNX exporter: " << std::strerror(rc)
                                << " (set CONVPOOL_PYTHON; scripts/install-deps --ci installs "
                                   "python3-onnx)");
  }
  // The exporter reads the whole plan before it writes anything but a short import error.
  const char* p = plan_json.data();
  size_t left = plan_json.size();
  while (left > 0) {
    const ssize_t w = write(in[1], p, left);
    if (w <= 0) break;  // the exporter exited early: its status says why
    p += w, left -= size_t(w);
  }
  close(in[1]);
  std::string messages;
  char buf[4096];
  for (ssize_t r; (r = read(err[0], buf, sizeof buf)) != 0;) {
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    messages.append(buf, size_t(r));
  }
  close(err[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  while (!messages.empty() && (messages.back() == '\n' || messages.back() == ' '))
    messages.pop_back();
  std::string last = messages.substr(messages.rfind('\n') == std::string::npos
                                         ? 0
                                         : messages.rfind('\n') + 1);
  const std::string prefix = "onnx-export: error: ";
  if (last.rfind(prefix, 0) == 0) last = last.substr(prefix.size());
  CP_USER_ERROR("ONNX export failed: " << (last.empty() ? "the exporter exited abnormally" : last)
                                       << "; no model written to " << o.onnx);
}

// .npy, version 1.0, little-endian float32, C order.
void write_npy(const std::string& path, const std::vector<float>& v, size_t rows, size_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += char(1), out += char(0);
  out += char(header.size() & 0xff), out += char(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  write_file_atomic(path, out);
}

void write_logits(const Checkpoint& ckpt, const ExportOptions& o, bool ema,
                  const std::string& data_dir) {
  const int batch = 100;
  auto graph = build_from_checkpoint(ckpt, o.checkpoint, GraphOptions{Device::cpu, batch, 0}, ema);
  const DataChoice data = checkpoint_data(ckpt.state, data_dir, "");
  require_model_fits_data(*graph, o.checkpoint + " (model)", data.classes, data.side,
                          data_title(data));
  const Dataset test = load_split(data, "test", o.images, true);
  const size_t classes = graph->output_shape(1).numel();
  std::vector<float> logits(test.size() * classes);
  std::vector<uint32_t> order(test.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(i);
  for (size_t first = 0; first < test.size(); first += batch) {
    const int n = int(std::min<size_t>(batch, test.size() - first));
    images_to_float(test, order.data() + first, n, graph->input(n).data, ckpt.state.input);
    StepContext ctx{Device::cpu, false, ckpt.state.seed, ckpt.state.step, nullptr};
    graph->forward(ctx, n);
    std::copy(graph->output(n).data, graph->output(n).data + size_t(n) * classes,
              logits.begin() + long(first * classes));
  }
  write_npy(o.logits, logits, test.size(), classes);
  std::fprintf(stderr, "convpool: wrote convpool's logits of %zu test images to %s\n",
               test.size(), o.logits.c_str());
}

int run(const ExportOptions& o) {
  set_threads(o.threads);
  if (o.onnx.empty() && o.plan.empty() && o.logits.empty())
    CP_USER_ERROR("export: give --onnx OUT.onnx (or --plan / --logits)");
  check_writable(o.onnx, "--onnx");
  check_writable(o.plan, "--plan");
  check_writable(o.logits, "--logits");
  check_outputs(o);
  const Checkpoint ckpt = load_checkpoint(o.checkpoint);
  if (const std::string note = format_note(ckpt, o.checkpoint); !note.empty())
    std::fprintf(stderr, "convpool: %s\n", note.c_str());
  // The data --logits reads is found before anything is written.
  const std::string data_dir = o.logits.empty() ? "" : checkpoint_data(ckpt.state, o.data, "").dir;
  // The weights eval uses; restoring them refuses a non-finite tensor among them.
  const bool ema = uses_ema_weights(ckpt, o.weights);
  auto graph = build_from_checkpoint(ckpt, o.checkpoint, GraphOptions{Device::cpu, 1, 0}, ema);
  // Refuses what cannot export.
  const nlohmann::json plan = onnx_export_plan(*graph, ckpt, onnx_op_table(), ema);
  const std::string text = plan.dump(1);
  if (!o.plan.empty()) write_file_atomic(o.plan, text + "\n");
  if (!o.onnx.empty()) {
    run_exporter(text, o);
    std::fprintf(stderr, "convpool: wrote %s (%zu layers, opset %d, weights %s)\n",
                 o.onnx.c_str(), graph->num_layers(), kOnnxOpset,
                 describe_weights(ckpt, ema).c_str());
  }
  if (!o.logits.empty()) write_logits(ckpt, o, ema, data_dir);
  return 0;
}

}  // namespace

Runner add_export_command(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "export", "write a checkpoint's network as an ONNX model (eval mode, opset 17)");
  cmd->add_option("--checkpoint", o->checkpoint, "a .safetensors checkpoint from train")
      ->required();
  cmd->add_option("--onnx", o->onnx, "the ONNX file to write");
  cmd->add_option("--plan", o->plan, "also write the export plan (JSON) here");
  cmd->add_option("--logits", o->logits,
                  "also write convpool's logits of --images test images (.npy): the first N of "
                  "CIFAR's, N spread evenly over an image folder's");
  cmd->add_option("--images", o->images, "test images for --logits")
      ->capture_default_str()
      ->check(kWholeNumber);
  cmd->add_option("--data", o->data,
                  "the checkpoint's data set for --logits: its CIFAR binary directory (default: "
                  "$CIFAR10_DIR, then data/cifar-10-batches-bin), or its image folder (default: "
                  "the one it trained on)")
      ->check(kNonEmpty);
  cmd->add_option("--threads", o->threads, "CPU threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--weights", o->weights,
                  "auto (the EMA's when the checkpoint has them, as eval), ema or raw")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "ema", "raw"}));
  cmd->add_flag("--overwrite", o->overwrite,
                "replace output files that are not earlier exports (never the checkpoint)");
  cmd->footer(
      "The ONNX model's input is float32 N x 3 x 32 x 32, pixel / 255 in RGB planes; the\n"
      "checkpoint's normalisation (--normalize) is folded in. Needs Debian's python3-onnx.\n"
      "Example:\n  convpool export --checkpoint runs/NAME/best.safetensors --onnx model.onnx");
  return [o] { return run(*o); };
}

}  // namespace convpool::cli
